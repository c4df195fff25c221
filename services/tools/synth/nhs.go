package synth

import (
	"math/rand/v2"

	"github.com/dmic-nhs/dmic/services/internal/nhs"
)

// nhsPrefix draws the first digit from the ranges England and Wales issue
// from (400–499M, 600–799M), so numbers look real rather than like the 999
// test range.
func nhsPrefix(rng *rand.Rand) byte {
	switch r := rng.IntN(4); r {
	case 0, 1:
		return '4'
	case 2:
		return '6'
	default:
		return '7'
	}
}

// drawNine fills the first nine digits of d: a prefix and eight random digits.
func drawNine(rng *rand.Rand, d *[10]byte) {
	d[0] = nhsPrefix(rng)
	for i := 1; i < 9; i++ {
		d[i] = '0' + byte(rng.IntN(10))
	}
}

// ValidNHSNumber returns a 10-digit NHS number that passes the NHS number
// rules (package nhs: Modulus 11, not one repeated digit) and starts 4, 6
// or 7 (the English and Welsh ranges).
func ValidNHSNumber(rng *rand.Rand) string {
	var d [10]byte
	for {
		drawNine(rng, &d)
		c, ok := nhs.CheckDigit(string(d[:9]))
		if !ok {
			continue
		}
		d[9] = c
		if n := string(d[:]); !nhs.NumberRepeated(n) {
			return n
		}
	}
}

// invalidNHSNumber returns a well-formed 10-digit number in the same ranges
// that fails Modulus 11: either a wrong check digit, or nine digits for which
// no check digit exists. It breaks the checksum and nothing else.
func invalidNHSNumber(rng *rand.Rand) string {
	var d [10]byte
	wantNoCheck := rng.IntN(2) == 0
	for {
		drawNine(rng, &d)
		c, ok := nhs.CheckDigit(string(d[:9]))
		switch {
		case wantNoCheck && !ok:
			d[9] = '0' + byte(rng.IntN(10))
		case !wantNoCheck && ok:
			d[9] = '0' + byte((int(c-'0')+1+rng.IntN(9))%10)
		default:
			continue
		}
		if n := string(d[:]); !nhs.NumberRepeated(n) {
			return n
		}
	}
}
