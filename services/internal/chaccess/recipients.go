package chaccess

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// ProfileRecipient is the settings profile of a recipient's user: read only
// (no INSERT, no DDL, no SET), and every query logged in system.query_log,
// from where dmic copies it to the access audit (docs/data-access.md).
const ProfileRecipient = "dmic_recipient"

// RecipientUser is the ClickHouse user of one data sharing agreement: it may
// use its database only. The user's name is its database's name.
type RecipientUser struct {
	Database     string
	PasswordHash string
}

// RecipientsXML is a users.d file defining the recipients' users. It is
// rewritten at run time (by load, as agreements start and end); ClickHouse
// reads a changed users.d file without a restart (18.16 and current), so a
// user left out of it can no longer log in, and a running session's next
// query is refused.
func RecipientsXML(networks []string, users []RecipientUser) ([]byte, error) {
	var problems []string
	if len(networks) == 0 {
		problems = append(problems, "no networks: nobody could log in")
	}
	for _, u := range users {
		if !isIdent(u.Database) {
			problems = append(problems, fmt.Sprintf("recipient database %q: want letters, digits and _", u.Database))
		}
		if _, ok := Lookup(u.Database); ok {
			problems = append(problems, fmt.Sprintf("recipient %q: the name of one of dmic's own users", u.Database))
		}
		if b, err := hex.DecodeString(u.PasswordHash); err != nil || len(b) != sha256.Size {
			problems = append(problems, fmt.Sprintf("password hash of %s: not 64 hex digits", u.Database))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("recipients' users: %s", strings.Join(problems, "; "))
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("<?xml version=\"1.0\"?>\n<!-- Recipients of data sharing agreements: written by load at run time (docs/data-access.md). -->\n<yandex>\n")
	w("    <profiles>\n        <%s>\n            <readonly>1</readonly>\n            <allow_ddl>0</allow_ddl>\n            <log_queries>1</log_queries>\n        </%s>\n    </profiles>\n", ProfileRecipient, ProfileRecipient)
	w("    <users>\n")
	for _, u := range users {
		w("        <%s>\n            <password_sha256_hex>%s</password_sha256_hex>\n            <networks>\n", u.Database, u.PasswordHash)
		for _, n := range networks {
			w("                <ip>%s</ip>\n", esc(n))
		}
		w("            </networks>\n            <profile>%s</profile>\n            <quota>%s</quota>\n", ProfileRecipient, QuotaName)
		w("            <allow_databases>\n                <database>%s</database>\n            </allow_databases>\n        </%s>\n", u.Database, u.Database)
	}
	w("    </users>\n    <quotas>\n        <%s></%s>\n    </quotas>\n</yandex>\n", QuotaName, QuotaName)
	return b.Bytes(), nil
}
