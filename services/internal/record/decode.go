package record

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/nhs"
)

// Decode rule ids. They are stable: providers and dashboards refer to them.
const (
	RuleJSON         = "DEC-JSON"          // not valid JSON, not an object, or not UTF-8
	RuleDataset      = "DEC-DATASET"       // no dataset in the record or the submission
	RuleUnknownField = "DEC-UNKNOWN-FIELD" // a field name the format does not have
	RuleFieldDataset = "DEC-FIELD-DATASET" // a field of another dataset
	RuleType         = "DEC-TYPE"          // wrong JSON type for the field
	RuleValue        = "DEC-VALUE"         // a value the decoder cannot read (update type, dataset, integer)
	RuleTooLong      = "DEC-TOO-LONG"      // a line longer than MaxLineBytes
	RuleCSV          = "DEC-CSV"           // a CSV row that cannot be parsed (quotes)
	RuleColumns      = "DEC-COLUMNS"       // a CSV row whose column count differs from the header
	RuleCSVHeader    = "DEC-CSV-HEADER"    // a CSV header that cannot be used
	RuleRead         = "DEC-READ"          // the submission body could not be read
)

// DecodeError is a record that could not be decoded. Line is 1-based (0 if
// unknown). Message never contains field values: it names what is wrong.
type DecodeError struct {
	Line    int64
	Field   string
	RuleID  string
	Message string
	// RecordID is the record's cds_unique_identifier when it could be read,
	// so the provider can be told which record failed.
	RecordID string
	// err is the cause of a DEC-READ error.
	err error
}

// TooLong is the DEC-TOO-LONG error of a record of n bytes (n 0: unknown,
// a line that was not kept) at line, above limits.MaxRecordBytes.
func TooLong(line int64, n int) *DecodeError {
	msg := fmt.Sprintf("record is longer than the %d-byte limit", limits.MaxRecordBytes)
	if n > 0 {
		msg = fmt.Sprintf("record is %d bytes, above the %d-byte limit", n, limits.MaxRecordBytes)
	}
	return &DecodeError{Line: line, RuleID: RuleTooLong, Message: msg}
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.Grow(len(e.Field) + len(e.Message) + len(e.RuleID) + 40)
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.FormatInt(e.Line, 10))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	b.WriteString(" (rule ")
	b.WriteString(e.RuleID)
	b.WriteString(")")
	return b.String()
}

// Unwrap returns the read error behind a DEC-READ error.
func (e *DecodeError) Unwrap() error { return e.err }

// maxEntries is more than the largest dataset's field count, so the entries
// of a well-formed record fit on the stack.
const maxEntries = 40

// DecodeJSON decodes one provider JSON object. The dataset is the object's
// "dataset" field, else fallback. It returns the dataset it resolved (also
// with an error, when it got that far) and a *DecodeError on failure.
func DecodeJSON(data []byte, fallback dmicv1.Dataset) (*dmicv1.CommissioningRecord, dmicv1.Dataset, error) {
	r, d, derr := decodeJSON(data, fallback)
	if derr != nil {
		return nil, d, derr
	}
	return r, d, nil
}

func decodeJSON(data []byte, fallback dmicv1.Dataset) (*dmicv1.CommissioningRecord, dmicv1.Dataset, *DecodeError) {
	if !utf8.Valid(data) {
		return nil, dmicv1.Dataset_DATASET_UNSPECIFIED, &DecodeError{RuleID: RuleJSON, Message: "record is not valid UTF-8 text"}
	}
	// One string for the whole line: every unescaped value is a substring
	// of it, which saves an allocation per field.
	src := string(data)
	var buf [maxEntries]entry
	entries, msg := scanObject(src, buf[:0])
	if msg != "" {
		return nil, dmicv1.Dataset_DATASET_UNSPECIFIED, &DecodeError{RuleID: RuleJSON, Message: msg}
	}
	return decodeEntries(entries, fallback)
}

