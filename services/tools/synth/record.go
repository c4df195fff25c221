package synth

import (
	"strconv"
)

// field is one name/value pair of a provider JSON record. Records are kept as
// ordered pairs rather than structs so that a national disagreement, a
// revision or a deliberate fault can change or drop any field by name, and the
// output keeps a stable field order.
type field struct {
	name  string
	val   string // for a number, its decimal digits
	isNum bool   // a JSON integer (local flow price and count), written unquoted
}

type record struct {
	fields []field
}

func (r *record) add(name, val string) {
	if val == "" {
		return // optional fields with no value are left out, as providers do
	}
	r.fields = append(r.fields, field{name: name, val: val})
}

func (r *record) addNum(name string, n int64) {
	r.fields = append(r.fields, field{name: name, val: strconv.FormatInt(n, 10), isNum: true})
}

func (r *record) get(name string) string {
	for i := range r.fields {
		if r.fields[i].name == name {
			return r.fields[i].val
		}
	}
	return ""
}

func (r *record) getNum(name string) int64 {
	for i := range r.fields {
		if r.fields[i].name == name && r.fields[i].isNum {
			n, _ := strconv.ParseInt(r.fields[i].val, 10, 64)
			return n
		}
	}
	return 0
}

// set replaces the value of name, or appends the field when absent.
func (r *record) set(name, val string) {
	for i := range r.fields {
		if r.fields[i].name == name {
			r.fields[i].val = val
			return
		}
	}
	r.fields = append(r.fields, field{name: name, val: val})
}

func (r *record) setNum(name string, n int64) {
	for i := range r.fields {
		if r.fields[i].name == name {
			r.fields[i] = field{name: name, val: strconv.FormatInt(n, 10), isNum: true}
			return
		}
	}
	r.addNum(name, n)
}

func (r *record) del(name string) {
	for i := range r.fields {
		if r.fields[i].name == name {
			r.fields = append(r.fields[:i], r.fields[i+1:]...)
			return
		}
	}
}

func (r *record) clone() record {
	return record{fields: append([]field(nil), r.fields...)}
}

// json renders the record as one flat JSON object with no trailing newline.
func (r *record) json() []byte {
	n := 2
	for i := range r.fields {
		n += len(r.fields[i].name) + len(r.fields[i].val) + 6
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i := range r.fields {
		if i > 0 {
			b = append(b, ',')
		}
		// Field names are this package's own constants: nothing to escape.
		b = append(b, '"')
		b = append(b, r.fields[i].name...)
		b = append(b, '"', ':')
		if r.fields[i].isNum {
			b = append(b, r.fields[i].val...)
		} else {
			b = appendJSONString(b, r.fields[i].val)
		}
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string. Generated values are plain
// ASCII; the escaping is there so a caller-supplied code can never break the
// one-object-per-line framing.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue // includes UTF-8 bytes, which encoding/json accepts as is
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Dates are handled as days since 1970-01-01 (UTC), which keeps date
// arithmetic to integer additions; civil conversions follow Howard Hinnant's
// algorithms.

func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func civilFromDays(z int) (y, m, d int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10%10), byte('0'+n%10))
}

func appendDate(b []byte, day int) []byte {
	y, m, d := civilFromDays(day)
	b = append2(b, y/100)
	b = append2(b, y%100)
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	return append2(b, d)
}

// dateString formats a day number as YYYY-MM-DD.
func dateString(day int) string {
	var buf [10]byte
	return string(appendDate(buf[:0], day))
}

// dateTimeString formats seconds since the epoch as RFC 3339 in UTC.
func dateTimeString(sec int64) string {
	day := int(sec / 86400)
	rem := int(sec % 86400)
	var buf [20]byte
	b := appendDate(buf[:0], day)
	b = append(b, 'T')
	b = append2(b, rem/3600)
	b = append(b, ':')
	b = append2(b, rem/60%60)
	b = append(b, ':')
	b = append2(b, rem%60)
	b = append(b, 'Z')
	return string(b)
}

// parseDay turns YYYY-MM-DD back into a day number; ok is false when s is not
// a date in that form.
func parseDay(s string) (int, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, err1 := strconv.Atoi(s[0:4])
	m, err2 := strconv.Atoi(s[5:7])
	d, err3 := strconv.Atoi(s[8:10])
	if err1 != nil || err2 != nil || err3 != nil || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}
