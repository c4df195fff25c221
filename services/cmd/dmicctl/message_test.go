package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

const testInput = "test.in"

// routeByValue sends value "x" to topic test.x, which may not exist: a
// record that names a missing topic holds its batch.
var routeByValue = pipeline.ProcessorFunc(func(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	return []pipeline.Output{{Topic: "test." + string(m.Value), Key: m.Key, Value: m.Value}}, nil
})

// startStage runs a real service process shell (daemon) with a stage on the
// broker, serving gRPC on a loopback port with a certificate of p; stop ends
// it. It connects as the superuser: its topics are the test's own, outside
// the ACL table.
func startStage(t *testing.T, p *devpkitest.PKI, kc kafkaconn.Cluster) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	f := p.ServiceFiles("router")
	d, err := service.New("router", service.Config{Brokers: strings.Join(kc.Brokers(), ","), GRPCAddr: addr, LogLevel: "error", Partitions: 1,
		TLSCert: f.Cert, TLSKey: f.Key, TLSClientCA: f.CA}, kc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.RunStage(ctx, service.Stage{Access: topics.Access{Group: "dmic-router", Inputs: []string{testInput}, Logs: []string{topics.OperatorAudit}},
			Outputs:  []string{"test.out"},
			MaxBatch: 10, BatchWait: 10 * time.Millisecond, Processor: routeByValue})
	}()
	return addr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stage: %v", err)
		}
	}
}

// TestSkipAndReplayCommands: an operator finds a stuck record in dmicctl
// status, skips it by position with a reason, and replays another; both are
// on the audit log with who asked and why; a skip recorded while an instance
// was down is applied when it starts; bad requests are refused with every
// problem named (issue 10: an operator tool to skip or replay a named
// offset, audited).
func TestSkipAndReplayCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := brokertest.New(t, broker.WithDefaultPartitions(1))
	brokers := brokertest.Admin(t, b)
	resp, err := brokers.Client(10*time.Second).CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: testInput, NumPartitions: 1, ReplicationFactor: 1}, {Topic: "test.out", NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	w := kafkapipe.NewWriter(brokers)
	defer w.Close()
	produce := func(values ...string) {
		t.Helper()
		for _, v := range values {
			if err := w.WriteMessages(ctx, kafka.Message{Topic: testInput, Key: []byte("k"), Value: []byte(v)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pki := testPKI(t)
	operator := pki.Client(identity.Operator, "0DC", "Olive Operator")
	w2 := whoFor(pki, operator, pki.Client(identity.KeyCustodian, "0DC", "Kim Custodian"))
	addr, stop := startStage(t, pki, brokers)
	svcs := []endpoint{{"router", addr}}
	cmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := message(ctx, args[0], args[1:], svcs, w2, &out, &errb, 30*time.Second)
		return code, out.String(), errb.String()
	}
	processed := func() int64 {
		c, closeFn, err := dial(svcs[0], w2)
		if err != nil {
			return -1
		}
		defer closeFn()
		st, err := c.GetStatus(ctx, &dmicv1.GetStatusRequest{})
		if err != nil {
			return -1
		}
		return st.GetProcessed()
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A record that names a missing topic holds the partition; status says so.
	produce("out", "missing", "out")
	var status string
	waitUntil("status to show the stuck batch", func() bool {
		c, closeFn, err := dial(svcs[0], w2)
		if err != nil {
			return false
		}
		defer closeFn()
		st, err := c.GetStatus(ctx, &dmicv1.GetStatusRequest{})
		status = st.GetHealthReason()
		return err == nil && !st.GetServing()
	})
	// The stuck batch starts at the first record, or at the missing one
	// when the first came in a batch of its own.
	if !strings.Contains(status, testInput+"/0@0") && !strings.Contains(status, testInput+"/0@1") {
		t.Errorf("health reason %q does not name the stuck batch's position", status)
	}

	// Only an operator skips: a key custodian is refused, and nothing is
	// recorded on the operator audit log for it.
	var errb bytes.Buffer
	if code := message(ctx, "skip", []string{"router", "test.in/0@1", "-reason", "x"}, svcs, who{operator: w2.custodian}, io.Discard, &errb, 10*time.Second); code != 1 ||
		!strings.Contains(errb.String(), "PermissionDenied") || !strings.Contains(errb.String(), "it is for operator") {
		t.Errorf("skip by a key custodian: %d %q, want refused", code, errb.String())
	}

	// Refusals name every problem.
	if code, _, errOut := cmd("skip", "router", "test.in/0"); code != 2 || !strings.Contains(errOut, "TOPIC/PARTITION@OFFSET") || !strings.Contains(errOut, "-reason: required") {
		t.Errorf("skip without a position or reason: %d %q", code, errOut)
	}
	if code, _, errOut := cmd("skip", "router", "dmic.raw/0@1", "-reason", "x"); code != 1 || !strings.Contains(errOut, "not an input of router") {
		t.Errorf("skip on another stage's topic: %d %q", code, errOut)
	}

	// The skip frees the partition.
	code, out, errOut := cmd("skip", "router", "test.in/0@1", "-reason", "names a missing topic; INC-7")
	if code != 0 || !strings.Contains(out, "audit ") {
		t.Fatalf("skip: %d %q %q", code, out, errOut)
	}
	waitUntil("3 processed", func() bool { return processed() == 3 })

	// A replay processes a committed record again.
	code, out, errOut = cmd("replay", "router", "test.in/0@0", "-reason", "re-send after the fix")
	if code != 0 || !strings.Contains(out, "processed, 1 outputs written") {
		t.Errorf("replay: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cmd("replay", "router", "test.in/0@99", "-reason", "typo"); code != 1 || !strings.Contains(errOut, "no such message") {
		t.Errorf("replay past the end: %d %q", code, errOut)
	}

	// A skip for a record not yet read, then the instance stops; a new one
	// applies it from the audit log.
	if code, _, errOut := cmd("skip", "router", "test.in/0@3", "-reason", "known bad; INC-8"); code != 0 {
		t.Fatalf("skip ahead: %d %q", code, errOut)
	}
	stop()
	addr, stop = startStage(t, pki, brokers)
	defer stop()
	svcs[0].addr = addr
	produce("missing", "out")
	waitUntil("the restarted instance to pass the skipped record", func() bool { return processed() == 2 })

	// The audit log has each request, with the reason and the caller.
	r := brokers.NewReader(kafka.ReaderConfig{Topic: topics.OperatorAudit, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var actions []string
	for len(actions) < 3 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("audit log: %v (have %v)", err, actions)
		}
		var e service.AuditEntry
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if e.Group != "dmic-router" || e.Reason == "" || e.Peer == "" || e.ID == "" || e.Time.IsZero() || e.Caller == nil ||
			e.Caller.Name != "Olive Operator" || e.Caller.Role != identity.Operator || e.Caller.Serial != strings.ToLower(operator.Cert.SerialNumber.Text(16)) {
			t.Errorf("audit entry %s lacks who (the operator's certificate), why or when", m.Value)
		}
		actions = append(actions, e.Action+" "+pipeline.Position{Topic: e.Topic, Partition: int(e.Partition), Offset: e.Offset}.String())
	}
	want := []string{"skip test.in/0@1", "replay test.in/0@0"}
	if actions[0] != want[0] || actions[1] != want[1] {
		t.Errorf("audit log %v, want %v first", actions, want)
	}
}
