package deid

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
)

// Pseudonymiser turns NHS numbers into keyed pseudonyms:
// hex(HMAC-SHA256(secret, 10-digit NHS number)), all 64 hex characters.
// The full digest is kept because truncation brings collisions that then
// need analysis. One key per recipient domain makes pseudonyms linkable
// inside a domain and unlinkable across domains.
//
// It keeps one keyed hash and its buffers and resets them per call, which
// avoids the allocations of hmac.New per record. It is therefore NOT safe
// for concurrent use: give each goroutine its own.
type Pseudonymiser struct {
	version string
	mac     hash.Hash
	digits  [10]byte
	sum     [sha256.Size]byte
	hexBuf  [2 * sha256.Size]byte
}

// NewPseudonymiser returns a Pseudonymiser for k.
func NewPseudonymiser(k Key) *Pseudonymiser {
	return &Pseudonymiser{version: k.Version, mac: hmac.New(sha256.New, k.Secret)}
}

// KeyVersion is the version of the key the pseudonyms are made with.
func (p *Pseudonymiser) KeyVersion() string { return p.version }

// Pseudonymise returns the pseudonym of an NHS number. Spaces and hyphens
// are removed first ("943 476 5919" and "9434765919" give the same
// pseudonym); anything that is not then exactly 10 digits gives "". The
// checksum is not checked here: Deidentifier does that.
func (p *Pseudonymiser) Pseudonymise(nhsNumber string) string {
	if !normaliseNHSNumber(nhsNumber, &p.digits) {
		return ""
	}
	return p.of(&p.digits)
}

// of returns the pseudonym of 10 normalised digits.
func (p *Pseudonymiser) of(digits *[10]byte) string {
	p.mac.Reset()
	p.mac.Write(digits[:])
	sum := p.mac.Sum(p.sum[:0])
	hex.Encode(p.hexBuf[:], sum)
	return string(p.hexBuf[:])
}

// normaliseNHSNumber copies the digits of s into out, skipping spaces and
// hyphens, and reports whether there were exactly 10 digits and nothing else.
func normaliseNHSNumber(s string, out *[10]byte) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '-' || c == '\t':
			continue
		case c >= '0' && c <= '9':
			if n == 10 {
				return false
			}
			out[n] = c
			n++
		default:
			return false
		}
	}
	return n == 10
}

// nhsNumberValid applies the Modulus 11 check to 10 normalised digits, and
// also refuses numbers of one repeated digit (0000000000 passes the sum).
// It is a private copy so that this package does not depend on validation.
func nhsNumberValid(d *[10]byte) bool {
	same := true
	sum := 0
	for i := 0; i < 9; i++ {
		sum += int(d[i]-'0') * (10 - i)
		if d[i] != d[0] {
			same = false
		}
	}
	if same && d[9] == d[0] {
		return false
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	return check != 10 && check == int(d[9]-'0')
}

// String keeps the keyed hash's internal state (derived from the secret)
// out of logs if a Pseudonymiser is ever printed.
func (p *Pseudonymiser) String() string {
	return fmt.Sprintf("deid.Pseudonymiser{KeyVersion: %q}", p.version)
}

// GoString implements fmt.GoStringer for %#v.
func (p *Pseudonymiser) GoString() string { return p.String() }
