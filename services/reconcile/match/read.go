package match

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Revision is what reconciliation reads of one copy of an activity (a
// dmic.v1.DeidentifiedRecord): who sent which revision of it, and a hash of
// each compared field. Read takes it straight from the record's wire form.
type Revision struct {
	MatchKey     string
	Source       dmicv1.Source
	Dataset      dmicv1.Dataset
	RecordKey    string
	Version      uint64
	Deleted      bool
	Provider     string
	ActivityDate string
	// KeyVersion is the pseudonym's key version.
	KeyVersion string
	// Fields are the compared fields' hashes, as Side.Fields.
	Fields [numCompared]uint64
}

// The field numbers Read reads, from dmic/v1/envelope.proto and
// record.proto (TestWireNumbers holds them to the generated descriptors, so
// that a renumbering cannot pass unnoticed).
const (
	recHeader     = 1
	recActivity   = 2
	recMatchKey   = 3
	recAssignment = 4

	hdrRecordKey = 1
	hdrDataset   = 2
	hdrSource    = 3
	hdrVersion   = 12

	actUpdateType          = 2
	actProviderCode        = 4
	actSubmittedCommission = 6
	actPseudoNHSNumber     = 9
	actPseudonymKeyVersion = 10
	actActivityDate        = 16
	actPointOfDelivery     = 29
	actApc                 = 20
	actOutpatient          = 21
	actEmergencyCare       = 22
	actLocalFlow           = 23

	asgCommissionerCode = 1

	apcAdmissionMethod  = 5
	apcEndDateEpisode   = 8
	apcPatientClass     = 12
	apcTreatmentFunc    = 13
	apcPrimaryDiagnosis = 14
	apcPrimaryProcedure = 15
	apcHRG              = 16

	opAttended         = 3
	opFirstAttendance  = 4
	opTreatmentFunc    = 5
	opPrimaryProcedure = 7
	opHRG              = 8

	ecDepartmentType = 4
	ecHRG            = 7

	lfPointOfDelivery = 2
	lfTreatmentFunc   = 3
	lfHRG             = 4
	lfPricePence      = 5
)

// activityFields are the compared fields that come from the activity's
// kind (the oneof: APC episode, attendance, ...): a record of one kind
// followed by another on the wire keeps only the last, as proto does.
var activityFields = [...]int{fHRG, fTreatmentFunction, fPrimaryDiagnosis, fPrimaryProcedure, fAdmissionMethod,
	fPatientClass, fEndDateEpisode, fAttended, fFirstAttendance, fECDepartment, fPointOfDelivery, fPrice}

// kindField is the compared field that field num of an activity of kind
// is (an APC episode's HRG, an attendance's, ...), if it is one: which
// fields of a record are compared, in one place.
func kindField(kind, num protowire.Number) (int, bool) {
	switch kind {
	case actApc:
		switch num {
		case apcHRG:
			return fHRG, true
		case apcTreatmentFunc:
			return fTreatmentFunction, true
		case apcPrimaryDiagnosis:
			return fPrimaryDiagnosis, true
		case apcPrimaryProcedure:
			return fPrimaryProcedure, true
		case apcAdmissionMethod:
			return fAdmissionMethod, true
		case apcPatientClass:
			return fPatientClass, true
		case apcEndDateEpisode:
			return fEndDateEpisode, true
		}
	case actOutpatient:
		switch num {
		case opHRG:
			return fHRG, true
		case opTreatmentFunc:
			return fTreatmentFunction, true
		case opPrimaryProcedure:
			return fPrimaryProcedure, true
		case opAttended:
			return fAttended, true
		case opFirstAttendance:
			return fFirstAttendance, true
		}
	case actEmergencyCare:
		switch num {
		case ecHRG:
			return fHRG, true
		case ecDepartmentType:
			return fECDepartment, true
		}
	case actLocalFlow:
		switch num {
		case lfHRG:
			return fHRG, true
		case lfTreatmentFunc:
			return fTreatmentFunction, true
		case lfPointOfDelivery:
			return fPointOfDelivery, true
		}
	}
	return 0, false
}

// ErrWire is a record that is not a well-formed dmic.v1.DeidentifiedRecord.
var ErrWire = errors.New("not a dmic.v1.DeidentifiedRecord")

// Read sets rv from the wire form of a dmic.v1.DeidentifiedRecord, reading
// only the fields reconciliation uses and hashing the compared ones from
// the bytes, without decoding the rest of the record: a full decode (every
// field, every nested message, a string each) was a fifth of reconcile's
// CPU. It reads as proto.Unmarshal does: the last value of a field wins,
// a nested message seen twice is merged, the last kind of activity
// replaces the others, a known field of another wire type is an unknown
// field. The fields it reads must be valid UTF-8, as proto3 strings;
// fields it skips are checked only for their framing.
func Read(b []byte, rv *Revision) error {
	*rv = Revision{}
	r := reader{rv: rv}
	if err := r.record(b); err != nil {
		return fmt.Errorf("%w: %w", ErrWire, err)
	}
	r.pointOfDelivery()
	return nil
}

type reader struct {
	rv *Revision
	// kind is the activity's kind (its oneof field) read so far.
	kind protowire.Number
	// pod is the hash of the activity's own point of delivery (the CDS
	// data sets'); a local flow line's is its line's (pointOfDelivery).
	pod uint64
}

// pointOfDelivery sets the compared point of delivery once the whole record
// is read: a local flow line's own (the contract's EL, DC, NEL, OPFA ...),
// else the activity's (an APC episode's, an attendance's). Both copies of
// one activity are of one data set, so they are compared alike.
func (r *reader) pointOfDelivery() {
	if r.kind != actLocalFlow {
		r.rv.Fields[fPointOfDelivery] = r.pod
	}
}

// field is one field of a message: its number, wire type and value.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // a varint's value
	b   []byte // a length-delimited value
}

