package oidcauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/identity/oidcauth"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// issuer is a test OpenID Connect issuer: a signing key, and its JWKS served
// over HTTP.
type issuer struct {
	t    *testing.T
	url  string
	key  *rsa.PrivateKey
	jwks string
}

const (
	iss = "https://login.example.nhs.uk/realms/dmic"
	aud = "dmic-portal"
)

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return &issuer{t: t, url: srv.URL, key: key}
}

// token signs claims with key (nil: the issuer's).
func (is *issuer) token(key *rsa.PrivateKey, claims map[string]any) string {
	is.t.Helper()
	if key == nil {
		key = is.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		is.t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		is.t.Fatal(err)
	}
	return raw
}

// claims are a valid token's: an RCF user, for an hour from now.
func claims(now time.Time, change func(map[string]any)) map[string]any {
	c := map[string]any{"iss": iss, "aud": aud, "sub": "f3a1", "jti": "tok-1", "name": "Rita Clerk",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(), "dmic_role": "provider", "dmic_org": "RCF"}
	if change != nil {
		change(c)
	}
	return c
}

func TestBearerTokens(t *testing.T) {
	now := clocktest.Today(t)
	is := newIssuer(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	a := oidcauth.New(oidcauth.Config{Issuer: iss, Audience: aud, JWKSURL: is.url + "/jwks"}, clock.Fixed(now), nil)
	tests := []struct {
		name   string
		header string
		want   identity.Identity
		reason string // "" accepted; "none" not a bearer token
	}{
		{"valid", "Bearer " + is.token(nil, claims(now, nil)), identity.Identity{Org: "RCF", Role: identity.Provider, Name: "Rita Clerk", Method: identity.Bearer, Serial: "tok-1"}, ""},
		{"scheme in any case, name from preferred_username", "bearer " + is.token(nil, claims(now, func(c map[string]any) { delete(c, "name"); c["preferred_username"] = "rclerk"; delete(c, "jti") })),
			identity.Identity{Org: "RCF", Role: identity.Provider, Name: "rclerk", Method: identity.Bearer, Serial: "sub:f3a1"}, ""},
		{"no header", "", identity.Identity{}, "none"},
		{"basic", "Basic dXNlcjpwYXNz", identity.Identity{}, "none"},
		{"expired", "Bearer " + is.token(nil, claims(now, func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), identity.Identity{}, oidcauth.ReasonTokenExpired},
		{"another audience", "Bearer " + is.token(nil, claims(now, func(c map[string]any) { c["aud"] = "someone-else" })), identity.Identity{}, oidcauth.ReasonTokenInvalid},
		{"another issuer", "Bearer " + is.token(nil, claims(now, func(c map[string]any) { c["iss"] = "https://evil.example" })), identity.Identity{}, oidcauth.ReasonTokenInvalid},
		{"signed by another key", "Bearer " + is.token(other, claims(now, nil)), identity.Identity{}, oidcauth.ReasonTokenInvalid},
		{"not a JWT", "Bearer abc.def.ghi", identity.Identity{}, oidcauth.ReasonTokenInvalid},
		{"no role", "Bearer " + is.token(nil, claims(now, func(c map[string]any) { delete(c, "dmic_role") })), identity.Identity{}, identity.ReasonNoIdentity},
		{"unknown role", "Bearer " + is.token(nil, claims(now, func(c map[string]any) { c["dmic_role"] = "admin" })), identity.Identity{}, identity.ReasonBadIdentity},
		{"malformed organisation", "Bearer " + is.token(nil, claims(now, func(c map[string]any) { c["dmic_org"] = "rcf" })), identity.Identity{}, identity.ReasonBadIdentity},
	}
	for _, tt := range tests {
		id, err := a.Authenticate(context.Background(), identity.Credentials{Authorization: tt.header})
		switch tt.reason {
		case "":
			if err != nil || id != tt.want {
				t.Errorf("%s: %+v, %v; want %+v", tt.name, id, err, tt.want)
			}
		case "none":
			if !errors.Is(err, identity.ErrNoCredentials) {
				t.Errorf("%s: %v, want no credentials (for the next authenticator)", tt.name, err)
			}
		default:
			rf, ok := errors.AsType[*identity.Refusal](err)
			if !ok || rf.Reason != tt.reason {
				t.Errorf("%s: %+v, %v; want refused %s", tt.name, id, err, tt.reason)
			}
			if ok && strings.Contains(rf.Message, "eyJ") {
				t.Errorf("%s: the refusal quotes the token: %s", tt.name, rf.Message)
			}
		}
	}
}

// A person with a bearer token and no client certificate goes through the
// same guard and table as a system with a certificate: the provider's user
// reaches the submission route; the same token with a role the route is not
// for is refused.
func TestBearerTokenThroughTheGuard(t *testing.T) {
	now := clocktest.Today(t)
	is := newIssuer(t)
	pki := devpkitest.New(t, now)
	// Audited as a service is, on its principal.
	kc := brokertest.As(t, topicstest.Broker(t, 1), topics.ServicePrincipal("ingest"))
	clk := clock.Fixed(now)
	guard, _ := pki.GuardWith(kc, clk, oidcauth.New(oidcauth.Config{Issuer: iss, Audience: aud, JWKSURL: is.url}, clk, nil))
	mux := access.NewMux()
	mux.HandleFunc("POST /v1/submissions", func(w http.ResponseWriter, r *http.Request) {
		id, _ := identity.FromContext(r.Context())
		fmt.Fprintf(w, "%s by %s", id, id.Method)
	})
	url := pki.ServeHTTP(guard, mux)
	for _, tc := range []struct {
		role string
		code int
		text string
	}{
		{"provider", http.StatusOK, "provider:RCF (Rita Clerk) by bearer"},
		{"analyst", http.StatusForbidden, "may not call POST /v1/submissions"},
	} {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/submissions", strings.NewReader("{}\n"))
		req.Header.Set("Authorization", "Bearer "+is.token(nil, claims(now, func(c map[string]any) { c["dmic_role"] = tc.role })))
		resp, err := pki.HTTPClient(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.text) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.role, resp.StatusCode, b, tc.code, tc.text)
		}
	}
}
