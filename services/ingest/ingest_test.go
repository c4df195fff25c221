package ingest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/record/recordtest"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

func op(uid string) string { return recordtest.Outpatient(uid) }

type fixture struct {
	svc *ingest.Service
	b   *broker.Broker
	// admin reads what ingest wrote.
	admin kafkaconn.Cluster
	// url is ingest's HTTP API: TLS, behind the authorisation layer, as
	// ingest serves it; grpc is its gRPC address, likewise.
	url  string
	grpc string
	pki  *devpkitest.PKI
	reg  *prometheus.Registry
	// metrics is the service's own registry.
	metrics *prometheus.Registry
	// client presents RXX's certificate (a provider); national the national
	// exchange's.
	client, national *http.Client
	rxx, x26         *devpki.Leaf
}

func newFixture(t *testing.T, opts ...ingest.Option) *fixture {
	t.Helper()
	b := topicstest.Broker(t, 3)
	return instance(t, b, append([]ingest.Option{ingest.WithClock(clocktest.Clock(t))}, opts...)...)
}

// instance is one ingest process on b, connected as ingest's principal: its
// own writer, attempt log follower and HTTP server, running until the test
// ends.
func instance(t *testing.T, b *broker.Broker, opts ...ingest.Option) *fixture {
	t.Helper()
	c := brokertest.As(t, b, ingest.Access().Principal)
	w := kafkapipe.NewWriter(c)
	t.Cleanup(func() { w.Close() })
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := prometheus.NewRegistry()
	svc := ingest.New(w, ingest.NewAttempts(kafkalog.New(c, topics.SubmissionAttempts, w), lg), lg, metrics, opts...)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	pki := devpkitest.New(t, clocktest.Today(t))
	g, reg := pki.Guard(c, clocktest.Clock(t))
	mux := access.NewMux()
	svc.RegisterHTTP(mux)
	f := &fixture{svc: svc, b: b, admin: brokertest.Admin(t, b), pki: pki, reg: reg, metrics: metrics, url: pki.ServeHTTP(g, mux),
		grpc: pki.ServeGRPC(g, func(gs *grpc.Server) { dmicv1.RegisterIngestServiceServer(gs, svc) }),
		rxx:  pki.Client(identity.Provider, "RXX", "RXX EPR"), x26: pki.Client(identity.National, "X26", "SUS")}
	f.client, f.national = pki.HTTPClient(f.rxx), pki.HTTPClient(f.x26)
	return f
}

// post submits as RXX.
func (f *fixture) post(t *testing.T, query, contentType, body string) (int, *dmicv1.SubmitRecordsResponse, string) {
	t.Helper()
	return f.postAs(t, f.client, query, contentType, body)
}

