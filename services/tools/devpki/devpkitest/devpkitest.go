// Package devpkitest issues certificates for tests: an authority of the
// test's own, certificates for any identity (or for none, or a malformed one),
// TLS configurations for servers and clients, and files for a service's
// flags. Certificates are valid around the now the test gives, so that a
// test that judges validity by a clock (clocktest) does not depend on the
// day it runs.
package devpkitest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
)

// PKI is a test's certificate authority.
type PKI struct {
	*devpki.Authority
	// Now is the time the certificates are issued around.
	Now time.Time
	t   testing.TB
}

// Validity of the certificates a PKI issues: from an hour before Now.
const Validity = 30 * 24 * time.Hour

// New is an authority for the test, issuing around now.
func New(t testing.TB, now time.Time) *PKI {
	t.Helper()
	a, err := devpki.NewAuthority("dmic test CA", now, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &PKI{Authority: a, Now: now, t: t}
}

// Issue issues req, failing the test if it cannot.
func (p *PKI) Issue(req devpki.Request) *devpki.Leaf {
	p.t.Helper()
	l, err := p.Authority.Issue(req)
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

// Client is a client certificate for role at org, held by name.
func (p *PKI) Client(role identity.Role, org, name string) *devpki.Leaf {
	p.t.Helper()
	l, err := p.IssueFor(role, org, name, false, p.Now, Validity)
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

// Server is a server certificate for localhost, of a dmic service.
func (p *PKI) Server(service string) *devpki.Leaf {
	p.t.Helper()
	l, err := p.IssueFor(identity.Service, devpki.DataCentre, service, true, p.Now, Validity)
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

// ServerTLS is a server's TLS configuration as dmic's services have it
// (identity.ServerConfig), with a certificate of this authority.
func (p *PKI) ServerTLS() *tls.Config {
	p.t.Helper()
	dir := p.t.TempDir()
	kp := p.writePair(dir, "server", p.Server("test-server"))
	return identity.ServerConfig(kp, p.Pool())
}

// ClientTLS is a client's TLS configuration that trusts this authority and
// presents leaf (nil: no certificate). It verifies the server's certificate
// as of Now.
func (p *PKI) ClientTLS(leaf *devpki.Leaf) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.Pool(), Time: func() time.Time { return p.Now }}
	if leaf != nil {
		c.Certificates = []tls.Certificate{leaf.TLS}
	}
	return c
}

// Authenticator is the certificate authenticator services use, trusting
// this authority, judging validity at now.
func (p *PKI) Authenticator(now clock.Clock) *identity.Certificates {
	return identity.NewCertificates(p.Pool(), now)
}

// Files are the files of a service's TLS flags.
type Files struct {
	Cert, Key, CA string
}

// Files writes a certificate for leaf into a folder of the test, with the
// authority's certificate, and names them.
func (p *PKI) Files(leaf *devpki.Leaf) Files {
	p.t.Helper()
	dir := p.t.TempDir()
	p.writePair(dir, "leaf", leaf)
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, p.CertPEM, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return Files{Cert: filepath.Join(dir, "leaf.crt"), Key: filepath.Join(dir, "leaf.key"), CA: ca}
}

func (p *PKI) writePair(dir, name string, leaf *devpki.Leaf) *identity.KeyPair {
	p.t.Helper()
	cert, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cert, leaf.CertPEM, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(key, leaf.KeyPEM, 0o600); err != nil {
		p.t.Fatal(err)
	}
	kp, err := identity.LoadKeyPair(cert, key)
	if err != nil {
		p.t.Fatal(err)
	}
	return kp
}

// Pool is the authority as a pool of roots.
func (p *PKI) Pool() *x509.CertPool { return p.Authority.Pool() }

// DialOption makes a gRPC client trust this authority and present leaf
// (nil: no certificate).
func (p *PKI) DialOption(leaf *devpki.Leaf) grpc.DialOption {
	return grpc.WithTransportCredentials(credentials.NewTLS(p.ClientTLS(leaf)))
}

// HTTPClient is an HTTP client that trusts this authority and presents
// leaf (nil: no certificate).
func (p *PKI) HTTPClient(leaf *devpki.Leaf) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: p.ClientTLS(leaf), ForceAttemptHTTP2: true}}
}

// ServiceFiles are the TLS files of a service: its certificate and key, and
// this authority as the one its callers' certificates come from.
func (p *PKI) ServiceFiles(service string) Files {
	p.t.Helper()
	return p.Files(p.Server(service))
}

// Guard is the authorisation layer of a dmic service for a test: client
// certificates of this authority, judged at clk's time, the access tables,
// and the audit trail on the cluster's dmic.audit, written as the cluster's
// principal (the topic must exist, and the principal may write it: a
// service's). Its registry holds dmic_auth_refusals_total.
func (p *PKI) Guard(kc kafkaconn.Cluster, clk clock.Clock) (*access.Guard, *prometheus.Registry) {
	p.t.Helper()
	return p.GuardWith(kc, clk)
}

// GuardWith is Guard with more authenticators after the certificates' (a
// bearer-token one).
func (p *PKI) GuardWith(kc kafkaconn.Cluster, clk clock.Clock, more ...identity.Authenticator) (*access.Guard, *prometheus.Registry) {
	p.t.Helper()
	lg := slog.New(slog.DiscardHandler)
	w := kafkapipe.NewWriter(kc)
	reg := prometheus.NewRegistry()
	trail := audit.New(kafkalog.New(kc, topics.Audit, w), "test", clk, lg, reg)
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { trail.Run(ctx); close(ran) }()
	p.t.Cleanup(func() { stop(); <-ran; w.Close() })
	return access.New(append(identity.Chain{p.Authenticator(clk)}, more...), trail, lg, reg), reg
}

// ServeGRPC serves, on a loopback port until the test ends, a gRPC server
// guarded by g over TLS with a certificate of this authority, with the
// services register adds; it returns the address.
func (p *PKI) ServeGRPC(g *access.Guard, register func(*grpc.Server)) string {
	p.t.Helper()
	gs := grpc.NewServer(append(g.ServerOptions(), grpc.Creds(credentials.NewTLS(p.ServerTLS())))...)
	register(gs)
	if err := g.CheckGRPC(gs.GetServiceInfo()); err != nil {
		p.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	go func() { _ = gs.Serve(l) }()
	p.t.Cleanup(gs.Stop)
	return l.Addr().String()
}

// ServeHTTP serves mux behind g over TLS, as a service's HTTP API, on a
// loopback port until the test ends; it returns the base URL.
func (p *PKI) ServeHTTP(g *access.Guard, mux *access.Mux) string {
	p.t.Helper()
	if err := g.CheckHTTP(mux); err != nil {
		p.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	cfg := p.ServerTLS()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	srv := &http.Server{Handler: g.HTTP(mux), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug)}
	go func() { _ = srv.Serve(tls.NewListener(l, cfg)) }()
	p.t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String()
}
