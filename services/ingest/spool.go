package ingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// DefaultSpoolMemory is how much of a submission a spool keeps in memory
// before it moves to a file.
const DefaultSpoolMemory = 16 << 20

// spool holds a submission's content until all of it has been received, so
// that its digest is known before the first record is stored: without an
// idempotency key the digest is the submission's identity (its id, which
// every record carries), and with one it must match the content the key was
// first used with. Small content stays in memory; beyond memLimit it goes to
// a file that is unlinked as soon as it is created, so the patient data in
// it never outlives the process (not even a kill -9) and is never visible
// by name.
type spool struct {
	dir      string
	memLimit int
	mem      bytes.Buffer
	f        *os.File
	digest   hash.Hash
	size     int64
}

func newSpool(dir string, memLimit int) *spool {
	return &spool{dir: dir, memLimit: memLimit, digest: sha256.New()}
}

// expect makes room in memory for n bytes of content about to come (a
// request's Content-Length): the buffer then grows once, not by doubling
// and copying (bytes.Buffer's growth was 8% of ingest's CPU in a profile).
// Content that would go to a file, or an unknown length, reserves nothing.
func (s *spool) expect(n int64) {
	if n > 0 && s.f == nil && int64(s.mem.Len())+n <= int64(s.memLimit) {
		s.mem.Grow(int(n))
	}
}

// Write appends to the content.
func (s *spool) Write(p []byte) (int, error) {
	s.digest.Write(p)
	s.size += int64(len(p))
	if s.f == nil && s.mem.Len()+len(p) <= s.memLimit {
		return s.mem.Write(p)
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "dmic-ingest-spool-*")
		if err != nil {
			return 0, fmt.Errorf("spool: %w", err)
		}
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return 0, fmt.Errorf("spool: unlink %s: %w", f.Name(), err)
		}
		s.f = f
		if _, err := s.f.Write(s.mem.Bytes()); err != nil {
			return 0, fmt.Errorf("spool: %w", err)
		}
		s.mem = bytes.Buffer{}
	}
	n, err := s.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("spool: %w", err)
	}
	return n, nil
}

// writeRecord appends one gRPC record: its length (unsigned varint), then
// its bytes, so that the digest of a sequence of records is unambiguous.
func (s *spool) writeRecord(rec string) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := s.Write(n[:binary.PutUvarint(n[:], uint64(len(rec)))]); err != nil {
		return err
	}
	_, err := io.WriteString(s, rec)
	return err
}

// Digest is the hex SHA-256 of everything written.
func (s *spool) Digest() string { return hex.EncodeToString(s.digest.Sum(nil)) }

// Reader reads the content from its start.
func (s *spool) Reader() (io.Reader, error) {
	if s.f == nil {
		return bytes.NewReader(s.mem.Bytes()), nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return s.f, nil
}

// records reads back what writeRecord wrote, calling each for every record.
func (s *spool) records(each func(rec []byte) error) error {
	r, err := s.Reader()
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		n, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if n > uint64(s.size) {
			return fmt.Errorf("spool: a record of %d bytes in %d", n, s.size)
		}
		// Each record its own slice: what decodes it may keep it.
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if err := each(buf); err != nil {
			return err
		}
	}
}

// Close releases the memory or the file.
func (s *spool) Close() error {
	s.mem = bytes.Buffer{}
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