// postAs submits with client's certificate.
func (f *fixture) postAs(t *testing.T, client *http.Client, query, contentType, body string) (int, *dmicv1.SubmitRecordsResponse, string) {
	t.Helper()
	resp, err := client.Post(f.url+"/v1/submissions?"+query, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := &dmicv1.SubmitRecordsResponse{}
	if resp.StatusCode == http.StatusOK {
		if err := protojson.Unmarshal(b, out); err != nil {
			t.Fatalf("answer %s: %v", b, err)
		}
	}
	return resp.StatusCode, out, string(b)
}

func read(t *testing.T, c kafkaconn.Cluster, topic string, want int) []kafka.Message {
	t.Helper()
	r := c.NewReader(kafka.ReaderConfig{GroupID: "t-" + topic, Topic: topic, StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []kafka.Message
	for len(got) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d: %v", topic, len(got), want, err)
		}
		got = append(got, m)
	}
	return got
}

func TestNDJSONSubmissionAnswersPerRecordAndKeepsTheGoodOnes(t *testing.T) {
	f := newFixture(t)
	body := op("BRXX1") + "\n" + `{"cds_unique_identifier": ` + "\n\n" + op("BRXX2") + "\n" + `{"unknown_field":"x"}` + "\n"
	code, resp, raw := f.post(t, "dataset=outpatient&submitter=rxx", "application/x-ndjson", body)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, raw)
	}
	if resp.SubmissionId == "" || resp.Accepted != 2 || resp.Rejected != 2 {
		t.Fatalf("answer = %v", resp)
	}
	byLine := map[int64]*dmicv1.RecordResult{}
	for _, r := range resp.Results {
		byLine[r.LineNumber] = r
	}
	if !byLine[1].GetAccepted() || byLine[1].GetRecordId() != "BRXX1" || !byLine[4].GetAccepted() {
		t.Errorf("good lines 1 and 4 not accepted: %v", resp.Results)
	}
	if r := byLine[2]; r == nil || r.Accepted || r.Failures[0].RuleId != "DEC-JSON" {
		t.Errorf("line 2 (broken JSON) = %v", r)
	}
	if r := byLine[5]; r == nil || r.Accepted || r.Failures[0].RuleId != "DEC-UNKNOWN-FIELD" || r.Failures[0].Field != "unknown_field" {
		t.Errorf("line 5 (unknown field) = %v", r)
	}
	rawMsgs := read(t, f.admin, topics.Raw, 2)
	for _, m := range rawMsgs {
		h, err := envelope.ParseHeaders(kafkapipe.FromKafkaHeaders(m.Headers))
		if err != nil {
			t.Fatal(err)
		}
		if h.SubmissionID != resp.SubmissionId || h.Submitter != "RXX" || h.Dataset != dmicv1.Dataset_DATASET_OUTPATIENT || h.Source != dmicv1.Source_SOURCE_PROVIDER {
			t.Errorf("raw headers = %+v", h)
		}
		// Received by ingest's clock, which picks validate's specification
		// version.
		if today := clocktest.Today(t); !h.Received.Equal(today) {
			t.Errorf("received %v in submission %s, want the clock's %v", h.Received, resp.SubmissionId, today)
		}
		if !strings.HasPrefix(string(m.Key), "RXX|outpatient|BRXX") {
			t.Errorf("raw key = %s", m.Key)
		}
		var obj map[string]any
		if err := json.Unmarshal(m.Value, &obj); err != nil || obj["dataset"] != "outpatient" {
			t.Errorf("raw value is not the canonical JSON: %s", m.Value)
		}
	}
	dls := read(t, f.admin, topics.Rejected, 2)
	dl := &dmicv1.DeadLetter{}
	if err := proto.Unmarshal(dls[0].Value, dl); err != nil {
		t.Fatal(err)
	}
	if dl.Stage != "ingest" || dl.Header.GetSubmissionId() != resp.SubmissionId || dl.Header.GetLineNumber() == 0 {
		t.Errorf("dead letter = %v", dl)
	}
	if f.svc.Processed() != 2 || f.svc.Rejected() != 2 {
		t.Errorf("counters = %d/%d", f.svc.Processed(), f.svc.Rejected())
	}
	// The refused lines are judged here, for the submission report.
	outs := read(t, f.admin, topics.ValidationOutcomes, 2)
	lines := map[int64]string{}
	for _, m := range outs {
		o := &validationv1.ValidationOutcome{}
		if err := proto.Unmarshal(m.Value, o); err != nil {
			t.Fatal(err)
		}
		if o.Stage != "ingest" || o.Outcome != validationv1.Outcome_OUTCOME_REJECTED || o.Header.GetSubmissionId() != resp.SubmissionId {
			t.Errorf("door outcome = %v", o)
		}
		lines[o.Header.GetLineNumber()] = o.Failures[0].GetRuleId()
	}
	if lines[2] != "DEC-JSON" || lines[5] != "DEC-UNKNOWN-FIELD" {
		t.Errorf("door outcomes by line = %v, want line 2 DEC-JSON and line 5 DEC-UNKNOWN-FIELD", lines)
	}
	// The start receipt, before any record; then the final one.
	receipts := receiptsOf(t, read(t, f.admin, topics.Submissions, 2))
	if rc := receipts[0]; rc.State != validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING || rc.SubmissionId != resp.SubmissionId || rc.Attempt != 1 {
		t.Errorf("first receipt = %v, want the start of attempt 1", rc)
	}
	if rc := receipts[1]; rc.SubmissionId != resp.SubmissionId || rc.Records != 4 || rc.Refused != 2 || rc.Transport != "http" ||
		rc.SubmitterOrgCode != "RXX" || rc.Dataset != dmicv1.Dataset_DATASET_OUTPATIENT ||
		rc.State != validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED || rc.Attempt != 1 || rc.ContentSha256 != sha256Hex(body) {
		t.Errorf("final receipt = %v, want attempt 1 received, 4 records of which 2 refused, the body's digest", rc)
	}
	if resp.Attempt != 1 || resp.ContentSha256 != sha256Hex(body) {
		t.Errorf("answer names attempt %d and digest %s, want 1 and the body's", resp.Attempt, resp.ContentSha256)
	}
}

