package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// process is one ingest process of a test: stop ends it as a kill would,
// leaving whatever it was storing unfinished.
type process struct {
	svc *Service
	// url is its HTTP API, as ingest serves it (TLS, behind the
	// authorisation layer); client presents RXX's certificate.
	url    string
	client *http.Client
	stop   func()
}

// testBroker starts a broker with dmic's topics, three partitions each.
func testBroker(t *testing.T) *broker.Broker {
	t.Helper()
	return topicstest.Broker(t, 3)
}

// startProcess starts ingest, connected as its principal.
func startProcess(t *testing.T, b *broker.Broker, clk clock.Clock) *process {
	t.Helper()
	c := brokertest.As(t, b, Access().Principal)
	w := kafkapipe.NewWriter(c)
	t.Cleanup(func() { w.Close() })
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := New(w, NewAttempts(kafkalog.New(c, topics.SubmissionAttempts, w), lg), lg, prometheus.NewRegistry(), WithClock(clk))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	pki := devpkitest.New(t, clocktest.Today(t))
	g, _ := pki.Guard(c, clocktest.Clock(t))
	mux := access.NewMux()
	svc.RegisterHTTP(mux)
	p := &process{svc: svc, url: pki.ServeHTTP(g, mux), client: pki.HTTPClient(pki.Client(identity.Provider, "RXX", "RXX EPR")),
		stop: sync.OnceFunc(func() { cancel(); <-done })}
	t.Cleanup(p.stop)
	return p
}

// interrupt starts an attempt to store body (outpatient, submitter RXX,
// with key) and stores its first `stored` lines, then stops, as ingest
// killed mid-way: a start on the attempt log, a start receipt and some
// records, and nothing else.
func interrupt(ctx context.Context, t *testing.T, p *process, key, body string, stored int) *submission {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	id := submissionIdentity{submitter: "RXX", dataset: dmicv1.Dataset_DATASET_OUTPATIENT, source: dmicv1.Source_SOURCE_PROVIDER,
		key: key, digest: hex.EncodeToString(sum[:])}
	sub, err := p.svc.begin(ctx, id, true, "http")
	if err != nil {
		t.Fatal(err)
	}
	next := record.NewNDJSONReader(strings.NewReader(body), dmicv1.Dataset_DATASET_OUTPATIENT).Next
	for range stored {
		it, _ := next()
		if err := sub.add(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.stop()
	return sub
}

func receiptsOf(t *testing.T, b *broker.Broker, sub string, want int) []*validationv1.SubmissionReceipt {
	t.Helper()
	r := brokertest.Admin(t, b).NewReader(kafka.ReaderConfig{Topic: topics.Submissions, GroupID: "t-" + sub + time.Now().String(),
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*validationv1.SubmissionReceipt
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("receipts of %s: %d of %d: %v", sub, len(out), want, err)
		}
		rc := &validationv1.SubmissionReceipt{}
		if err := proto.Unmarshal(m.Value, rc); err != nil {
			t.Fatal(err)
		}
		if rc.GetSubmissionId() == sub {
			out = append(out, rc)
		}
	}
	return out
}

func opRecord(uid string) string {
	return `{"cds_unique_identifier":"` + uid + `","provider_code":"RXX","person_birth_date":"1980-01-01","attendance_identifier":"A1",` +
		`"appointment_date":"2026-01-02","attended_or_did_not_attend_code":"5","treatment_function_code":"100"}` + "\n"
}

// TestUnendedAttemptIsAbandoned: an attempt that ingest never finished (a
// kill) is abandoned by any instance once the abandon time has passed by the
// clock, not before, and once; a resend of the whole file is its next attempt.
func TestUnendedAttemptIsAbandoned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := testBroker(t)
	clk := clock.NewManual(clocktest.Today(t))
	body := opRecord("BRXX1") + opRecord("BRXX2") + opRecord("BRXX3")
	killed := interrupt(ctx, t, startProcess(t, brokers, clk.Clock()), "batch-9", body, 2)

	live := startProcess(t, brokers, clk.Clock())
	abandon := func() int {
		t.Helper()
		n, err := live.svc.AbandonUnended(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Until the log is read to its end, nothing is judged unended.
	deadline := time.Now().Add(15 * time.Second)
	for !live.svc.attempts.isCaughtUp() {
		if time.Now().After(deadline) {
			t.Fatal("the attempt log was not read")
		}
		time.Sleep(20 * time.Millisecond)
	}
	clk.Advance(DefaultAbandonAfter - time.Second)
	if n := abandon(); n != 0 {
		t.Fatalf("%d attempts abandoned before the abandon time", n)
	}
	clk.Advance(2 * time.Second)
	if n := abandon(); n != 1 {
		t.Fatalf("%d attempts abandoned after the abandon time, want the killed one", n)
	}
	got := receiptsOf(t, brokers, killed.id, 2)
	if got[0].State != validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING ||
		got[1].State != validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED || got[1].Attempt != 1 {
		t.Errorf("receipts = %v, want the start and the abandonment of attempt 1", got)
	}
	// Once its end is read back, it is not abandoned again.
	for n := abandon(); n != 0; n = abandon() {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned attempt is still unended")
		}
		time.Sleep(20 * time.Millisecond)
	}

	req, _ := http.NewRequest(http.MethodPost, live.url+"/v1/submissions?dataset=outpatient&submitter=RXX", strings.NewReader(body))
	req.Header.Set(KeyHeader, "batch-9")
	resp, err := live.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"submission_id":"`+killed.id+`"`) || !strings.Contains(string(b), `"attempt":"2"`) {
		t.Errorf("resend: %d %s, want submission %s, attempt 2", resp.StatusCode, b, killed.id)
	}
	if got := receiptsOf(t, brokers, killed.id, 4)[3]; got.State != validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED || got.Records != 3 {
		t.Errorf("final receipt = %v, want attempt 2 received with 3 records", got)
	}
}
