package didi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/dmic-nhs/dmic/services/internal/nhs"
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

// Pseudonymise returns the pseudonym of an NHS number in its one form,
// exactly 10 ASCII digits (nhs.NumberWellFormed); anything else, a number
// written with spaces or hyphens included, gives "". The check digit is not
// checked here: Deidentifier does that.
func (p *Pseudonymiser) Pseudonymise(nhsNumber string) string {
	if !nhs.NumberWellFormed(nhsNumber) {
		return ""
	}
	copy(p.digits[:], nhsNumber)
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

// String keeps the keyed hash's internal state (derived from the secret)
// out of logs if a Pseudonymiser is ever printed.
func (p *Pseudonymiser) String() string {
	return fmt.Sprintf("deid.Pseudonymiser{KeyVersion: %q}", p.version)
}

// GoString implements fmt.GoStringer for %#v.
func (p *Pseudonymiser) GoString() string { return p.String() }