func receiptsOf(t *testing.T, msgs []kafka.Message) []*validationv1.SubmissionReceipt {
	t.Helper()
	out := make([]*validationv1.SubmissionReceipt, len(msgs))
	for i, m := range msgs {
		out[i] = &validationv1.SubmissionReceipt{}
		if err := proto.Unmarshal(m.Value, out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestRepeatedRecordIDsAreMarkedWithTheirFirstLine(t *testing.T) {
	f := newFixture(t)
	// BRXX1 three times, BRXX2 once; a different dataset may reuse an id.
	body := op("BRXX1") + "\n" + op("BRXX2") + "\n" + op("BRXX1") + "\n" + op("BRXX1") + "\n"
	code, resp, raw := f.post(t, "dataset=outpatient&submitter=rxx", "application/x-ndjson", body)
	if code != http.StatusOK || resp.Accepted != 4 {
		t.Fatalf("status %d: %s", code, raw)
	}
	dup := map[int64]int64{}
	for _, m := range read(t, f.admin, topics.Raw, 4) {
		h, err := envelope.ParseHeaders(kafkapipe.FromKafkaHeaders(m.Headers))
		if err != nil {
			t.Fatal(err)
		}
		dup[h.Line] = h.DuplicateOfLine
	}
	if want := map[int64]int64{1: 0, 2: 0, 3: 1, 4: 1}; !maps.Equal(dup, want) {
		t.Errorf("duplicate-of by line = %v, want %v", dup, want)
	}
}

func TestCSVAndNationalCopyComeThroughTheSameDoor(t *testing.T) {
	f := newFixture(t)
	csv := "cds_unique_identifier,provider_code,person_birth_date,attendance_identifier,appointment_date,attended_or_did_not_attend_code,treatment_function_code\n" +
		"BRXX1,RXX,1980-01-01,A1,2026-01-02,5,100\n" +
		"BRXX2,RXX,1980-01-01,A2\n"
	code, resp, raw := f.postAs(t, f.national, "dataset=op&source=national&results=errors", "text/csv", csv)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, raw)
	}
	if resp.Accepted != 1 || resp.Rejected != 1 || len(resp.Results) != 1 || resp.Results[0].LineNumber != 3 {
		t.Fatalf("answer = %v", resp)
	}
	m := read(t, f.admin, topics.Raw, 1)[0]
	h, _ := envelope.ParseHeaders(kafkapipe.FromKafkaHeaders(m.Headers))
	if h.Source != dmicv1.Source_SOURCE_NATIONAL || h.Submitter != envelope.NationalSubmitter {
		t.Errorf("national copy headers = %+v", h)
	}
}

func TestBadRequestsAreRefusedWithAllReasons(t *testing.T) {
	f := newFixture(t)
	code, _, raw := f.post(t, "dataset=dentistry&source=martian", "application/x-ndjson", op("B1"))
	if code != http.StatusBadRequest || !strings.Contains(raw, "dataset") || !strings.Contains(raw, "source") {
		t.Errorf("status %d: %s", code, raw)
	}
	code, _, raw = f.post(t, "dataset=apc", "application/xml", "<x/>")
	if code != http.StatusBadRequest || !strings.Contains(raw, "Content-Type") {
		t.Errorf("status %d: %s", code, raw)
	}
	f.svc.Pause()
	code, _, _ = f.post(t, "dataset=outpatient", "application/x-ndjson", op("B1"))
	if code != http.StatusServiceUnavailable {
		t.Errorf("paused ingest answered %d", code)
	}
}

func TestGRPCStreamingSubmission(t *testing.T) {
	f := newFixture(t)
	client := f.grpcClient(t, f.rxx)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := client.SubmitRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&dmicv1.SubmitRecordsRequest{Dataset: dmicv1.Dataset_DATASET_OUTPATIENT, SubmitterOrgCode: "RXX", JsonRecords: []string{op("BRXX1"), "not json"}})
	_ = stream.Send(&dmicv1.SubmitRecordsRequest{JsonRecords: []string{op("BRXX2")}})
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Accepted != 2 || resp.Rejected != 1 || resp.Read.GetRecords() != 3 || resp.Read.GetStoppedAtLine() != 0 {
		t.Fatalf("answer = %v, want 3 records read, 2 accepted", resp)
	}
	for _, r := range resp.Results {
		if !r.Accepted && (r.LineNumber != 2 || r.Failures[0].RuleId != "DEC-JSON") {
			t.Errorf("rejected result = %v", r)
		}
	}
	read(t, f.admin, topics.Raw, 2)

	f.svc.Pause()
	stream, _ = client.SubmitRecords(ctx)
	_ = stream.Send(&dmicv1.SubmitRecordsRequest{Dataset: dmicv1.Dataset_DATASET_OUTPATIENT, JsonRecords: []string{op("B3")}})
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.Unavailable {
		t.Errorf("paused ingest over gRPC: %v", err)
	}
}

