package record

import (
	"encoding/json"
	"strconv"
	"strings"
)

// The scanner: it checks that a line is exactly one JSON object and splits it
// into name/value entries without building a map or decoding values, so
// that decoding a record (decode.go) maps the entries to fields and nothing
// else. Kept apart from the field mapping so that each can be read alone.

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
