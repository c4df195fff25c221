package nhs

// NumberWellFormed reports whether s has the form of an NHS number: exactly
// 10 ASCII digits and nothing else (validation's NHS-001).
func NumberWellFormed(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// NumberRepeated reports whether s is one digit repeated (0000000000,
// 1111111111, ...: validation's NHS-003). Every such 10-digit number passes
// the Modulus 11 check, so it needs a rule of its own.
func NumberRepeated(s string) bool {
	if s == "" {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] != s[0] {
			return false
		}
	}
	return true
}

// CheckDigit returns the Modulus 11 check digit ('0' to '9') of the first
// nine digits of s: weights 10 down to 2, check = 11 - (sum mod 11), 11 read
// as 0. ok is false when the check is 10, which no number with these nine
// digits can carry, and when s does not start with nine ASCII digits.
func CheckDigit(s string) (digit byte, ok bool) {
	if len(s) < 9 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 9; i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		sum += int(s[i]-'0') * (10 - i)
	}
	c := 11 - sum%11
	switch c {
	case 11:
		return '0', true
	case 10:
		return 0, false
	}
	return byte('0' + c), true
}

// NumberCheckDigitOK reports whether a 10-digit s carries its Modulus 11
// check digit (validation's NHS-002). It is false for anything that is not
// NumberWellFormed.
func NumberCheckDigitOK(s string) bool {
	if !NumberWellFormed(s) {
		return false
	}
	c, ok := CheckDigit(s)
	return ok && c == s[9]
}

// NumberValid reports whether s is a valid NHS number: exactly 10 digits,
// not one digit repeated, and the right Modulus 11 check digit.
func NumberValid(s string) bool {
	return NumberCheckDigitOK(s) && !NumberRepeated(s)
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'A' <= c && c <= 'Z' }
