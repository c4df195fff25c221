// Package oidcauth authenticates people by OpenID Connect bearer tokens: a
// JWT in the Authorization header (HTTP) or metadata (gRPC), signed by the
// issuer's keys (its JWKS), for dmic's audience, not expired by the service's
// clock, verified with go-oidc. It is an identity.Authenticator that goes in
// the chain beside client certificates, so the role tables of
// internal/access apply to a person in a browser as to a system
// (docs/security.md, "People in a browser").
//
// The token names the identity in two claims, dmic_role and dmic_org (the
// same role and ODS code a certificate's urn:dmic:<role>:<ORG> carries), and
// the holder in name, preferred_username or sub.
package oidcauth

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// Config names the issuer whose tokens are accepted; empty Issuer: none.
type Config struct {
	Issuer   string
	Audience string
	JWKSURL  string
}

// RegisterFlags registers -oidc-issuer, -oidc-audience and -oidc-jwks-url.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Issuer, "oidc-issuer", "", "Accept OpenID Connect bearer tokens of this issuer (its iss); empty: client certificates only.")
	fs.StringVar(&c.Audience, "oidc-audience", "", "The audience (aud) the tokens must be for: dmic's client id at the issuer. Required with -oidc-issuer.")
	fs.StringVar(&c.JWKSURL, "oidc-jwks-url", "", "Where the issuer publishes its signing keys (JWKS, https). Required with -oidc-issuer.")
}

// Enabled reports whether bearer tokens are accepted.
func (c Config) Enabled() bool { return c.Issuer != "" }

// Validate reports every problem at once.
func (c Config) Validate() error {
	if !c.Enabled() {
		if c.Audience != "" || c.JWKSURL != "" {
			return errors.New("-oidc-audience, -oidc-jwks-url: given without -oidc-issuer")
		}
		return nil
	}
	var errs []error
	if c.Audience == "" {
		errs = append(errs, errors.New("-oidc-audience: required with -oidc-issuer"))
	}
	if u, err := url.Parse(c.JWKSURL); c.JWKSURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, errors.New("-oidc-jwks-url: required with -oidc-issuer, an https URL (http for development only)"))
	}
	return errors.Join(errs...)
}

// The reasons of a bearer token's refusal.
const (
	ReasonTokenExpired = "token-expired"
	ReasonTokenInvalid = "token-invalid"
)

// Authenticator verifies bearer tokens.
type Authenticator struct {
	verifier *oidc.IDTokenVerifier
}

var _ identity.Authenticator = (*Authenticator)(nil)

// New accepts c's tokens, judging expiry by clk, fetching the issuer's keys
// with client (nil: http.DefaultClient) when a token names a key it has not
// seen.
func New(c Config, clk clock.Clock, client *http.Client) *Authenticator {
	ctx := context.Background()
	if client != nil {
		ctx = oidc.ClientContext(ctx, client)
	}
	keys := oidc.NewRemoteKeySet(ctx, c.JWKSURL)
	return &Authenticator{verifier: oidc.NewVerifier(c.Issuer, keys, &oidc.Config{
		ClientID: c.Audience, Now: clk.Now,
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256, oidc.PS256},
	})}
}

// claims are what dmic reads of a token.
type claims struct {
	Role              string `json:"dmic_role"`
	Org               string `json:"dmic_org"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Subject           string `json:"sub"`
	ID                string `json:"jti"`
}

// Authenticate implements identity.Authenticator.
func (a *Authenticator) Authenticate(ctx context.Context, c identity.Credentials) (identity.Identity, error) {
	scheme, raw, ok := strings.Cut(c.Authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return identity.Identity{}, fmt.Errorf("bearer token: %w", identity.ErrNoCredentials)
	}
	tok, err := a.verifier.Verify(ctx, strings.TrimSpace(raw))
	if err != nil {
		if exp, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
			return identity.Identity{}, &identity.Refusal{Reason: ReasonTokenExpired, Message: fmt.Sprintf("bearer token expired at %s", exp.Expiry.UTC().Format("2006-01-02T15:04:05Z"))}
		}
		// go-oidc's errors name the check that failed, never the token.
		return identity.Identity{}, &identity.Refusal{Reason: ReasonTokenInvalid, Message: "bearer token not accepted: " + err.Error()}
	}
	var cl claims
	if err := tok.Claims(&cl); err != nil {
		return identity.Identity{}, &identity.Refusal{Reason: ReasonTokenInvalid, Message: "bearer token claims: " + err.Error()}
	}
	if cl.Role == "" || cl.Org == "" {
		return identity.Identity{}, &identity.Refusal{Reason: identity.ReasonNoIdentity, Message: "bearer token names no identity: it needs the claims dmic_role and dmic_org (docs/security.md)"}
	}
	role, err := identity.ParseRole(cl.Role)
	if err == nil {
		err = identity.CheckOrg(cl.Org)
	}
	if err != nil {
		return identity.Identity{}, &identity.Refusal{Reason: identity.ReasonBadIdentity, Message: "bearer token: " + err.Error()}
	}
	name := cl.Name
	for _, alt := range []string{cl.PreferredUsername, cl.Subject} {
		if name == "" {
			name = alt
		}
	}
	if name == "" {
		return identity.Identity{}, &identity.Refusal{Reason: identity.ReasonNoName, Message: "bearer token names nobody (no name, preferred_username or sub)"}
	}
	if err := identity.CheckName(name); err != nil {
		return identity.Identity{}, &identity.Refusal{Reason: identity.ReasonBadIdentity, Message: "bearer token: the holder's name " + err.Error()}
	}
	serial := cl.ID
	if serial == "" {
		serial = "sub:" + cl.Subject
	}
	return identity.Identity{Org: cl.Org, Role: role, Name: name, Method: identity.Bearer, Serial: serial}, nil
}