// decodeEntries resolves the dataset and applies every entry through the
// dataset's setters. The first bad entry, in order, is the error.
func decodeEntries(entries []entry, fallback dmicv1.Dataset) (*dmicv1.CommissioningRecord, dmicv1.Dataset, *DecodeError) {
	d := fallback
	if !knownDataset(d) {
		d = dmicv1.Dataset_DATASET_UNSPECIFIED
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := &entries[i]
		if e.f == nil || e.f.kind != kindDataset {
			continue
		}
		v, ok := e.text()
		if !ok || e.kind == valNumber {
			return nil, dmicv1.Dataset_DATASET_UNSPECIFIED, failEntry(entries, e, RuleType, "must be a string, not "+e.kind.describe())
		}
		if v != "" {
			pd, err := ParseDataset(v)
			if err != nil {
				return nil, dmicv1.Dataset_DATASET_UNSPECIFIED, failEntry(entries, e, RuleValue, err.(*DecodeError).Message)
			}
			d = pd
		}
		break
	}
	if d == dmicv1.Dataset_DATASET_UNSPECIFIED {
		return nil, d, withRecordID(entries, &DecodeError{RuleID: RuleDataset, Message: "dataset is named neither in the record nor by the submission"})
	}

	s := newSlab(d)
	for i := range entries {
		e := &entries[i]
		f := e.f
		if f == nil {
			return nil, d, failEntry(entries, e, RuleUnknownField, unknownFieldMessage(e.name, "unknown field"))
		}
		if !f.allowed(d) {
			return nil, d, failEntry(entries, e, RuleFieldDataset, "field does not belong to dataset "+DatasetName(d))
		}
		switch f.kind {
		case kindDataset:
			// Resolved above.
		case kindString:
			v, de := textOf(entries, e, "a string")
			if de != nil {
				return nil, d, de
			}
			if v != "" {
				f.setStr[d](s, v)
			}
		case kindInt:
			v, de := textOf(entries, e, "an integer")
			if de != nil {
				return nil, d, de
			}
			if v == "" {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				msg := "must be a whole number"
				if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange {
					msg = "number is out of range"
				}
				return nil, d, failEntry(entries, e, RuleValue, msg)
			}
			f.setInt[d](s, n)
		case kindUpdateType:
			v, de := textOf(entries, e, "a string")
			if de != nil {
				return nil, d, de
			}
			switch v {
			case "":
				// Absent: treated as 9 downstream, but left unspecified so that
				// validation can flag it (CDS-003).
				s.rec.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_UNSPECIFIED
			case "9":
				s.rec.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_REPLACE
			case "1":
				s.rec.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			default:
				return nil, d, failEntry(entries, e, RuleValue, `must be "9" (original or replacement) or "1" (delete)`)
			}
		}
	}
	return &s.rec, d, nil
}

// newSlab allocates a record with its activity message for dataset d, so a
// decoded record always says which dataset it is.
func newSlab(d dmicv1.Dataset) *slab {
	s := new(slab)
	switch d {
	case dmicv1.Dataset_DATASET_APC:
		a := new(struct {
			w dmicv1.CommissioningRecord_Apc
			m dmicv1.ApcEpisode
		})
		a.w.Apc, s.apc, s.rec.Activity = &a.m, &a.m, &a.w
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		a := new(struct {
			w dmicv1.CommissioningRecord_Outpatient
			m dmicv1.OutpatientAttendance
		})
		a.w.Outpatient, s.op, s.rec.Activity = &a.m, &a.m, &a.w
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		a := new(struct {
			w dmicv1.CommissioningRecord_EmergencyCare
			m dmicv1.EmergencyCareAttendance
		})
		a.w.EmergencyCare, s.ec, s.rec.Activity = &a.m, &a.m, &a.w
	case dmicv1.Dataset_DATASET_LOCAL_FLOW:
		a := new(struct {
			w dmicv1.CommissioningRecord_LocalFlow
			m dmicv1.LocalFlowRecord
		})
		a.w.LocalFlow, s.lf, s.rec.Activity = &a.m, &a.m, &a.w
	}
	return s
}

