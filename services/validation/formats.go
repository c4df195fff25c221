package validation

// NHSNumberValid reports whether s is a valid NHS number: exactly 10 digits,
// not one digit repeated, and a correct Modulus 11 check digit.
func NHSNumberValid(s string) bool {
	return nhsNumberRule(s) == ""
}

// nhsNumberRule is the rule a present NHS number breaks, or "".
func nhsNumberRule(s string) string {
	if len(s) != 10 {
		return RuleNHSFormat
	}
	same := true
	sum := 0
	for i := 0; i < 10; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return RuleNHSFormat
		}
		if c != s[0] {
			same = false
		}
		if i < 9 {
			sum += int(c-'0') * (10 - i)
		}
	}
	// Every repeated-digit number passes the checksum, so it is its own rule.
	if same {
		return RuleNHSRepeated
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	if check == 10 || check != int(s[9]-'0') {
		return RuleNHSCheckDigit
	}
	return ""
}

// NormalisePostcode returns a UK postcode in its one-space form ("SW1A 1AA"):
// upper case, spaces removed, one space before the last three characters. ok
// is false, and the result "", when s is not a valid postcode format. Valid
// outward codes are A9, A99, AA9, AA99, A9A and AA9A (first letter not Q, V
// or X; second letter not I, J or Z); the inward code is 9AA, its letters not
// C, I, K, M, O or V. The pseudo-postcodes ZZ99 nXZ and GIR 0AA are accepted.
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

// postcodeValid is NormalisePostcode without building the result.
func postcodeValid(s string) bool {
	_, _, ok := normalisePostcode(s)
	return ok
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
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
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

func postcodeParts(outward, inward []byte) bool {
	switch {
	case string(outward) == "GIR" && string(inward) == "0AA":
		return true
	case string(outward) == "ZZ99":
		// Pseudo-postcodes: ZZ99 3VZ no fixed abode, ZZ99 6CZ India, ...
		return isDigit(inward[0]) && isLetter(inward[1]) && isLetter(inward[2])
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

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'A' <= c && c <= 'Z' }

func inwardLetter(c byte) bool {
	switch c {
	case 'C', 'I', 'K', 'M', 'O', 'V':
		return false
	}
	return isLetter(c)
}

// parseDate reads a YYYY-MM-DD calendar date as the number yyyymmdd, which
// orders like the date. Years 0001-9999; ok is false for anything else.
func parseDate(s string) (int, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return y*10000 + m*100 + d, true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// timeValid accepts HH:MM and HH:MM:SS on a 24-hour clock.
func timeValid(s string) bool {
	if len(s) != 5 && len(s) != 8 {
		return false
	}
	if s[2] != ':' {
		return false
	}
	h, ok1 := digits(s[0:2])
	m, ok2 := digits(s[3:5])
	if !ok1 || !ok2 || h > 23 || m > 59 {
		return false
	}
	if len(s) == 8 {
		sec, ok := digits(s[6:8])
		return s[5] == ':' && ok && sec <= 59
	}
	return true
}

// alnum reports whether s is only ASCII letters and digits.
func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// uniqueIdentifierValid: up to 35 of A-Z a-z 0-9 and '-'.
func uniqueIdentifierValid(s string) bool {
	if len(s) > 35 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// practiceCodeValid: a letter and five digits, or a default code.
func practiceCodeValid(s string) bool {
	if inList(practiceDefaults, s) {
		return true
	}
	if len(s) != 6 || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < 6; i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
