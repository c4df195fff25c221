package record

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/limits"
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

// valKind is the JSON type of a value, or text for a CSV cell.
type valKind uint8

const (
	valString valKind = iota // raw is the quoted JSON string
	valNumber
	valNull
	valBool
	valObject
	valArray
	valText // raw is plain text (CSV cell)
)

func (k valKind) describe() string {
	switch k {
	case valString, valText:
		return "a string"
	case valNumber:
		return "a number"
	case valNull:
		return "null"
	case valBool:
		return "true or false"
	case valObject:
		return "an object"
	}
	return "an array"
}

// entry is one name/value pair of a record before it is applied.
type entry struct {
	f    *field // nil for an unknown name
	name string
	raw  string
	kind valKind
	esc  bool // the JSON string holds escapes
}

// text is the entry's value as text, whitespace trimmed; ok is false when the
// JSON type cannot stand for text.
func (e *entry) text() (string, bool) {
	switch e.kind {
	case valText:
		return strings.TrimSpace(e.raw), true
	case valString:
		if !e.esc {
			return strings.TrimSpace(e.raw[1 : len(e.raw)-1]), true
		}
		var s string
		if err := json.Unmarshal([]byte(e.raw), &s); err != nil {
			return "", false
		}
		return strings.TrimSpace(s), true
	case valNumber:
		s, ok := plainNumber(e.raw)
		return s, ok
	case valNull:
		return "", true
	}
	return "", false
}

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

const (
	msgNotJSON   = "record is not valid JSON"
	msgNotObject = "record is not a JSON object"
	// Records that would otherwise pass for one bad line: say what they are.
	msgArray   = "record is a JSON array, not an object: send one record object per line, not an array of them"
	msgSeveral = "line holds more than one JSON object: put each record on its own line"
)

// scanObject checks that src is exactly one JSON object and splits it into
// its name/value pairs. It checks the JSON grammar itself as it goes, so each
// record is read once (json.Valid first would double the cost); a nested
// object or array, which no field allows, is checked by json.Valid. The
// message is "" when src is well-formed.
func scanObject(src string, entries []entry) ([]entry, string) {
	i := skipWS(src, 0)
	if i == len(src) {
		return entries, msgNotJSON
	}
	if src[i] != '{' {
		switch {
		case !isValidJSON(src):
			return entries, msgNotJSON
		case src[i] == '[':
			return entries, msgArray
		}
		return entries, msgNotObject
	}
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == '}' {
		i++
	} else {
		for {
			if i >= len(src) || src[i] != '"' {
				return entries, msgNotJSON
			}
			ke, kesc, ok := scanString(src, i)
			if !ok {
				return entries, msgNotJSON
			}
			name := src[i+1 : ke-1]
			if kesc {
				var s string
				if err := json.Unmarshal([]byte(src[i:ke]), &s); err != nil {
					return entries, msgNotJSON
				}
				name = s
			}
			i = skipWS(src, ke)
			if i >= len(src) || src[i] != ':' {
				return entries, msgNotJSON
			}
			i = skipWS(src, i+1)
			if i >= len(src) {
				return entries, msgNotJSON
			}
			vs := i
			var k valKind
			var esc bool
			switch c := src[i]; {
			case c == '"':
				i, esc, ok = scanString(src, i)
				k = valString
			case c == '{' || c == '[':
				k = valObject
				if c == '[' {
					k = valArray
				}
				i = skipComposite(src, i)
				ok = i <= len(src) && isValidJSON(src[vs:i])
			case c == 't':
				i, ok = scanLiteral(src, i, "true")
				k = valBool
			case c == 'f':
				i, ok = scanLiteral(src, i, "false")
				k = valBool
			case c == 'n':
				i, ok = scanLiteral(src, i, "null")
				k = valNull
			default:
				i, ok = scanNumber(src, i)
				k = valNumber
			}
			if !ok {
				return entries, msgNotJSON
			}
			entries = append(entries, entry{f: fields.byName[name], name: name, raw: src[vs:i], kind: k, esc: esc})
			i = skipWS(src, i)
			if i >= len(src) {
				return entries, msgNotJSON
			}
			if src[i] == '}' {
				i++
				break
			}
			if src[i] != ',' {
				return entries, msgNotJSON
			}
			i = skipWS(src, i+1)
		}
	}
	if j := skipWS(src, i); j != len(src) {
		if src[j] == '{' {
			return entries, msgSeveral
		}
		return entries, msgNotJSON
	}
	return entries, ""
}

