package match

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// The binary form of an Entry is what reconcile keeps, byte for byte, in its
// changelog and in its store, so that a snapshot goes from one to the other
// without being decoded. It is about a third of the JSON form (which earlier
// changelogs hold, and which the stage still reads), and costs no reflection.
//
//	byte     format (formatV1)
//	uvarint  Sequence (first, so that SequenceOf reads it without the rest)
//	uvarint  Dataset
//	string   Provider, ActivityDate (uvarint length, bytes)
//	byte     which sides follow: 1 local, 2 national
//	side     local, then national, each:
//	  string   RecordKey
//	  uvarint  Version
//	  byte     Deleted (0 or 1)
//	  uint16   which compared-field hashes are not 0 (bit i: field i), big-endian
//	  uint64   each such hash, in field order, little-endian
//	  string   KeyVersion
const formatV1 = 1

// The compared fields' mask is 16 bits: a 17th field needs a new format.
var _ [16 - numCompared]struct{}

const (
	hasLocal    = 1
	hasNational = 2
)

// ErrNotBinary is returned by UnmarshalBinary for bytes that are not the
// binary form (an older changelog's JSON, for instance).
var ErrNotBinary = errors.New("not a binary reconciliation entry")

// AppendBinary appends the binary form of e to b.
func (e *Entry) AppendBinary(b []byte) []byte {
	b = append(b, formatV1)
	b = binary.AppendUvarint(b, e.Sequence)
	b = binary.AppendUvarint(b, uint64(e.Dataset))
	b = appendString(b, e.Provider)
	b = appendString(b, e.ActivityDate)
	var sides byte
	if e.Local != nil {
		sides |= hasLocal
	}
	if e.National != nil {
		sides |= hasNational
	}
	b = append(b, sides)
	for _, s := range []*Side{e.Local, e.National} {
		if s != nil {
			b = s.appendBinary(b)
		}
	}
	return b
}

func (s *Side) appendBinary(b []byte) []byte {
	b = appendString(b, s.RecordKey)
	b = binary.AppendUvarint(b, s.Version)
	if s.Deleted {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	var mask uint16
	for i, h := range s.Fields {
		if h != 0 {
			mask |= 1 << i
		}
	}
	b = binary.BigEndian.AppendUint16(b, mask)
	for _, h := range s.Fields {
		if h != 0 {
			b = binary.LittleEndian.AppendUint64(b, h)
		}
	}
	return appendString(b, s.KeyVersion)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// SequenceOf reads the sequence of the entry whose binary form is b, without
// decoding the rest.
func SequenceOf(b []byte) (uint64, error) {
	if len(b) == 0 || b[0] != formatV1 {
		return 0, ErrNotBinary
	}
	seq, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return 0, errors.New("reconciliation entry: bad sequence")
	}
	return seq, nil
}

// UnmarshalBinary sets e from its binary form. It returns ErrNotBinary if b
// does not begin with the format byte.
func (e *Entry) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != formatV1 {
		return ErrNotBinary
	}
	d := decoder{b: b[1:]}
	*e = Entry{Sequence: d.uvarint(), Dataset: dmicv1.Dataset(d.uvarint()), Provider: d.string(), ActivityDate: d.string()}
	sides := d.byte()
	if sides&hasLocal != 0 {
		e.Local = d.side()
	}
	if sides&hasNational != 0 {
		e.National = d.side()
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes left over", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("reconciliation entry: %w", d.err)
	}
	return nil
}

// decoder reads the binary form; the first error sticks and later reads
// return zero values.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errors.Join(d.err, errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.err = errors.Join(d.err, errShort)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) side() *Side {
	s := &Side{RecordKey: d.string(), Version: d.uvarint(), Deleted: d.byte() == 1}
	if d.err != nil || len(d.b) < 2 {
		d.err = errors.Join(d.err, errShort)
		return s
	}
	mask := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	if uint32(mask)>>numCompared != 0 {
		d.err = fmt.Errorf("field mask %#x names fields beyond the %d compared", mask, numCompared)
		return s
	}
	if len(d.b) < 8*bits.OnesCount16(mask) {
		d.err = errShort
		return s
	}
	for i := range s.Fields {
		if mask&(1<<i) != 0 {
			s.Fields[i] = binary.LittleEndian.Uint64(d.b)
			d.b = d.b[8:]
		}
	}
	s.KeyVersion = d.string()
	return s
}
