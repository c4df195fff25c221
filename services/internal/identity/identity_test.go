package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// handshake connects to a TLS server configured as dmic's services are
// (identity.ServerConfig), over TCP, presenting cert (nil: none), and returns
// the connection state the server saw, or the handshake's error.
func handshake(t *testing.T, p *devpkitest.PKI, cert *tls.Certificate) (*tls.ConnectionState, error) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		st  *tls.ConnectionState
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			got <- result{err: err}
			return
		}
		st := tc.ConnectionState()
		_, _ = tc.Write([]byte("x")) // lets the client finish (TLS 1.3 sends its certificate after the server's Finished)
		got <- result{st: &st}
	}()
	cfg := p.ClientTLS(nil)
	if cert != nil {
		// Presented whatever it is: the client's own choice among its
		// certificates would leave out one it cannot parse.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c, err := tls.Dial("tcp", l.Addr().String(), cfg)
	if err == nil {
		_, _ = io.ReadFull(c, make([]byte, 1))
		c.Close()
	}
	r := <-got
	return r.st, r.err
}

func TestCertificatesOverRealHandshakes(t *testing.T) {
	today := clocktest.Today(t)
	p := devpkitest.New(t, today)
	other := devpkitest.New(t, today) // an authority dmic does not trust
	valid := func(name string, uris ...string) devpki.Request {
		return devpki.Request{Name: name, URIs: uris, Client: true, NotBefore: today.Add(-time.Hour), NotAfter: today.Add(24 * time.Hour)}
	}
	rcf := identity.URI(identity.Provider, "RCF")
	tests := []struct {
		name       string
		issuer     *devpkitest.PKI
		req        *devpki.Request // nil: no certificate
		wantID     identity.Identity
		wantReason string // "" for accepted
		wantText   []string
	}{
		{name: "provider", issuer: p, req: ptr(valid("RCF EPR", rcf)), wantID: identity.Identity{Org: "RCF", Role: identity.Provider, Name: "RCF EPR", Method: identity.MTLS}},
		{name: "operator among other names", issuer: p, req: ptr(valid("Jo Bloggs", "spiffe://dc.example/op", identity.URI(identity.Operator, "0DC"), "https://example.org/x")),
			wantID: identity.Identity{Org: "0DC", Role: identity.Operator, Name: "Jo Bloggs", Method: identity.MTLS}},
		{name: "no certificate", issuer: p, wantReason: identity.ReasonNoCredentials, wantText: []string{"no credentials"}},
		{name: "expired", issuer: p, req: &devpki.Request{Name: "old", URIs: []string{rcf}, Client: true, NotBefore: today.Add(-48 * time.Hour), NotAfter: today.Add(-time.Minute)},
			wantReason: identity.ReasonExpired, wantText: []string{`"old"`, "expired at " + today.Add(-time.Minute).UTC().Format(time.RFC3339)}},
		{name: "not yet valid", issuer: p, req: &devpki.Request{Name: "early", URIs: []string{rcf}, Client: true, NotBefore: today.Add(time.Hour), NotAfter: today.Add(48 * time.Hour)},
			wantReason: identity.ReasonNotYetValid, wantText: []string{"not valid before"}},
		{name: "wrongly signed", issuer: other, req: ptr(valid("impostor", rcf)), wantReason: identity.ReasonUntrusted, wantText: []string{`"impostor"`, "not issued by an authority dmic trusts"}},
		{name: "server certificate only", issuer: p, req: &devpki.Request{Name: "srv", URIs: []string{rcf}, Server: true, NotBefore: today.Add(-time.Hour), NotAfter: today.Add(time.Hour)},
			wantReason: identity.ReasonUsage, wantText: []string{"client authentication"}},
		{name: "no role", issuer: p, req: ptr(valid("anon")), wantReason: identity.ReasonNoIdentity, wantText: []string{"urn:dmic:<role>:<ORG>"}},
		{name: "only another URI", issuer: p, req: ptr(valid("spiffe", "spiffe://example.org/x")), wantReason: identity.ReasonNoIdentity},
		{name: "two identities", issuer: p, req: ptr(valid("both", rcf, identity.URI(identity.National, "X26"))), wantReason: identity.ReasonSeveralIdentities, wantText: []string{"2 identities"}},
		{name: "unknown role", issuer: p, req: ptr(valid("janitor", "urn:dmic:janitor:RCF")), wantReason: identity.ReasonBadIdentity, wantText: []string{`role "janitor" is not one of provider, national`}},
		{name: "lower-case ODS code", issuer: p, req: ptr(valid("lc", "urn:dmic:provider:rcf")), wantReason: identity.ReasonBadIdentity, wantText: []string{`organisation "rcf" is not an ODS code`}},
		{name: "ODS code with a dash", issuer: p, req: ptr(valid("dash", "urn:dmic:provider:R-F")), wantReason: identity.ReasonBadIdentity},
		{name: "no organisation", issuer: p, req: ptr(valid("none", "urn:dmic:provider")), wantReason: identity.ReasonBadIdentity},
		{name: "no common name", issuer: p, req: ptr(valid("", rcf)), wantReason: identity.ReasonNoName},
		{name: "common name with a line break", issuer: p, req: ptr(valid("a\nb", rcf)), wantReason: identity.ReasonBadIdentity},
	}
	auth := identity.Chain{p.Authenticator(clock.Fixed(today))}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cert *tls.Certificate
			var serial string
			if tt.req != nil {
				leaf := tt.issuer.Issue(*tt.req)
				cert, serial = &leaf.TLS, strings.ToLower(leaf.Cert.SerialNumber.Text(16))
			}
			st, err := handshake(t, p, cert)
			if err != nil {
				t.Fatalf("handshake: %v (the handshake takes any certificate; the authenticator judges it)", err)
			}
			id, err := auth.Authenticate(context.Background(), identity.Credentials{TLS: st})
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				tt.wantID.Serial = serial
				if id != tt.wantID {
					t.Errorf("identity = %+v, want %+v", id, tt.wantID)
				}
				return
			}
			rf, ok := errors.AsType[*identity.Refusal](err)
			if !ok {
				t.Fatalf("Authenticate = %+v, %v; want a refusal %s", id, err, tt.wantReason)
			}
			if rf.Reason != tt.wantReason {
				t.Errorf("reason %s (%s), want %s", rf.Reason, rf.Message, tt.wantReason)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(rf.Message, w) {
					t.Errorf("message %q does not say %q", rf.Message, w)
				}
			}
			if id != (identity.Identity{}) {
				t.Errorf("a refusal came with identity %+v", id)
			}
		})
	}
}

