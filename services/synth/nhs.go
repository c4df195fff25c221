package synth

import "math/rand/v2"

// nhsCheckDigit returns the Modulus 11 check digit of the first nine digits
// of d, or 10 when no check digit exists (such a number is never valid).
func nhsCheckDigit(d *[10]byte) int {
	s := 0
	for i := 0; i < 9; i++ {
		s += int(d[i]) * (10 - i)
	}
	c := 11 - s%11
	if c == 11 {
		c = 0
	}
	return c
}

func allSame(d *[10]byte) bool {
	for i := 1; i < 10; i++ {
		if d[i] != d[0] {
			return false
		}
	}
	return true
}

func digitsString(d *[10]byte) string {
	var b [10]byte
	for i, v := range d {
		b[i] = '0' + v
	}
	return string(b[:])
}

// nhsPrefix draws the first digit from the ranges England and Wales issue
// from (400–499M, 600–799M), so numbers look real rather than like the 999
// test range.
func nhsPrefix(rng *rand.Rand) byte {
	switch r := rng.IntN(4); r {
	case 0, 1:
		return 4
	case 2:
		return 6
	default:
		return 7
	}
}

// ValidNHSNumber returns a 10-digit NHS number that passes Modulus 11, is not
// one repeated digit, and starts 4, 6 or 7 (the English and Welsh ranges).
func ValidNHSNumber(rng *rand.Rand) string {
	var d [10]byte
	for {
		d[0] = nhsPrefix(rng)
		for i := 1; i < 9; i++ {
			d[i] = byte(rng.IntN(10))
		}
		c := nhsCheckDigit(&d)
		if c == 10 {
			continue
		}
		d[9] = byte(c)
		if allSame(&d) {
			continue
		}
		return digitsString(&d)
	}
}

// invalidNHSNumber returns a well-formed 10-digit number in the same ranges
// that fails Modulus 11: either a wrong check digit, or nine digits for which
// no check digit exists. It breaks the checksum and nothing else.
func invalidNHSNumber(rng *rand.Rand) string {
	var d [10]byte
	wantNoCheck := rng.IntN(2) == 0
	for {
		d[0] = nhsPrefix(rng)
		for i := 1; i < 9; i++ {
			d[i] = byte(rng.IntN(10))
		}
		c := nhsCheckDigit(&d)
		switch {
		case wantNoCheck && c == 10:
			d[9] = byte(rng.IntN(10))
		case !wantNoCheck && c != 10:
			d[9] = byte((c + 1 + rng.IntN(9)) % 10)
		default:
			continue
		}
		if allSame(&d) {
			continue
		}
		return digitsString(&d)
	}
}
