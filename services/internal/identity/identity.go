// Package identity says who is calling: an organisation (its ODS code), a
// role, and the system, person or service that holds the credential. It is the
// one home of the mapping from a credential to an identity (docs/security.md):
// an X.509 client certificate names its identity in one URI subject
// alternative name, urn:dmic:<role>:<ORG>, and its subject common name names
// the holder. What a role may do is decided elsewhere, in one table per
// protocol (internal/access); this package only says who.
package identity

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Role is what an identity is for. The set is closed: a credential naming any
// other role is refused.
type Role string

// The roles (docs/security.md, "Roles").
const (
	// Provider is a provider's submission system (a hospital trust): it
	// submits its own records, and reads its own submissions' reports.
	Provider Role = "provider"
	// National is the national exchange (SUS): it submits national copies.
	National Role = "national"
	// Operator runs the platform: pause, resume, skip, replay, load
	// specifications. Its organisation is the data centre's (DSCRO's).
	Operator Role = "operator"
	// KeyCustodian holds the pseudonymisation keys: list, rotate,
	// re-pseudonymise. Nobody else may.
	KeyCustodian Role = "key-custodian"
	// Service is one of dmic's own services (its server certificate, and its
	// client certificate where it calls another).
	Service Role = "service"
	// Analyst reads: status, listings, reports.
	Analyst Role = "analyst"
)

// Roles are every role, in the order the documentation lists them.
func Roles() []Role {
	return []Role{Provider, National, Operator, KeyCustodian, Service, Analyst}
}

// ParseRole is the role named s; an error for any other name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles(), r) {
		return "", fmt.Errorf("role %s is not one of %s", quote(s), roleList())
	}
	return r, nil
}

func roleList() string {
	names := make([]string, 0, len(Roles()))
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

// Method is how an identity was established.
type Method string

// The authentication methods.
const (
	// MTLS is a client certificate presented in the TLS handshake and
	// verified against the trusted certificate authorities.
	MTLS Method = "mtls"
	// Bearer is a bearer token (OpenID Connect) in the Authorization header:
	// the authenticator for people in a browser plugs in here.
	Bearer Method = "bearer"
)

// Identity is an authenticated caller. It never holds a secret: it may be
// logged and audited whole.
type Identity struct {
	// Org is the ODS code of the caller's organisation (RXX, X26, ...).
	Org  string `json:"org"`
	Role Role   `json:"role"`
	// Name is the system, person or service holding the credential: the
	// certificate's subject common name.
	Name   string `json:"name"`
	Method Method `json:"method"`
	// Serial names the credential: the certificate's serial number (hex),
	// so that an audit entry leads to the certificate that was used.
	Serial string `json:"serial,omitempty"`
}

// String is the identity as logs and answers show it: role:ORG (name).
func (i Identity) String() string {
	s := string(i.Role) + ":" + i.Org
	if i.Name != "" {
		s += " (" + i.Name + ")"
	}
	return s
}

// LogAttrs are the identity's attributes for a structured log line.
func (i Identity) LogAttrs() []any {
	return []any{"caller_org", i.Org, "caller_role", string(i.Role), "caller_name", i.Name, "caller_method", string(i.Method), "caller_serial", i.Serial}
}

// Is reports whether the identity has one of roles.
func (i Identity) Is(roles ...Role) bool { return slices.Contains(roles, i.Role) }

// URIPrefix starts every identity URI.
const URIPrefix = "urn:dmic:"

// URI is the subject alternative name that names role and org in a
// certificate: urn:dmic:<role>:<ORG>.
func URI(role Role, org string) string { return URIPrefix + string(role) + ":" + org }

// odsPattern is an ODS organisation code as dmic's identities use it: 3 to 6
// upper-case letters and digits. Trusts have 3 (RXX), independent providers
// and sites 5 (G6V2S, RXX01), GP practices 6 (A81001); the national
// exchange is X26. Lower case is refused rather than folded, so that a
// certificate is issued with the code exactly as the records carry it.
var odsPattern = regexp.MustCompile(`^[A-Z0-9]{3,6}$`)

// CheckOrg says what is wrong with an ODS code, if anything.
func CheckOrg(org string) error {
	if !odsPattern.MatchString(org) {
		return fmt.Errorf("organisation %s is not an ODS code (3 to 6 upper-case letters or digits)", quote(org))
	}
	return nil
}

// ParseURI reads urn:dmic:<role>:<ORG>. ok is false when uri is not a dmic
// identity URI at all (another SAN, which a certificate may also carry); err
// says what is wrong with one that is.
func ParseURI(uri string) (role Role, org string, ok bool, err error) {
	rest, found := strings.CutPrefix(uri, URIPrefix)
	if !found {
		return "", "", false, nil
	}
	r, o, found := strings.Cut(rest, ":")
	if !found {
		return "", "", true, fmt.Errorf("%s: want %s<role>:<ORG>", quote(uri), URIPrefix)
	}
	if role, err = ParseRole(r); err != nil {
		return "", "", true, fmt.Errorf("%s: %w", quote(uri), err)
	}
	if err := CheckOrg(o); err != nil {
		return "", "", true, fmt.Errorf("%s: %w", quote(uri), err)
	}
	return role, o, true, nil
}

// IsSiteOf reports whether code is org itself or one of its sites. A site's
// code is its trust's three-character code and two more characters (RXX01
// for RXX); an organisation with a five-character code (an independent
// provider) has no sites under this rule. Case and surrounding spaces in
// code are ignored: records are judged for their form by validation, not
// here.
func IsSiteOf(code, org string) bool {
	code = strings.ToUpper(strings.TrimSpace(code))
	if code == org {
		return true
	}
	return len(org) == 3 && len(code) == 5 && strings.HasPrefix(code, org) && odsPattern.MatchString(code)
}

// quote bounds and quotes text from a credential before it goes into an
// answer or a log: it is the caller's and could be anything.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return fmt.Sprintf("%q", s)
}

type contextKey struct{}

// NewContext is ctx carrying the caller's identity, which the authorisation
// layer (internal/access) puts there after authenticating the call.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext is the authenticated caller of the call ctx belongs to; ok is
// false for a call that was not authenticated (an open method, or a handler
// reached without the authorisation layer, which must then refuse).
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(contextKey{}).(Identity)
	return id, ok
}