// A certificate that is not DER at all never gets past the handshake.
func TestMalformedCertificateFailsTheHandshake(t *testing.T) {
	p := devpkitest.New(t, clocktest.Today(t))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, err = handshake(t, p, &tls.Certificate{Certificate: [][]byte{[]byte("not a certificate")}, PrivateKey: key})
	if err == nil || !strings.Contains(err.Error(), "failed to parse client certificate") {
		t.Fatalf("handshake with a malformed certificate: %v, want a parse failure", err)
	}
}

// Validity is judged by the clock the authenticator is given, not the wall
// clock: the same certificate is accepted today and refused a day after it
// ends.
func TestValidityFollowsTheClock(t *testing.T) {
	today := clocktest.Today(t)
	p := devpkitest.New(t, today)
	leaf := p.Client(identity.Analyst, "0DC", "analyst")
	st, err := handshake(t, p, &leaf.TLS)
	if err != nil {
		t.Fatal(err)
	}
	m := clock.NewManual(today)
	auth := p.Authenticator(m.Now)
	if _, err := auth.Authenticate(context.Background(), identity.Credentials{TLS: st}); err != nil {
		t.Fatalf("today: %v", err)
	}
	m.Set(leaf.Cert.NotAfter.Add(24 * time.Hour))
	_, err = auth.Authenticate(context.Background(), identity.Credentials{TLS: st})
	if rf, ok := errors.AsType[*identity.Refusal](err); !ok || rf.Reason != identity.ReasonExpired {
		t.Fatalf("a day after the end: %v, want expired", err)
	}
}