// textOf is the entry's value as text, or the error that it has none.
func textOf(entries []entry, e *entry, want string) (string, *DecodeError) {
	v, ok := e.text()
	if ok {
		return v, nil
	}
	if e.kind == valNumber {
		return "", failEntry(entries, e, RuleValue, "number is out of range")
	}
	return "", failEntry(entries, e, RuleType, "must be "+want+", not "+e.kind.describe())
}

func failEntry(entries []entry, e *entry, rule, msg string) *DecodeError {
	name := shownName(e.name)
	if name == "" && e.name != "" {
		msg += "; " + nameNotShown
	}
	return withRecordID(entries, &DecodeError{Field: name, RuleID: rule, Message: msg})
}

// withRecordID adds the record's id, when one can be read, so the provider
// learns which record failed. The format forbids the CDS unique identifier
// to hold the patient's NHS number or local id (HoldsPatientIdentifier): an
// id that does is left out, because the error reaches the validation
// outcomes, the rejections table and the log.
func withRecordID(entries []entry, de *DecodeError) *DecodeError {
	uid := -1
	var p dmicv1.Patient
	for i := range entries {
		e := &entries[i]
		if e.f == nil {
			continue
		}
		if e.f.name == fieldUID {
			uid = i
			continue
		}
		v, ok := e.text()
		if !ok {
			continue
		}
		switch e.f.name {
		case "nhs_number":
			p.NhsNumber = v
		case "local_patient_identifier":
			p.LocalPatientIdentifier = v
		case "postcode_of_usual_address":
			p.PostcodeOfUsualAddress = v
		}
	}
	if uid < 0 {
		return de
	}
	if v, ok := entries[uid].text(); ok && len(v) <= 64 && !HoldsPatientIdentifier(v, &p) {
		de.RecordID = v
	}
	return de
}

// bulkFields are the names a sender of CDS bulk replacement (protocol 020)
// would carry its protocol in. dmic takes net change only (docs/architecture.md,
// Not supported yet): a record or file that says how it was meant is refused
// with that reason, rather than taken as net change, which would keep every
// record the bulk meant to replace (domain brief §3, Submission protocol).
var bulkFields = map[string]bool{"cds_protocol_identifier": true, "protocol_identifier": true, "cds_bulk_replacement_group": true}

// bulkNotSupported is why such a field is refused.
const bulkNotSupported = "CDS PROTOCOL IDENTIFIER and bulk replacement (protocol 020) are not supported: dmic takes net change (010) only. " +
	"Send each record with cds_update_type 9 (original or replacement) or 1 (delete), without this field"

// unknownFieldMessage is the failure message for the unknown field name:
// plain, unless it is a bulk replacement's.
func unknownFieldMessage(name, plain string) string {
	if bulkFields[strings.ToLower(strings.TrimSpace(name))] {
		return bulkNotSupported
	}
	return plain
}

// nameNotShown is said in place of a field or column name shownName hides.
const nameNotShown = "its name is not shown, as it does not look like a field name and may be a value: is the header row missing?"

// shownName is a field or column name the format does not have, as a failure
// may show it, or "" when it must not be shown. The name is the provider's
// text. Most often it is a misspelt field, which the provider needs to see;
// but in a CSV file sent without its header row the "names" are the first
// record's values, an NHS number, a date of birth or a postcode among them,
// and a failure never contains a value (docs/record-format.md, Rules): the
// upload's answer, the report and the outcome tables would repeat them. So a
// name is shown only when it has the shape of a field name: it starts with a
// letter, holds only letters, digits, '_', '-' and '.' (no space: a patient's
// name has one), has no run of three digits (an NHS number, a local patient
// id, a date) and is not a postcode.
func shownName(name string) string {
	if name == "" || !isASCIILetter(name[0]) || nhs.PostcodeValid(name) {
		return ""
	}
	digits := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if digits == 3 {
				return ""
			}
			continue
		case isASCIILetter(c), c == '_', c == '-', c == '.':
		default:
			return ""
		}
		digits = 0
	}
	return safeName(name)
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// safeName bounds an unknown field name before it goes into an error: the
// name is the provider's text and could be anything.
func safeName(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
