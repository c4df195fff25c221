package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"
)

// A spool gives back what was written, from memory or, beyond its memory,
// from a file that no directory lists: the patient data in it has no name
// and goes with the process.
func TestSpool(t *testing.T) {
	for _, memory := range []int{1 << 20, 10} {
		dir := t.TempDir()
		sp := newSpool(dir, memory)
		content := strings.Repeat("one line of a submission\n", 100)
		for _, part := range []string{content[:7], content[7:500], content[500:]} {
			if _, err := io.WriteString(sp, part); err != nil {
				t.Fatal(err)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("memory %d: the spool folder lists %d files", memory, len(entries))
		}
		for range 2 { // read twice: each read starts at the beginning
			r, err := sp.Reader()
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(r); string(got) != content {
				t.Errorf("memory %d: read back %d bytes, want the %d written", memory, len(got), len(content))
			}
		}
		sum := sha256.Sum256([]byte(content))
		if sp.Digest() != hex.EncodeToString(sum[:]) {
			t.Errorf("memory %d: digest %s, want the content's", memory, sp.Digest())
		}
		if (sp.f != nil) != (memory < len(content)) {
			t.Errorf("memory %d: in a file = %v", memory, sp.f != nil)
		}
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// gRPC records come back one by one, whatever they hold, and their digest
// tells the records apart from their concatenation.
func TestSpoolRecords(t *testing.T) {
	recs := []string{`{"a":1}`, "", "with\nnewline", strings.Repeat("x", 300)}
	sp := newSpool(t.TempDir(), 16)
	defer sp.Close()
	for _, r := range recs {
		if err := sp.writeRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := sp.records(func(rec []byte) error { got = append(got, string(rec)); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != strings.Join(recs, "|") || len(got) != len(recs) {
		t.Errorf("records = %q, want %q", got, recs)
	}
	joined := newSpool(t.TempDir(), 1<<20)
	defer joined.Close()
	if err := joined.writeRecord(strings.Join(recs, "")); err != nil {
		t.Fatal(err)
	}
	if joined.Digest() == sp.Digest() {
		t.Error("the records and their concatenation have one digest")
	}
}

// BenchmarkSpoolBody: keeping a submission's body of 145 records (about
// 120 KB, the bench's average) as io.Copy hands it over, with the request's
// Content-Length (expect, as handleSubmit does) and without (a chunked body).
func BenchmarkSpoolBody(b *testing.B) {
	body := bytes.Repeat([]byte(strings.Repeat("x", 829)+"\n"), 145)
	dir := b.TempDir()
	for _, c := range []struct {
		name   string
		expect int64
	}{{"length known", int64(len(body))}, {"length unknown", -1}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				sp := newSpool(dir, DefaultSpoolMemory)
				sp.expect(c.expect)
				// Read in pieces, as an HTTP body is (no WriterTo).
				if _, err := io.Copy(sp, struct{ io.Reader }{bytes.NewReader(body)}); err != nil {
					b.Fatal(err)
				}
				sp.Close()
			}
		})
	}
}