func TestChainTriesEachAuthenticator(t *testing.T) {
	bearer := authFunc(func(_ context.Context, c identity.Credentials) (identity.Identity, error) {
		if !strings.HasPrefix(c.Authorization, "Bearer ") {
			return identity.Identity{}, identity.ErrNoCredentials
		}
		return identity.Identity{Org: "RCF", Role: identity.Provider, Name: "someone", Method: identity.Bearer}, nil
	})
	p := devpkitest.New(t, clocktest.Today(t))
	chain := identity.Chain{p.Authenticator(clock.Fixed(clocktest.Today(t))), bearer}
	id, err := chain.Authenticate(context.Background(), identity.Credentials{Authorization: "Bearer x"})
	if err != nil || id.Method != identity.Bearer {
		t.Errorf("bearer after certificates: %+v, %v", id, err)
	}
	_, err = chain.Authenticate(context.Background(), identity.Credentials{})
	if rf, ok := errors.AsType[*identity.Refusal](err); !ok || rf.Reason != identity.ReasonNoCredentials {
		t.Errorf("nothing presented: %v, want no-credentials", err)
	}
}

type authFunc func(context.Context, identity.Credentials) (identity.Identity, error)

func (f authFunc) Authenticate(ctx context.Context, c identity.Credentials) (identity.Identity, error) {
	return f(ctx, c)
}

func TestIsSiteOf(t *testing.T) {
	tests := []struct {
		code, org string
		want      bool
	}{
		{"RCF", "RCF", true},
		{"rcf", "RCF", true},
		{" RCF01 ", "RCF", true},
		{"RCFAB", "RCF", true},
		{"RP4", "RCF", false},
		{"RP401", "RCF", false},
		{"RCF0", "RCF", false},     // a site has two more characters
		{"RCF012", "RCF", false},   // not three
		{"RCF-1", "RCF", false},    // not letters or digits
		{"G6V2S", "G6V2S", true},   // a five-character provider
		{"G6V2S1", "G6V2S", false}, // has no sites
		{"", "RCF", false},
	}
	for _, tt := range tests {
		if got := identity.IsSiteOf(tt.code, tt.org); got != tt.want {
			t.Errorf("IsSiteOf(%q, %q) = %v, want %v", tt.code, tt.org, got, tt.want)
		}
	}
}

func TestParseURI(t *testing.T) {
	for _, r := range identity.Roles() {
		role, org, ok, err := identity.ParseURI(identity.URI(r, "RCF"))
		if !ok || err != nil || role != r || org != "RCF" {
			t.Errorf("URI of %s reads back as %s, %s, %v, %v", r, role, org, ok, err)
		}
	}
	if _, _, ok, _ := identity.ParseURI("spiffe://x/y"); ok {
		t.Error("another URI was taken for a dmic identity")
	}
	for _, bad := range []string{"urn:dmic:", "urn:dmic:provider:", "urn:dmic:provider:RCF:extra", "urn:dmic:Provider:RCF", "urn:dmic:provider:RCFTOOLONG"} {
		if _, _, ok, err := identity.ParseURI(bad); !ok || err == nil {
			t.Errorf("ParseURI(%q): ok %v, err %v; want refused", bad, ok, err)
		}
	}
}

// FuzzParseURI: whatever the text, ParseURI does not panic, and what it
// accepts is exactly the URI of the role and organisation it returns.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"urn:dmic:provider:RCF", "urn:dmic:key-custodian:0DC", "urn:dmic:provider:rcf", "urn:dmic::", "urn:dmic:national:X26:",
		"urn:dmic:provider:R\u00c9F", "URN:DMIC:provider:RCF", "urn:dmic:service:0DC\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		role, org, ok, err := identity.ParseURI(s)
		if !ok {
			if strings.HasPrefix(s, identity.URIPrefix) {
				t.Fatalf("%q starts with the prefix but was not taken for a dmic URI", s)
			}
			return
		}
		if err != nil {
			if role != "" || org != "" {
				t.Fatalf("%q refused with a role or organisation: %q %q", s, role, org)
			}
			return
		}
		if identity.URI(role, org) != s {
			t.Fatalf("%q accepted as %s %s, which is %q", s, role, org, identity.URI(role, org))
		}
		if _, err := identity.ParseRole(string(role)); err != nil || identity.CheckOrg(org) != nil {
			t.Fatalf("%q accepted with role %q or organisation %q that are not valid", s, role, org)
		}
	})
}

func ptr[T any](v T) *T { return &v }
