package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dmic-nhs/dmic/services/internal/clock"
)

// Credentials are what a call presents, as its transport carries them: the
// TLS connection (its client certificate) and the Authorization header or
// metadata (a bearer token). The HTTP middleware and the gRPC interceptors
// fill it; an authenticator reads what it understands.
type Credentials struct {
	// TLS is the connection's state; nil when the call did not come over TLS.
	TLS *tls.ConnectionState
	// Authorization is the value of the Authorization header (HTTP) or
	// metadata (gRPC), "" when absent.
	Authorization string
}

// Authenticator establishes who presented credentials. It returns an error
// wrapping ErrNoCredentials when the credentials hold nothing it reads (so
// that another authenticator may try), and a *Refusal when they hold
// something it refuses.
type Authenticator interface {
	Authenticate(ctx context.Context, c Credentials) (Identity, error)
}

// ErrNoCredentials says an authenticator found nothing of its kind.
var ErrNoCredentials = errors.New("no credentials")

// Refusal is why credentials were refused. Reason is short and fixed (a
// metric label, an audit field); Message says it to the caller, naming the
// credential but never holding a secret.
type Refusal struct {
	Reason  string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// The reasons of a refusal.
const (
	ReasonNoCredentials      = "no-credentials"
	ReasonUntrusted          = "certificate-untrusted"
	ReasonExpired            = "certificate-expired"
	ReasonNotYetValid        = "certificate-not-yet-valid"
	ReasonUsage              = "certificate-usage"
	ReasonInvalidCertificate = "certificate-invalid"
	ReasonNoIdentity         = "no-identity"
	ReasonSeveralIdentities  = "several-identities"
	ReasonBadIdentity        = "bad-identity"
	ReasonNoName             = "no-name"
)

// Chain tries each authenticator in order and answers with the first that
// finds credentials of its kind, accepted or refused. When none does, the
// call is refused as anonymous.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(ctx context.Context, cr Credentials) (Identity, error) {
	for _, a := range c {
		id, err := a.Authenticate(ctx, cr)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		return id, err
	}
	return Identity{}, &Refusal{Reason: ReasonNoCredentials,
		Message: "no credentials: present a client certificate issued for dmic (docs/security.md)"}
}

// Certificates authenticates a caller by its TLS client certificate: the
// chain must verify against the trusted authorities at the clock's time and
// allow client authentication, exactly as crypto/tls verifies a client
// certificate when it is asked to (so that the refusal, with its reason, is
// made here, counted and audited in one place, instead of in the handshake,
// where the caller learns only "bad certificate"). Then the certificate must
// name one identity (FromCertificate).
type Certificates struct {
	roots *x509.CertPool
	clock clock.Clock
}

// NewCertificates trusts roots, and judges validity by clk.
func NewCertificates(roots *x509.CertPool, clk clock.Clock) *Certificates {
	return &Certificates{roots: roots, clock: clk}
}

// Authenticate implements Authenticator.
func (a *Certificates) Authenticate(_ context.Context, c Credentials) (Identity, error) {
	if c.TLS == nil || len(c.TLS.PeerCertificates) == 0 {
		return Identity{}, fmt.Errorf("client certificate: %w", ErrNoCredentials)
	}
	certs := c.TLS.PeerCertificates
	leaf := certs[0]
	now := a.clock.Now()
	opts := x509.VerifyOptions{
		Roots:         a.roots,
		CurrentTime:   now,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, ic := range certs[1:] {
		opts.Intermediates.AddCert(ic)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return Identity{}, verifyRefusal(leaf, now, err)
	}
	return FromCertificate(leaf)
}

// verifyRefusal says why a certificate did not verify.
func verifyRefusal(leaf *x509.Certificate, now time.Time, err error) *Refusal {
	who := describe(leaf)
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return &Refusal{Reason: ReasonUntrusted, Message: fmt.Sprintf("client certificate %s is not issued by an authority dmic trusts", who)}
	}
	if inv, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		switch inv.Reason {
		case x509.Expired:
			if now.Before(leaf.NotBefore) {
				return &Refusal{Reason: ReasonNotYetValid, Message: fmt.Sprintf("client certificate %s is not valid before %s",
					who, leaf.NotBefore.UTC().Format(time.RFC3339))}
			}
			return &Refusal{Reason: ReasonExpired, Message: fmt.Sprintf("client certificate %s expired at %s",
				who, leaf.NotAfter.UTC().Format(time.RFC3339))}
		case x509.IncompatibleUsage:
			return &Refusal{Reason: ReasonUsage, Message: fmt.Sprintf("client certificate %s is not issued for client authentication (extended key usage)", who)}
		}
	}
	return &Refusal{Reason: ReasonInvalidCertificate, Message: fmt.Sprintf("client certificate %s does not verify: %v", who, err)}
}

// describe names a certificate for a refusal: subject and serial, which are
// public.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%s (serial %s)", quote(c.Subject.CommonName), serial(c))
}

func serial(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return strings.ToLower(c.SerialNumber.Text(16))
}

// maxName bounds a holder's name, which is logged and audited.
const maxName = 128

// CheckName says what is wrong with a holder's name: it is logged and
// audited, so it is one line of text, and bounded.
func CheckName(name string) error {
	if len(name) > maxName || strings.ContainsFunc(name, unicode.IsControl) || !utf8.ValidString(name) {
		return fmt.Errorf("must be one line of at most %d bytes of text", maxName)
	}
	return nil
}

// FromCertificate is the identity a certificate names: exactly one URI
// subject alternative name urn:dmic:<role>:<ORG> (other URIs are ignored)
// and a subject common name, the holder. It does not verify the certificate:
// Certificates does, before calling it.
func FromCertificate(c *x509.Certificate) (Identity, error) {
	who := describe(c)
	var found []Identity
	var problems []string
	for _, u := range c.URIs {
		role, org, ok, err := ParseURI(u.String())
		switch {
		case !ok:
		case err != nil:
			problems = append(problems, err.Error())
		default:
			found = append(found, Identity{Org: org, Role: role})
		}
	}
	switch {
	case len(problems) > 0:
		return Identity{}, &Refusal{Reason: ReasonBadIdentity, Message: fmt.Sprintf("client certificate %s names no usable identity: %s",
			who, strings.Join(problems, "; "))}
	case len(found) == 0:
		return Identity{}, &Refusal{Reason: ReasonNoIdentity, Message: fmt.Sprintf("client certificate %s names no identity: it needs a URI subject alternative name %s<role>:<ORG> (docs/security.md)",
			who, URIPrefix)}
	case len(found) > 1:
		return Identity{}, &Refusal{Reason: ReasonSeveralIdentities, Message: fmt.Sprintf("client certificate %s names %d identities; it must name exactly one", who, len(found))}
	}
	name := strings.TrimSpace(c.Subject.CommonName)
	if name == "" {
		return Identity{}, &Refusal{Reason: ReasonNoName, Message: fmt.Sprintf("client certificate %s has no subject common name: it must name the system, person or service that holds it", who)}
	}
	if err := CheckName(name); err != nil {
		return Identity{}, &Refusal{Reason: ReasonBadIdentity, Message: fmt.Sprintf("client certificate %s: its common name %v", who, err)}
	}
	id := found[0]
	id.Name, id.Method, id.Serial = name, MTLS, serial(c)
	return id, nil
}
