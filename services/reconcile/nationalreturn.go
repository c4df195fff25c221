package reconcile

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dmic-nhs/dmic/services/deidentify/didi"
)

// The fields of dmic.v1.DeidentifiedRecord the national return rewrites
// (TestNationalReturnWireNumbers holds them to the generated descriptors).
const (
	recActivity            = 2
	actPseudoNHSNumber     = 9
	actPseudonymKeyVersion = 10
	actPseudonymAbsent     = 11
	actPseudonymDomain     = 24
	actDomainPseudonyms    = 25
	dpDomain               = 1
	dpPseudonym            = 2
	dpKeyVersion           = 3
)

// nationalReturn appends to dst the record rec (a dmic.v1.DeidentifiedRecord,
// in its wire form) re-keyed for the national return: the pseudonym it
// carries becomes its national-return domain pseudonym (made by deidentify
// under that domain's key), and no other domain's pseudonym goes with it, so
// the national return cannot be linked to the analytical store. A record
// without a national-return pseudonym leaves with none (and says why), never
// with the analytics one.
//
// It rewrites the bytes rather than decoding the record and encoding it
// again (two fifths of what reconcile spent on protobuf): every field but
// the activity's pseudonym fields is copied as it came. What a decoder
// makes of the result is what it made of the record with those fields
// changed, which is all the national return promises; the bytes are not
// those proto.Marshal would write (the rewritten fields come last in the
// activity, and an activity sent in several parts is sent as one).
func nationalReturn(dst, rec []byte) ([]byte, error) {
	// First the activity as a decoder merges it: its last pseudonym and
	// absent reason, and its last national-return domain pseudonym.
	var (
		found          bool
		hadPseudonym   bool
		absent         []byte
		nrPseudonym    []byte
		nrKeyVersion   []byte
		activityLength int
	)
	err := eachField(rec, func(num protowire.Number, typ protowire.Type, v []byte, _ []byte) error {
		if num != recActivity || typ != protowire.BytesType {
			return nil
		}
		found = true
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, raw []byte) error {
			if typ != protowire.BytesType {
				activityLength += len(raw)
				return nil
			}
			switch num {
			case actPseudoNHSNumber:
				hadPseudonym = len(v) > 0
			case actPseudonymAbsent:
				absent = v
			case actDomainPseudonyms:
				var domain, pseudonym, keyVersion []byte
				if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ []byte) error {
					if typ == protowire.BytesType {
						switch num {
						case dpDomain:
							domain = v
						case dpPseudonym:
							pseudonym = v
						case dpKeyVersion:
							keyVersion = v
						}
					}
					return nil
				}); err != nil {
					return err
				}
				if string(domain) == didi.DomainNationalReturn {
					nrPseudonym, nrKeyVersion = pseudonym, keyVersion
				}
			case actPseudonymKeyVersion, actPseudonymDomain:
			default:
				activityLength += len(raw)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("national return: %w", err)
	}
	if !found {
		return append(dst, rec...), nil
	}
	if len(nrPseudonym) == 0 && hadPseudonym {
		// Pseudonymised in analytics only (before the domain had a key).
		absent = []byte(didi.AbsentNoDomainPseudonym)
	}
	rekeyed := [...]struct {
		num protowire.Number
		v   []byte
	}{
		{actPseudoNHSNumber, nrPseudonym},
		{actPseudonymKeyVersion, nrKeyVersion},
		{actPseudonymAbsent, absent},
		{actPseudonymDomain, []byte(didi.DomainNationalReturn)},
	}
	for _, f := range rekeyed {
		if len(f.v) > 0 {
			activityLength += protowire.SizeTag(f.num) + protowire.SizeBytes(len(f.v))
		}
	}

	// Then the record again: every field as it came, the activity (all its
	// parts, in one) without its pseudonym fields, and the re-keyed ones.
	written := false
	err = eachField(rec, func(num protowire.Number, typ protowire.Type, v []byte, raw []byte) error {
		if num != recActivity || typ != protowire.BytesType {
			dst = append(dst, raw...)
			return nil
		}
		if written {
			return nil
		}
		written = true
		dst = protowire.AppendTag(dst, recActivity, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(activityLength))
		// Every part of the activity, in order.
		if err := eachField(rec, func(num protowire.Number, typ protowire.Type, v []byte, _ []byte) error {
			if num != recActivity || typ != protowire.BytesType {
				return nil
			}
			return eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, raw []byte) error {
				if typ == protowire.BytesType {
					switch num {
					case actPseudoNHSNumber, actPseudonymKeyVersion, actPseudonymAbsent, actPseudonymDomain, actDomainPseudonyms:
						return nil
					}
				}
				dst = append(dst, raw...)
				return nil
			})
		}); err != nil {
			return err
		}
		for _, f := range rekeyed {
			if len(f.v) > 0 {
				dst = protowire.AppendTag(dst, f.num, protowire.BytesType)
				dst = protowire.AppendBytes(dst, f.v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("national return: %w", err)
	}
	return dst, nil
}

// eachField calls fn with every field of the message b: its number, wire
// type, value (a length-delimited field's contents) and whole encoding.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		var v []byte
		var m int
		if typ == protowire.BytesType {
			v, m = protowire.ConsumeBytes(b[n:])
		} else {
			m = protowire.ConsumeFieldValue(num, typ, b[n:])
		}
		if m < 0 {
			return protowire.ParseError(m)
		}
		if err := fn(num, typ, v, b[:n+m]); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}
