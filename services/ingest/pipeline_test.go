package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
	"github.com/dmic-nhs/dmic/services/load"
	"github.com/dmic-nhs/dmic/services/tools/synth"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validate/checker"
	"github.com/dmic-nhs/dmic/services/validate/spec"
)

// runStage runs a pipeline stage in this process until the test ends.
// It reads as the stage's own principal; sink writes as it too.
func runStage(t *testing.T, b *broker.Broker, stage string, inputs []string, p pipeline.Processor, sink pipeline.Sink) {
	t.Helper()
	reader := kafkapipe.NewReader(brokertest.As(t, b, topics.ServicePrincipal(stage)), "dmic-"+stage, inputs...)
	runner := pipeline.NewRunner(pipeline.Config{Stage: stage, MaxBatch: 5000, BatchWait: 50 * time.Millisecond}, reader, p, sink,
		slog.New(slog.NewTextHandler(io.Discard, nil)), pipeline.NewMetrics(prometheus.NewRegistry()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; reader.Close() })
}

// outpatientFile is an NDJSON file of RXX's outpatient records, about a
// third of them bad, with two lines that are not JSON.
func outpatientFile(t *testing.T, seed int64) string {
	t.Helper()
	ref, err := refdata.LoadDir("../../reference/sample")
	if err != nil {
		t.Fatal(err)
	}
	items, err := synth.Generate(synth.Config{Seed: seed, Records: 24, BadShare: 0.3, NationalShare: -1, NationalOnlyShare: -1,
		RevisionShare: -1, DeleteShare: -1, Datasets: []dmicv1.Dataset{dmicv1.Dataset_DATASET_OUTPATIENT},
		Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: []string{"RXX"}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, it := range items {
		if it.Source != dmicv1.Source_SOURCE_PROVIDER {
			continue
		}
		b.Write(it.JSON)
		b.WriteString("\n")
		if i == 3 || i == 10 {
			b.WriteString(`{"cds_unique_identifier": ` + "\n")
		}
	}
	return b.String()
}

// TestResendsCountOnceInTheStore runs ingest, validate and load in this
// process, on the embedded broker and a real ClickHouse, and sends:
//
//   - file F, then F again (a plain resend, no key);
//   - file G with a key, interrupted after 5 lines (ingest killed), then G
//     again with the key;
//   - file H with key h1, interrupted after 7 lines and abandoned, then H
//     again with key h2 (a new submission, as a client that makes a key per
//     request does).
//
// Each file then counts once, in every report, in dq_summary and
// dq_rule_summary, and in rejections; each report is the offline checker's
// report of the file; the interrupted and abandoned submission is reported
// abandoned and counts nowhere.
func TestResendsCountOnceInTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	brokers := testBroker(t)
	conn, cfg := chstoretest.Database(t, "dmic_ingest_resend")
	clk := clock.NewManual(clocktest.Today(t))
	reg, err := spec.BuiltIn()
	if err != nil {
		t.Fatal(err)
	}
	v := spec.New(reg, spec.WithClock(clk.Clock()))
	vw := kafkapipe.NewWriter(brokertest.As(t, brokers, validate.Access().Principal))
	t.Cleanup(func() { vw.Close() })
	lw := kafkapipe.NewWriter(brokertest.As(t, brokers, load.Access().Principal))
	t.Cleanup(func() { lw.Close() })
	runStage(t, brokers, "validate", []string{topics.Raw}, validate.New(v), kafkapipe.Sink{W: vw})
	runStage(t, brokers, "load", load.Inputs, load.Processor{}, load.Sink{Store: chstore.NewWriter(conn, cfg.Database), Kafka: kafkapipe.Sink{W: lw}})

	files := map[string]string{"F": outpatientFile(t, 11), "G": outpatientFile(t, 12), "H": outpatientFile(t, 13)}
	send := func(p *process, file, key string, wantAttempt int64) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/submissions?dataset=outpatient&submitter=RXX&results=errors", strings.NewReader(files[file]))
		if key != "" {
			req.Header.Set(KeyHeader, key)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out := &dmicv1.SubmitRecordsResponse{}
		if resp.StatusCode != http.StatusOK || protojson.Unmarshal(b, out) != nil || out.Attempt != wantAttempt {
			t.Fatalf("send %s (key %q): %d %s, want attempt %d", file, key, resp.StatusCode, b, wantAttempt)
		}
		return out.SubmissionId
	}

	first := startProcess(t, brokers, clk.Clock())
	f := send(first, "F", "", 1)
	if again := send(first, "F", "", 2); again != f {
		t.Fatalf("the resend of F is submission %s, not %s", again, f)
	}
	g := interrupt(ctx, t, first, "g", files["G"], 5).id
	h1 := interrupt(ctx, t, startProcess(t, brokers, clk.Clock()), "h1", files["H"], 7).id

	// The restarted ingest.
	second := startProcess(t, brokers, clk.Clock())
	if again := send(second, "G", "g", 2); again != g {
		t.Fatalf("the resend of G is submission %s, not %s", again, g)
	}
	clk.Advance(DefaultAbandonAfter + time.Minute)
	deadline := time.Now().Add(time.Minute)
	for n := 0; n < 1; {
		// g's interrupted attempt 1 is abandoned too; h1 is the one that matters.
		if n, err = second.svc.AbandonUnended(ctx); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing abandoned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h2 := send(second, "H", "h2", 1)

	// The offline checker's report of each file is what each submission's
	// report must say, but for what only the platform knows.
	offline := map[string]*validationv1.SubmissionReport{}
	for name, body := range files {
		r, err := checker.Check(ctx, v, strings.NewReader(body), checker.Options{Dataset: dmicv1.Dataset_DATASET_OUTPATIENT,
			Submitter: "RXX", Received: clocktest.Today(t), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if r.Rejected == 0 || r.Accepted == 0 {
			t.Fatalf("file %s has no mix of verdicts: %v", name, r)
		}
		offline[name] = r
	}
	report := func(id string) *validationv1.SubmissionReport {
		r, found, err := chstore.SubmissionReport(ctx, conn, cfg.Database, id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return nil
		}
		return r
	}
	received := validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED
	for !func() bool {
		for _, id := range []string{f, g, h2} {
			if r := report(id); r == nil || !r.Complete || r.State != received {
				return false
			}
		}
		r := report(h1)
		return r != nil && r.State == validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED && r.Validated == 7
	}() {
		if time.Now().After(deadline) {
			t.Fatalf("reports not complete: F %v\nG %v\nH1 %v\nH2 %v", report(f), report(g), report(h1), report(h2))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// And everything sent has been validated and loaded: the resends too,
	// which change no report.
	for _, g := range []struct {
		group  string
		inputs []string
	}{{"dmic-validate", []string{topics.Raw}}, {"dmic-load", load.Inputs}} {
		for {
			lag, err := kafkatopics.GroupLag(ctx, brokertest.As(t, brokers, topics.Operator), g.group, g.inputs...)
			if err == nil && lag == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still has %d to do: %v", g.group, lag, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	var want struct{ records, accepted, warned, rejected, rejectionRows uint64 }
	wantRules := map[string]uint64{}
	for _, c := range []struct {
		file, id, key string
		attempts      int64
	}{{"F", f, "", 2}, {"G", g, "g", 2}, {"H", h2, "h2", 1}} {
		online := report(c.id)
		if online.Attempts != c.attempts || online.IdempotencyKey != c.key {
			t.Errorf("%s: %d attempts, key %q; want %d, %q", c.file, online.Attempts, online.IdempotencyKey, c.attempts, c.key)
		}
		online.SubmissionId, online.ReceivedTime, online.State, online.Attempts, online.IdempotencyKey = "", nil, 0, 0, ""
		// Only the checker's report says how much of the file it read (the
		// platform's answer does).
		if rd := offline[c.file].GetRead(); rd.GetRecords() != online.GetRecords() || rd.GetStoppedAtLine() != 0 {
			t.Errorf("%s: offline read summary %v, want %d records to the end", c.file, rd, online.GetRecords())
		}
		offline[c.file].Read = nil
		if !proto.Equal(online, offline[c.file]) {
			t.Errorf("%s: the report differs from the offline checker's:\nonline:  %s\noffline: %s", c.file, prototext.Format(online), prototext.Format(offline[c.file]))
		}
		want.records += uint64(online.Records)
		want.accepted += uint64(online.Accepted)
		want.warned += uint64(online.Warned)
		want.rejected += uint64(online.Rejected)
		for _, rc := range online.Rules {
			wantRules[rc.RuleId+" "+rc.Field] += uint64(rc.Records)
		}
		// One rejection row per rule and field a rejected record broke.
		for _, fr := range online.FailingRecords {
			if fr.Outcome != validationv1.Outcome_OUTCOME_REJECTED {
				continue
			}
			seen := map[string]bool{}
			for _, fl := range fr.Failures {
				seen[fl.RuleId+" "+fl.Field] = true
			}
			want.rejectionRows += uint64(len(seen))
		}
	}

	rows, err := chstore.DQSummary(ctx, conn, cfg.Database, chstore.DQFilter{Provider: "RXX"})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ records, accepted, warned, rejected, rejectionRows uint64 }
	var subs uint64
	for _, r := range rows {
		got.records += r.Records
		got.accepted += r.Accepted
		got.warned += r.Warned
		got.rejected += r.Rejected
		subs += r.Submissions
	}
	got.rejectionRows = count(t, conn, fmt.Sprintf("SELECT count() FROM %s.rejections FINAL WHERE submission_id IN ('%s', '%s', '%s')", cfg.Database, f, g, h2))
	if got != want || subs != 3 {
		t.Errorf("dq_summary and rejections: %+v in %d submissions, want %+v in 3", got, subs, want)
	}
	rules, err := chstore.DQRules(ctx, conn, cfg.Database, chstore.DQFilter{Provider: "RXX"})
	if err != nil {
		t.Fatal(err)
	}
	gotRules := map[string]uint64{}
	for _, r := range rules {
		gotRules[r.RuleID+" "+r.Field] += r.Records
	}
	if fmt.Sprint(gotRules) != fmt.Sprint(wantRules) {
		t.Errorf("dq_rule_summary = %v, want %v", gotRules, wantRules)
	}
	if n := count(t, conn, fmt.Sprintf("SELECT sum(records) FROM %s.rejections_summary WHERE stage IN ('validate', 'ingest') AND severity = 'error' AND provider_code = 'RXX'", cfg.Database)); n == 0 {
		t.Error("rejections_summary is empty")
	}
}

func count(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
