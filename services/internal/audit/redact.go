package audit

import (
	"regexp"
)

// Redacted stands in for what Redact removes.
const Redacted = "[redacted]"

// What a patient identifier looks like, as it could reach an entry's detail.
// The detail is the message a caller was given, and some messages echo what
// the caller sent: a submitter name, an idempotency key, the provider code of
// a record of another provider ("line 3 (\"9434765919\")" when a CSV's
// columns are shifted). Whatever the caller put there must not become a
// patient identifier kept for 400 days on the trail and in ClickHouse.
var (
	// NHS numbers: ten digits, together or as 3 3 4 with spaces or hyphens;
	// any longer run of digits too, since one may hold an NHS number.
	nhsNumber = regexp.MustCompile(`\d{10,}|\b\d{3}[ -]\d{3}[ -]\d{4}\b`)
	// UK postcodes (SW1A 1AA, M1 1AE, LS1 4AP), with or without the space.
	postcode = regexp.MustCompile(`(?i)\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b`)
	// Dates as records write them (a date of birth): 1980-01-02, 02/01/1980.
	// A timestamp (a date followed by T, as RFC 3339 writes it, in a
	// certificate's validity or a subject's period) is not a date of birth
	// and is kept.
	date = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{4}\b`)
)

// Redact is s with everything shaped like a patient identifier (an NHS
// number, a postcode, a date) replaced by Redacted. It cannot recognise a
// free-text identifier (a local patient id): the only caller-supplied values
// a message echoes are organisation codes and names, quoted and bounded by
// the service that answers (ingest's quoteName).
func Redact(s string) string {
	s = nhsNumber.ReplaceAllString(s, Redacted)
	s = postcode.ReplaceAllString(s, Redacted)
	var out []byte
	last := 0
	for _, m := range date.FindAllStringIndex(s, -1) {
		if m[1] < len(s) && s[m[1]] == 'T' {
			continue
		}
		out = append(out, s[last:m[0]]...)
		out = append(out, Redacted...)
		last = m[1]
	}
	if out == nil {
		return s
	}
	return string(append(out, s[last:]...))
}