func isValidJSON(s string) bool {
	return json.Valid([]byte(s))
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
			return nil, d, failEntry(entries, e, RuleUnknownField, "unknown field")
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
	return withRecordID(entries, &DecodeError{Field: safeName(e.name), RuleID: rule, Message: msg})
}

// withRecordID adds the record's id, when one can be read, so the provider
// learns which record failed. The CDS unique identifier is not patient
// identifiable (the format forbids it to contain the NHS number).
func withRecordID(entries []entry, de *DecodeError) *DecodeError {
	for i := len(entries) - 1; i >= 0; i-- {
		if e := &entries[i]; e.f != nil && e.f.name == fieldUID {
			if v, ok := e.text(); ok && len(v) <= 64 {
				de.RecordID = v
			}
			break
		}
	}
	return de
}

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

func skipWS(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString checks the JSON string starting at the quote s[i]. It returns
// the index after the closing quote, whether the string holds escapes, and
// whether it is well-formed.
func scanString(s string, i int) (int, bool, bool) {
	esc := false
	for j := i + 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '"':
			return j + 1, esc, true
		case c < 0x20:
			return j, esc, false
		case c == '\\':
			esc = true
			j++
			if j >= len(s) {
				return j, esc, false
			}
			switch s[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s) {
					return j, esc, false
				}
				for _, h := range []byte(s[j+1 : j+5]) {
					if !isHex(h) {
						return j, esc, false
					}
				}
				j += 4
			default:
				return j, esc, false
			}
		}
	}
	return len(s), esc, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func scanLiteral(s string, i int, lit string) (int, bool) {
	if strings.HasPrefix(s[i:], lit) {
		return i + len(lit), true
	}
	return i, false
}

// skipComposite returns the index after the object or array starting at
// s[i], found by bracket depth; its grammar is checked by the caller.
func skipComposite(s string, i int) int {
	depth := 0
	for i < len(s) {
		switch s[i] {
		case '"':
			end, _, ok := scanString(s, i)
			if !ok {
				return len(s) + 1
			}
			i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return len(s) + 1
}

// scanNumber checks the JSON number starting at s[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(s string, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return i, false
	}
	var ok bool
	if s[i] == '0' {
		i++
	} else if i, ok = digits(i); !ok {
		return i, false
	}
	if i < len(s) && s[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}

// maxExponent bounds the exponent of a JSON number given for a text field:
// nothing in the format needs more, and it keeps 1e999999 from becoming a
// million digits.
const maxExponent = 64

// plainNumber writes a JSON number literal as plain decimal text without an
// exponent: 9.434765919e9 -> "9434765919", 1.50 -> "1.5". Literals without
// a fraction or exponent are returned as they are.
func plainNumber(lit string) (string, bool) {
	if strings.IndexAny(lit, ".eE") < 0 {
		return lit, true
	}
	neg := false
	if lit[0] == '-' {
		neg, lit = true, lit[1:]
	}
	mant, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		mant = lit[:i]
		es := lit[i+1:]
		sign := 1
		switch es[0] {
		case '+':
			es = es[1:]
		case '-':
			sign, es = -1, es[1:]
		}
		es = strings.TrimLeft(es, "0")
		if len(es) > 3 {
			return "", false
		}
		n := 0
		if es != "" {
			n, _ = strconv.Atoi(es)
		}
		if n > maxExponent {
			return "", false
		}
		exp = sign * n
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	digits := intPart + frac
	point := len(intPart) + exp
	var b []byte
	switch {
	case point <= 0:
		b = append(b, "0."...)
		for range -point {
			b = append(b, '0')
		}
		b = append(b, digits...)
	case point >= len(digits):
		b = append(b, digits...)
		for range point - len(digits) {
			b = append(b, '0')
		}
	default:
		b = append(b, digits[:point]...)
		b = append(b, '.')
		b = append(b, digits[point:]...)
	}
	s := string(b)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	s = strings.TrimLeft(s, "0")
	if s == "" || s[0] == '.' {
		s = "0" + s
	}
	if neg && s != "0" {
		s = "-" + s
	}
	return s, true
}
