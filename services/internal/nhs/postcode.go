package nhs

import "strings"

// The pseudo-postcodes with a fixed meaning in the CDS (POSTCODE OF USUAL
// ADDRESS), in canonical form. Any other "ZZ99 nXZ" names a country outside
// the UK (CAM 2025/26 guidance, Appendix H).
const (
	PseudoNoFixedAbode    = "ZZ99 3VZ"
	PseudoNotKnown        = "ZZ99 3WZ"
	PseudoEngland         = "ZZ99 3CZ" // England, not otherwise specified
	PseudoScotland        = "ZZ99 1WZ"
	PseudoNorthernIreland = "ZZ99 2WZ"
	PseudoWales           = "ZZ99 3GZ"
)

// NormalisePostcode returns a UK postcode in canonical form ("SW1A 1AA",
// "ZZ99 3VZ"): upper case, spaces and tabs removed, one space before the
// last three characters. ok is false, and the result "", when s is not a
// postcode by the rules in the package documentation. It allocates nothing
// when s is already canonical.
func NormalisePostcode(s string) (string, bool) {
	b, n, ok := normalisePostcode(s)
	if !ok {
		return "", false
	}
	if s == string(b[:n]) { // compared without allocating
		return s, true
	}
	return string(b[:n]), true
}

// PostcodeValid reports whether NormalisePostcode accepts s, without
// building the result.
func PostcodeValid(s string) bool {
	_, _, ok := normalisePostcode(s)
	return ok
}

// IsPseudoPostcode reports whether a canonical postcode is a ZZ99
// pseudo-postcode (ZZ99 + digit + letter + Z).
func IsPseudoPostcode(canonical string) bool {
	return len(canonical) == 8 && strings.HasPrefix(canonical, "ZZ99 ") &&
		pseudoInward(canonical[5], canonical[6], canonical[7])
}

// PostcodeSector returns the sector of a canonical postcode: the outward
// code, a space and the first character of the inward code ("SM1 2AB" ->
// "SM1 2"). It returns "" for anything not in canonical form.
func PostcodeSector(canonical string) string {
	i := strings.IndexByte(canonical, ' ')
	if i < 2 || len(canonical) != i+4 {
		return ""
	}
	return canonical[:i+2]
}

func normalisePostcode(s string) (out [8]byte, n int, ok bool) {
	var pc [7]byte
	m := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case isLetter(c), isDigit(c):
		default:
			return out, 0, false
		}
		if m == len(pc) {
			return out, 0, false
		}
		pc[m] = c
		m++
	}
	if m < 5 {
		return out, 0, false
	}
	outward, inward := pc[:m-3], pc[m-3:m]
	if !postcodeParts(outward, inward) {
		return out, 0, false
	}
	n = copy(out[:], outward)
	out[n] = ' '
	n++
	n += copy(out[n:], inward)
	return out, n, true
}

// postcodeParts checks an upper-case outward code (2 to 4 characters) and
// inward code (3 characters).
func postcodeParts(outward, inward []byte) bool {
	switch {
	case string(outward) == "GIR" && string(inward) == "0AA":
		return true
	case string(outward) == "ZZ99":
		// Their inward letters break the position rules (V, C), so they
		// have a form of their own.
		return pseudoInward(inward[0], inward[1], inward[2])
	}
	if !isDigit(inward[0]) || !inwardLetter(inward[1]) || !inwardLetter(inward[2]) {
		return false
	}
	o := outward
	if !isLetter(o[0]) || o[0] == 'Q' || o[0] == 'V' || o[0] == 'X' {
		return false
	}
	// A9, A99, A9A
	if isDigit(o[1]) {
		switch len(o) {
		case 2:
			return true
		case 3:
			return isDigit(o[2]) || isLetter(o[2])
		}
		return false
	}
	// AA9, AA99, AA9A
	if o[1] == 'I' || o[1] == 'J' || o[1] == 'Z' || len(o) < 3 || !isDigit(o[2]) {
		return false
	}
	switch len(o) {
	case 3:
		return true
	case 4:
		return isDigit(o[3]) || isLetter(o[3])
	}
	return false
}

// pseudoInward is the inward code of a ZZ99 pseudo-postcode: digit, letter, Z.
func pseudoInward(a, b, c byte) bool {
	return isDigit(a) && isLetter(b) && c == 'Z'
}

func inwardLetter(c byte) bool {
	switch c {
	case 'C', 'I', 'K', 'M', 'O', 'V':
		return false
	}
	return isLetter(c)
}