// A CSV with a quote left open in row 2 of 4 used to answer two results and
// say nothing of rows 3 and 4. The answer now says how much was read and
// where reading stopped, and row 2's failure names the lines it took in; the
// submission's receipt and the refused row's verdict say the same, so the
// report shows it too.
func TestCSVUnclosedQuoteIsAnsweredWithWhereReadingStopped(t *testing.T) {
	f := newFixture(t)
	csv := "cds_unique_identifier,provider_code,person_birth_date,attendance_identifier,appointment_date,attended_or_did_not_attend_code,treatment_function_code\n" +
		"BRXX1,RXX,1980-01-01,A1,2026-01-02,5,100\n" + // line 2: row 1
		"BRXX2,RXX,1980-01-01,\"A2,2026-01-02,5,100\n" + // line 3: row 2, the quote never closes
		"BRXX3,RXX,1980-01-01,A3,2026-01-02,5,100\n" + // line 4: row 3
		"BRXX4,RXX,1980-01-01,A4,2026-01-02,5,100\n" // line 5: row 4
	code, resp, raw := f.post(t, "dataset=outpatient", "text/csv", csv)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, raw)
	}
	if resp.Accepted != 1 || resp.Rejected != 1 {
		t.Fatalf("answer = %v, want row 1 accepted and row 2 refused", resp)
	}
	want := &dmicv1.ReadSummary{Records: 2, Lines: 5, StoppedAtLine: 3, StoppedByRule: "DEC-CSV"}
	if !proto.Equal(resp.Read, want) {
		t.Errorf("read = %v, want %v", resp.Read, want)
	}
	for _, w := range []string{`"stopped_at_line":"3"`, `"lines":"5"`} {
		if !strings.Contains(raw, w) {
			t.Errorf("answer %s does not hold %s", raw, w)
		}
	}
	var failure *dmicv1.Failure
	for _, r := range resp.Results {
		if r.LineNumber == 3 && len(r.Failures) == 1 {
			failure = r.Failures[0]
		}
	}
	if failure.GetRuleId() != "DEC-CSV" || !strings.Contains(failure.GetMessage(), "lines 3 to 5") || !strings.Contains(failure.GetMessage(), "never closed") {
		t.Errorf("line 3 failure = %v, want DEC-CSV naming lines 3 to 5", failure)
	}
	o := &validationv1.ValidationOutcome{}
	if err := proto.Unmarshal(read(t, f.admin, topics.ValidationOutcomes, 1)[0].Value, o); err != nil {
		t.Fatal(err)
	}
	if o.Header.GetLineNumber() != 3 || !proto.Equal(o.Failures[0], failure) {
		t.Errorf("verdict for the report = %v, want the same failure on line 3", o)
	}
}

