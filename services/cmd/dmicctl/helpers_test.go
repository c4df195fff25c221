package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// testPKI is the authority of a test, issuing around the wall clock's now
// (dmicctl verifies the services' certificates by it).
func testPKI(t *testing.T) *devpkitest.PKI { return devpkitest.New(t, time.Now()) }

// whoFor is dmicctl presenting operator's certificate for the control API and
// custodian's for the key service.
func whoFor(p *devpkitest.PKI, operator, custodian *devpki.Leaf) who {
	return who{operator: p.ClientTLS(operator), custodian: p.ClientTLS(custodian)}
}

// serveGRPC serves what register adds on a TCP port until the test ends,
// as a dmic service does (TLS, the authorisation layer, audited on kc),
// and returns its address and dmicctl as an operator and a key custodian.
func serveGRPC(t *testing.T, kc kafkaconn.Cluster, register func(*grpc.Server)) (string, who) {
	t.Helper()
	p := testPKI(t)
	g, _ := p.Guard(kc, clock.System())
	addr := p.ServeGRPC(g, register)
	return addr, whoFor(p, p.Client(identity.Operator, "0DC", "test operator"), p.Client(identity.KeyCustodian, "0DC", "test custodian"))
}

// command is a dmicctl command over the services' gRPC APIs (spec, key).
type command func(ctx context.Context, args []string, svcs []endpoint, w who, stdout, stderr io.Writer, timeout time.Duration) int

// runner runs cmd with args and answers its exit status, output and errors.
func runner(ctx context.Context, cmd command, svcs []endpoint, w who) func(args ...string) (int, string, string) {
	return func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cmd(ctx, args, svcs, w, &out, &errb, 10*time.Second)
		return code, out.String(), errb.String()
	}
}
