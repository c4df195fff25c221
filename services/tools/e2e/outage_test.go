package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestLoadRidesOutClickHouseOutages runs the real load service against a
// real broker and a ClickHouse that is down when load starts, comes up, goes
// down while records arrive, and comes back (issue 10, parts 3 and 5):
//   - load does not exit while ClickHouse is down at start (it used to after
//     61 s, into a restart loop): it serves health, NOT_SERVING, naming
//     ClickHouse, on gRPC, /healthz and GetStatus;
//   - once ClickHouse answers it loads, and reports SERVING with a
//     last-progress time;
//   - during an outage with records waiting it reports NOT_SERVING and
//     commits nothing; afterwards it loads every record, once.
func TestLoadRidesOutClickHouseOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops a ClickHouse server")
	}
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		chservertest.Server(t) // skips, or fails in CI, with the reason
	}
	dir := t.TempDir()
	if err := devstack.Build(context.Background(), "../..", dir, "load"); err != nil {
		t.Fatal(err)
	}
	creds := t.TempDir()
	b := brokertest.New(t, broker.WithDefaultPartitions(1), broker.WithCredentialsDir(creds))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	chAddr, grpcAddr, opsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	const db = "dmic_outage"
	pki := devpki.Dir{Path: filepath.Join(t.TempDir(), "pki")}
	if _, err := pki.Ensure(time.Now(), devpki.Subjects([]string{"load"}, nil)); err != nil {
		t.Fatal(err)
	}
	// The writer's password is put where the server will keep its users'
	// passwords before the server first starts: it keeps a password file it
	// finds, and load reads its file at start.
	chDir := t.TempDir()
	writerPassword := filepath.Join(chDir, "secrets", chaccess.Writer)
	if err := os.MkdirAll(filepath.Dir(writerPassword), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(writerPassword, []byte("outage-test-writer-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.CommandContext(ctx, dir+"/load", "-brokers", b.Addr(), "-grpc-addr", grpcAddr, "-ops-addr", opsAddr,
		"-tls-cert", pki.Cert(devpki.ServiceFile("load")), "-tls-key", pki.Key(devpki.ServiceFile("load")), "-tls-client-ca", pki.CA(),
		"-kafka-sasl-password-file", broker.PasswordFile(creds, topics.ServicePrincipal("load")),
		"-clickhouse-addr", chAddr, "-clickhouse-database", db, "-clickhouse-password-file", writerPassword,
		"-partitions", "1", "-batch-wait", "50ms")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("load's log:\n%s", tail(logs.String(), 60))
		}
	}()
	analyst, err := pki.DialOption(devpki.AnalystFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(grpcAddr, analyst)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health, control := healthpb.NewHealthClient(conn), dmicv1.NewControlServiceClient(conn)

	// waitHealth waits for want on gRPC health, then checks /healthz and
	// GetStatus agree and that the reason names what it must.
	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus, within time.Duration, reason string) *dmicv1.GetStatusResponse {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			select {
			case err := <-exited:
				t.Fatalf("load exited: %v", err)
			default:
			}
			r, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			if err == nil && r.GetStatus() == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health %v (%v) after %s, want %v", r.GetStatus(), err, within, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
		st, err := control.GetStatus(ctx, &dmicv1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + opsAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		serving := want == healthpb.HealthCheckResponse_SERVING
		if st.GetServing() != serving || (resp.StatusCode == http.StatusOK) != serving {
			t.Errorf("status serving %v, /healthz %d %q; want serving %v", st.GetServing(), resp.StatusCode, body, serving)
		}
		if !strings.Contains(st.GetHealthReason(), reason) || !strings.Contains(string(body), reason) {
			t.Errorf("reason %q, /healthz %q; want them to name %q", st.GetHealthReason(), body, reason)
		}
		return st
	}

	// 1. ClickHouse down at start: load waits, serving health, NOT_SERVING.
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING, time.Minute, "waiting for clickhouse "+chaccess.Writer+"@"+chAddr)
	// The test feeds load's input as the stages upstream would.
	w := kafkapipe.NewWriter(brokertest.Admin(t, b))
	defer w.Close()
	send := func(from, n int) {
		t.Helper()
		var msgs []kafka.Message
		for i := from; i < from+n; i++ {
			v, err := proto.Marshal(&dmicv1.DeadLetter{Stage: "validate", SourceTopic: topics.Raw, SourceOffset: int64(i),
				RecordId: fmt.Sprintf("BOUTAGE%04d", i), Failures: []*dmicv1.Failure{{RuleId: "TEST-1", Field: "f", Message: "m"}}})
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, kafka.Message{Topic: topics.Rejected, Key: []byte(fmt.Sprint(i)), Value: v})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	send(0, 10)

	// 2. ClickHouse comes up; until the schema is made load still waits,
	// saying why; once it is (by the migrator, as `dmicctl migrate` does),
	// load opens it and loads what waited.
	quiet := slog.New(slog.DiscardHandler)
	srv, stopCH, err := chserver.Ensure(ctx, chserver.Options{Addr: chAddr, DataDir: chDir, Databases: []string{db}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopCH() }()
	waitUntil(t, ctx, "load to say the schema needs dmicctl migrate", func() bool {
		st, err := control.GetStatus(ctx, &dmicv1.GetStatusRequest{})
		return err == nil && !st.GetServing() && strings.Contains(st.GetHealthReason(), "run `dmicctl migrate`")
	})
	migrator := chstoretest.Config(t, srv, chaccess.Migrator, db)
	mc, err := migrator.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := chstore.ApplySchema(ctx, mc, db); err != nil {
		t.Fatal(err)
	}
	mc.Close()
	reader := chstoretest.Config(t, srv, chaccess.Analyst, db)
	rows := func() int64 {
		c, err := reader.Open(ctx)
		if err != nil {
			return -1
		}
		defer c.Close()
		var n uint64
		if err := c.QueryRow(ctx, "SELECT count() FROM "+db+".rejections FINAL").Scan(&n); err != nil {
			return -1
		}
		return int64(n)
	}
	st := waitHealth(healthpb.HealthCheckResponse_SERVING, time.Minute, "")
	waitUntil(t, ctx, "10 rejections loaded", func() bool { return rows() == 10 })

	// 3. An outage while records wait: NOT_SERVING, nothing committed.
	stopCH()
	send(10, 10)
	st = waitHealth(healthpb.HealthCheckResponse_NOT_SERVING, time.Minute, chAddr)
	if st.GetProcessed() > 10 {
		t.Errorf("processed %d during the outage, want nothing committed past the first 10", st.GetProcessed())
	}

	// 4. ClickHouse back on the same data: every record once, SERVING.
	if _, stopCH, err = chserver.Ensure(ctx, chserver.Options{Addr: chAddr, DataDir: chDir, Databases: []string{db}, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "20 rejections loaded", func() bool { return rows() == 20 })
	st = waitHealth(healthpb.HealthCheckResponse_SERVING, time.Minute, "")
	if st.GetProcessed() != 20 || st.GetLastProgressTime() == nil {
		t.Errorf("processed %d, last progress %v; want 20 and a time", st.GetProcessed(), st.GetLastProgressTime())
	}
}

func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