// NDJSON: a line over the reader's cap is refused and reading goes on; a
// last line cut short says so; the answer counts every line.
func TestNDJSONLongAndTruncatedLinesAreAnswered(t *testing.T) {
	f := newFixture(t)
	body := op("BRXX1") + "\n" + // 1
		`{"cds_unique_identifier":"BRXX2","x":"` + strings.Repeat("y", 1<<20) + `"}` + "\n" + // 2: over 1 MiB
		op("BRXX3") + "\n" + // 3
		op("BRXX4")[:40] // 4: cut short, no line ending
	code, resp, raw := f.post(t, "dataset=outpatient", "application/x-ndjson", body)
	if code != http.StatusOK {
		t.Fatalf("status %d: %.300s", code, raw)
	}
	rules := map[int64]string{}
	var last string
	for _, r := range resp.Results {
		if len(r.Failures) > 0 {
			rules[r.LineNumber] = r.Failures[0].RuleId
			last = r.Failures[0].Message
		} else {
			rules[r.LineNumber] = "accepted"
		}
	}
	if want := map[int64]string{1: "accepted", 2: "DEC-TOO-LONG", 3: "accepted", 4: "DEC-JSON"}; !maps.Equal(rules, want) {
		t.Errorf("results by line = %v, want %v", rules, want)
	}
	if !strings.Contains(last, "cut short") {
		t.Errorf("line 4 message %q does not say the submission may have been cut short", last)
	}
	if want := (&dmicv1.ReadSummary{Records: 4, Lines: 4}); !proto.Equal(resp.Read, want) {
		t.Errorf("read = %v, want %v", resp.Read, want)
	}
}

// A query parameter the endpoint does not take used to be ignored: a
// submitter misspelt "submiter" left every record counted as its own
// provider's. It is refused now, with the name it most likely meant, and
// nothing is stored.
func TestUnknownQueryParametersAreRefused(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"dataset=outpatient&submiter=RXX", []string{`\"submiter\" is not known`, "did you mean submitter?",
			"known: dataset, source, submitter, results, idempotency_key"}},
		{"Dataset=outpatient", []string{`\"Dataset\" is not known`, "did you mean dataset?"}},
		{"dataset=outpatient&colour=blue&submiter=RXX", []string{`\"colour\" is not known; known:`, `\"submiter\"`}},
		{"dataset=outpatient&submitter=RXX&submitter=RYY", []string{`\"submitter\" is given 2 times`}},
	} {
		code, _, raw := f.post(t, tc.query, "application/x-ndjson", op("BRXX1"))
		if code != http.StatusBadRequest {
			t.Errorf("?%s: status %d, want 400: %s", tc.query, code, raw)
		}
		for _, w := range tc.want {
			if !strings.Contains(raw, w) {
				t.Errorf("?%s: answer %s does not say %s", tc.query, raw, w)
			}
		}
	}
	if f.svc.Processed() != 0 || f.svc.Rejected() != 0 {
		t.Errorf("refused requests stored %d records and refused %d", f.svc.Processed(), f.svc.Rejected())
	}
	// The parameter of idempotent resends is known (it is documented there).
	if code, _, raw := f.post(t, "dataset=outpatient&submitter=RXX&idempotency_key=k1", "application/x-ndjson", op("BRXX1")); code != http.StatusOK {
		t.Errorf("idempotency_key: status %d: %s", code, raw)
	}
}