// next reads the field at the start of b and returns its length, or a
// protowire error code (n < 0).
func next(b []byte) (f field, n int) {
	f.num, f.typ, n = protowire.ConsumeTag(b)
	if n < 0 {
		return f, n
	}
	var m int
	switch f.typ {
	case protowire.VarintType:
		f.v, m = protowire.ConsumeVarint(b[n:])
	case protowire.BytesType:
		f.b, m = protowire.ConsumeBytes(b[n:])
	default:
		m = protowire.ConsumeFieldValue(f.num, f.typ, b[n:])
	}
	if m < 0 {
		return f, m
	}
	return f, n + m
}

// each calls fn with every field of the message b.
func each(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		f, n := next(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if err := fn(f); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// text is a string field's value, checked as proto checks a proto3 string.
func text(f field) (string, error) {
	if !utf8.Valid(f.b) {
		return "", fmt.Errorf("field %d: invalid UTF-8", f.num)
	}
	return string(f.b), nil
}

// hashText is the hash of a string field's value (hash's), without making
// the string.
func hashText(f field) (uint64, error) {
	if !utf8.Valid(f.b) {
		return 0, fmt.Errorf("field %d: invalid UTF-8", f.num)
	}
	return hash(f.b), nil
}

func (r *reader) record(b []byte) error {
	return each(b, func(f field) (err error) {
		if f.typ != protowire.BytesType {
			return nil // unknown, or a known field of another wire type: unknown to proto too
		}
		switch f.num {
		case recHeader:
			return each(f.b, r.header)
		case recActivity:
			return each(f.b, r.activity)
		case recMatchKey:
			r.rv.MatchKey, err = text(f)
		case recAssignment:
			return each(f.b, func(f field) (err error) {
				if f.num == asgCommissionerCode && f.typ == protowire.BytesType {
					r.rv.Fields[fCommissioner], err = hashText(f)
				}
				return err
			})
		}
		return err
	})
}

func (r *reader) header(f field) (err error) {
	switch {
	case f.num == hdrRecordKey && f.typ == protowire.BytesType:
		r.rv.RecordKey, err = text(f)
	case f.num == hdrDataset && f.typ == protowire.VarintType:
		r.rv.Dataset = dmicv1.Dataset(int32(f.v))
	case f.num == hdrSource && f.typ == protowire.VarintType:
		r.rv.Source = dmicv1.Source(int32(f.v))
	case f.num == hdrVersion && f.typ == protowire.VarintType:
		r.rv.Version = f.v
	}
	return err
}

func (r *reader) activity(f field) (err error) {
	rv := r.rv
	if f.typ == protowire.VarintType {
		if f.num == actUpdateType {
			rv.Deleted = dmicv1.UpdateType(int32(f.v)) == dmicv1.UpdateType_UPDATE_TYPE_DELETE
		}
		return nil
	}
	if f.typ != protowire.BytesType {
		return nil
	}
	switch f.num {
	case actProviderCode:
		rv.Provider, err = text(f)
	case actActivityDate:
		rv.ActivityDate, err = text(f)
		if err == nil {
			rv.Fields[fActivityDate], err = hashText(f)
		}
	case actPseudoNHSNumber:
		rv.Fields[fPseudoNHSNumber], err = hashText(f)
	case actPointOfDelivery:
		r.pod, err = hashText(f)
	case actSubmittedCommission:
		rv.Fields[fSubmittedCommissoner], err = hashText(f)
	case actPseudonymKeyVersion:
		rv.KeyVersion, err = text(f)
	case actApc, actOutpatient, actEmergencyCare, actLocalFlow:
		if f.num != r.kind {
			// Another kind replaces the one read so far (a oneof).
			for _, i := range activityFields {
				rv.Fields[i] = 0
			}
			r.kind = f.num
		}
		return each(f.b, func(g field) (err error) {
			if f.num == actLocalFlow && g.num == lfPricePence && g.typ == protowire.VarintType {
				rv.Fields[fPrice] = 0
				if p := int64(g.v); p != 0 {
					var buf [20]byte
					rv.Fields[fPrice], _ = hashText(field{b: strconv.AppendInt(buf[:0], p, 10)})
				}
				return nil
			}
			if i, ok := kindField(f.num, g.num); ok && g.typ == protowire.BytesType {
				rv.Fields[i], err = hashText(g)
			}
			return err
		})
	}
	return err
}
