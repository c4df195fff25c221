package service_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/control"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type idle struct{}

func (idle) Pause()           {}
func (idle) Resume()          {}
func (idle) Paused() bool     { return false }
func (idle) Processed() int64 { return 0 }
func (idle) Rejected() int64  { return 0 }

// TestStartingIsSeenNotUnreachable: while a service waits for its broker
// at start, its ports answer: gRPC health NOT_SERVING, GetStatus and
// /healthz with the reason; once the broker is there and the service
// serves, SERVING (issue 11: services report NOT_SERVING while starting
// instead of being unreachable).
func TestStartingIsSeenNotUnreachable(t *testing.T) {
	brokerPort := freePort(t)
	grpcAddr, opsAddr := "127.0.0.1:"+strconv.Itoa(freePort(t)), "127.0.0.1:"+strconv.Itoa(freePort(t))
	pki := devpkitest.New(t, time.Now())
	files := pki.ServiceFiles("validate")
	// The service's password is in the broker's credentials folder before
	// either starts, as `make run` leaves it after a first run.
	creds := t.TempDir()
	principal := topics.ServicePrincipal("validate")
	if err := os.WriteFile(broker.PasswordFile(creds, principal), []byte("validate-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := service.Config{Brokers: "127.0.0.1:" + strconv.Itoa(brokerPort), GRPCAddr: grpcAddr, OpsAddr: opsAddr,
		TLSCert: files.Cert, TLSKey: files.Key, TLSClientCA: files.CA,
		LogLevel: "error", LogFormat: "text", Partitions: 1, Compression: "none",
		Kafka: kafkaconn.Config{Mechanism: broker.Mechanism, User: principal, PasswordFile: broker.PasswordFile(creds, principal)}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	kc, err := cfg.Kafka.Cluster(cfg.BrokerList())
	if err != nil {
		t.Fatal(err)
	}
	d, err := service.New("validate", cfg, kc)
	if err != nil {
		t.Fatal(err)
	}
	access, _ := topics.GrantOf(principal)
	stop := d.ServeStarting()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- d.WaitForTopics(ctx, access) }()

	// Status needs a caller; health does not.
	conn, err := grpc.NewClient(grpcAddr, pki.DialOption(pki.Client(identity.Analyst, "0DC", "test analyst")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health, ctl := healthpb.NewHealthClient(conn), dmicv1.NewControlServiceClient(conn)
	until := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for {
			r, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			if err == nil && r.GetStatus() == want {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("health %v (%v), want %v", r.GetStatus(), err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	until(healthpb.HealthCheckResponse_NOT_SERVING)
	var st *dmicv1.GetStatusResponse
	for st.GetHealthReason() == "" || !strings.Contains(st.GetHealthReason(), "broker: waiting") {
		if st, err = ctl.GetStatus(ctx, &dmicv1.GetStatusRequest{}); err != nil || ctx.Err() != nil {
			t.Fatalf("status while starting: %v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.GetServing() || !strings.Contains(st.GetHealthReason(), "starting") {
		t.Errorf("status while starting: serving %v, reason %q", st.GetServing(), st.GetHealthReason())
	}
	resp, err := http.Get("http://" + opsAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "broker") {
		t.Errorf("/healthz while starting: %d %q", resp.StatusCode, body)
	}

	// The broker arrives; the service serves.
	brokertest.New(t, broker.WithPort(brokerPort), broker.WithCredentialsDir(creds))
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	sctx, stopServe := context.WithCancel(ctx)
	go func() {
		served <- d.Serve(sctx, control.Info{}, idle{}, nil, func(ctx context.Context) error { <-ctx.Done(); return nil })
	}()
	until(healthpb.HealthCheckResponse_SERVING)
	stopServe()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}
