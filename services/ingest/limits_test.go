package ingest_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/record/recordtest"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
)

// limitLines are records at the record limit and one byte either side, then
// a small good one: the limit refuses only the one above it, by line.
func limitLines(t *testing.T) []string {
	return []string{
		recordtest.OutpatientOfSize(t, "BRXXL1", limits.MaxRecordBytes-1),
		recordtest.OutpatientOfSize(t, "BRXXL2", limits.MaxRecordBytes),
		recordtest.OutpatientOfSize(t, "BRXXL3", limits.MaxRecordBytes+1),
		recordtest.Outpatient("BRXXL4"),
	}
}

func checkLimitAnswer(t *testing.T, f *fixture, resp *dmicv1.SubmitRecordsResponse) {
	t.Helper()
	if resp.Accepted != 3 || resp.Rejected != 1 {
		t.Fatalf("accepted %d, rejected %d; want 3 and 1", resp.Accepted, resp.Rejected)
	}
	for _, r := range resp.Results {
		if r.LineNumber == 3 {
			if r.Accepted || len(r.Failures) != 1 || r.Failures[0].RuleId != record.RuleTooLong ||
				!strings.Contains(r.Failures[0].Message, strconv.Itoa(limits.MaxRecordBytes)) {
				t.Errorf("line 3 (one byte over) = %v, want %s naming the limit", r, record.RuleTooLong)
			}
		} else if !r.Accepted {
			t.Errorf("line %d refused: %v", r.LineNumber, r.Failures)
		}
	}
	for _, m := range read(t, f.admin, topics.Raw, 3) {
		if len(m.Value) > limits.MaxRecordBytes {
			t.Errorf("a %d-byte record reached %s", len(m.Value), topics.Raw)
		}
	}
}

// TestRecordLimitOverHTTP: limits.MaxRecordBytes, and one byte either side,
// through the HTTP door (issue 10).
func TestRecordLimitOverHTTP(t *testing.T) {
	f := newFixture(t)
	code, resp, raw := f.post(t, "dataset=outpatient&submitter=RXX", "application/x-ndjson", strings.Join(limitLines(t), "\n")+"\n")
	if code != 200 {
		t.Fatalf("status %d: %.300s", code, raw)
	}
	checkLimitAnswer(t, f, resp)
}

// TestRecordLimitOverGRPC: the same records as gRPC json_records.
func TestRecordLimitOverGRPC(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := f.grpcClient(t, f.rxx).SubmitRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range limitLines(t) {
		req := &dmicv1.SubmitRecordsRequest{JsonRecords: []string{line}}
		if i == 0 {
			req.Dataset, req.SubmitterOrgCode = dmicv1.Dataset_DATASET_OUTPATIENT, "RXX"
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	checkLimitAnswer(t, f, resp)
}

// counter is the sum of a counter of reg over the series with the labels
// given.
func counter(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// onlyReader hides a reader's type, so that net/http sends its body
// chunked, with no Content-Length: the cap must hold while it is read.
type onlyReader struct{ io.Reader }

// postBody posts body as client, with or without its length.
func (f *fixture) postBody(t *testing.T, client *http.Client, query, contentType string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/v1/submissions?"+query, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// nothingStored fails if any data topic holds a message.
func nothingStored(t *testing.T, f *fixture) {
	t.Helper()
	for _, topic := range dataTopics {
		if n := topicSize(t, f.admin, topic); n != 0 {
			t.Errorf("%s holds %d messages from refused submissions", topic, n)
		}
	}
}

// sendGRPC submits records as leaf over gRPC, in messages of 100.
func (f *fixture) sendGRPC(t *testing.T, leaf *devpki.Leaf, records []string) (*dmicv1.SubmitRecordsResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := f.grpcClient(t, leaf).SubmitRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(records); i += 100 {
		req := &dmicv1.SubmitRecordsRequest{JsonRecords: records[i:min(i+100, len(records))]}
		if i == 0 {
			req.Dataset = dmicv1.Dataset_DATASET_OUTPATIENT
		}
		// A refusal ends the stream early; the status comes with CloseAndRecv.
		if err := stream.Send(req); err != nil {
			break
		}
	}
	return stream.CloseAndRecv()
}

// TestBodyOverTheCapIsRefused is issue 12's acceptance for the body cap: a
// body over it is refused with 413 naming the cap, whether its length is
// announced or not, and a gRPC stream over it with RESOURCE_EXHAUSTED;
// nothing of either reaches Kafka; each is counted and audited.
func TestBodyOverTheCapIsRefused(t *testing.T) {
	const capBytes = 1 << 20
	l := ingest.DefaultLimits()
	l.MaxBodyBytes = capBytes
	f := newFixture(t, ingest.WithLimits(l))
	// Over the cap as records alone (gRPC counts no line endings).
	var lines []string
	size := 0
	for i := 0; size <= capBytes; i++ {
		lines = append(lines, op(fmt.Sprintf("BRXXBIG%06d", i)))
		size += len(lines[i])
	}
	body := strings.Join(lines, "\n") + "\n"
	for _, tc := range []struct {
		name string
		body io.Reader
	}{{"with its length", strings.NewReader(body)}, {"chunked", onlyReader{strings.NewReader(body)}}} {
		code, raw, _ := f.postBody(t, f.client, "dataset=outpatient", ndjson, tc.body)
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(raw, strconv.Itoa(capBytes)) || !strings.Contains(raw, "-max-submission-bytes") {
			t.Errorf("%s: %d %s, want 413 naming the %d-byte cap", tc.name, code, raw, capBytes)
		}
	}
	_, err := f.sendGRPC(t, f.rxx, lines)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), strconv.Itoa(capBytes)) {
		t.Errorf("gRPC over the cap: %v, want RESOURCE_EXHAUSTED naming the cap", err)
	}
	nothingStored(t, f)
	if got := refusalsIn(t, f.admin, ingest.ReasonBodyTooLarge, 3); len(got) != 3 || got[0].Caller == nil || got[0].Caller.Org != "RXX" {
		t.Errorf("audit trail: %+v, want three refusals of RXX's bodies", got)
	}
	if got := counter(t, f.metrics, "dmic_ingest_refusals_total", map[string]string{"reason": ingest.ReasonBodyTooLarge}); got != 3 {
		t.Errorf("dmic_ingest_refusals_total{reason=body-too-large} = %v, want 3", got)
	}
	// Under the cap is stored.
	if resp := f.mustPost(t, "dataset=outpatient", strings.Join(lines[:10], "\n")+"\n"); resp.Accepted != 10 {
		t.Errorf("under the cap: accepted %d of 10", resp.Accepted)
	}
}

// TestTooManyRecordsIsRefused: the record cap, over HTTP (lines after a
// CSV header) and gRPC; at the cap is stored, one over is refused with 413
// naming it and stores nothing.
func TestTooManyRecordsIsRefused(t *testing.T) {
	l := ingest.DefaultLimits()
	l.MaxRecords = 3
	f := newFixture(t, ingest.WithLimits(l))
	const refused = "BREFUSED"
	four := op(refused+"1") + "\n" + op(refused+"2") + "\n" + op(refused+"3") + "\n" + op(refused+"4")
	for _, body := range []string{four, four + "\n"} {
		code, raw, _ := f.postBody(t, f.client, "dataset=outpatient", ndjson, onlyReader{strings.NewReader(body)})
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(raw, "3-record limit") {
			t.Errorf("four records: %d %s, want 413 naming the 3-record limit", code, raw)
		}
	}
	_, err := f.sendGRPC(t, f.rxx, strings.Split(four, "\n"))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "3-record limit") {
		t.Errorf("four records over gRPC: %v, want RESOURCE_EXHAUSTED naming the limit", err)
	}
	nothingStored(t, f)
	// Three, as NDJSON, and as CSV after its header, are stored.
	resp := f.mustPost(t, "dataset=outpatient", op("BRXXA1")+"\n"+op("BRXXA2")+"\n"+op("BRXXA3")+"\n")
	code, csvResp, raw := f.post(t, "dataset=outpatient", "text/csv", "cds_unique_identifier,provider_code\nBRXXC1,RXX\nBRXXC2,RXX\nBRXXC3,RXX\n")
	if resp.Accepted != 3 || code != http.StatusOK || csvResp.Accepted+csvResp.Rejected != 3 {
		t.Errorf("three records: NDJSON %v; CSV %d %s", resp, code, raw)
	}
	storedOnly(t, f.admin, []string{resp.SubmissionId, csvResp.SubmissionId}, refused)
	if got := refusalsIn(t, f.admin, ingest.ReasonTooManyRecords, 3); len(got) != 3 {
		t.Errorf("audit trail: %d refusals for too many records, want 3", len(got))
	}
}

// TestLargeBodyOfBadLinesHasABoundedAnswer is issue 12's acceptance for the
// answer: 50,000 undecodable lines (20 MB of them made a 28 MB answer) are
// answered in a few hundred KiB, with every line counted and each still
// judged on Kafka.
func TestLargeBodyOfBadLinesHasABoundedAnswer(t *testing.T) {
	f := newFixture(t)
	const lines = 50_000
	body := strings.Repeat("{not json\n", lines)
	code, resp, raw := f.post(t, "dataset=outpatient", ndjson, body)
	if code != http.StatusOK {
		t.Fatalf("status %d: %.300s", code, raw)
	}
	if resp.Rejected != lines || resp.Accepted != 0 || resp.GetRead().GetRecords() != lines {
		t.Errorf("counts: rejected %d, accepted %d, read %d; want every one of %d lines", resp.Rejected, resp.Accepted, resp.GetRead().GetRecords(), lines)
	}
	if len(resp.Results) != ingest.DefaultAnswerResults || resp.ResultsOmitted != lines-ingest.DefaultAnswerResults {
		t.Errorf("listed %d, omitted %d; want %d listed and the rest omitted", len(resp.Results), resp.ResultsOmitted, ingest.DefaultAnswerResults)
	}
	if last := resp.Results[len(resp.Results)-1]; last.LineNumber != ingest.DefaultAnswerResults {
		t.Errorf("the list ends at line %d, want the first %d lines", last.LineNumber, ingest.DefaultAnswerResults)
	}
	if len(raw) > 256<<10 {
		t.Errorf("the answer is %d bytes, want under 256 KiB", len(raw))
	}
	t.Logf("answer of %d bytes for %d bad lines", len(raw), lines)
	// Each line is still judged for the report: its dead letter and verdict.
	if n := topicSize(t, f.admin, topics.Rejected); n != lines {
		t.Errorf("%d dead letters, want %d", n, lines)
	}
}

// TestAnswerListsEachKindUpToTheLimit: with results=all, failures and
// accepted records each have their own budget, so that failures after many
// accepted lines are still listed, in line order.
func TestAnswerListsEachKindUpToTheLimit(t *testing.T) {
	l := ingest.DefaultLimits()
	l.AnswerResults = 2
	f := newFixture(t, ingest.WithLimits(l))
	var b strings.Builder
	for i := range 4 {
		fmt.Fprintf(&b, "%s\n", op(fmt.Sprintf("BRXXG%d", i)))
	}
	b.WriteString("{bad\n{bad\n{bad\n")
	resp := f.mustPost(t, "dataset=outpatient", b.String())
	var got []string
	for _, r := range resp.Results {
		got = append(got, fmt.Sprintf("%d:%v", r.LineNumber, r.Accepted))
	}
	if want := []string{"1:true", "2:true", "5:false", "6:false"}; !slices.Equal(got, want) || resp.ResultsOmitted != 3 || resp.Accepted != 4 || resp.Rejected != 3 {
		t.Errorf("results %v, omitted %d (accepted %d, rejected %d); want %v, 3 omitted, 4 and 3", got, resp.ResultsOmitted, resp.Accepted, resp.Rejected, want)
	}
	// Only the failures asked for: accepted ones are neither listed nor
	// counted as omitted.
	resp = f.mustPost(t, "dataset=outpatient&results=errors", b.String())
	if len(resp.Results) != 2 || resp.ResultsOmitted != 1 {
		t.Errorf("results=errors: %d listed, %d omitted; want 2 and 1", len(resp.Results), resp.ResultsOmitted)
	}
}

// TestRateLimitPerSubmitter: an organisation over its rate is refused with
// 429 and a Retry-After (gRPC RESOURCE_EXHAUSTED with RetryInfo), audited
// and counted, while another organisation is not held up; once the clock
// has moved on it submits again. Time is the fixture's clock, moved by the
// test: no sleeping.
func TestRateLimitPerSubmitter(t *testing.T) {
	clk := clock.NewManual(clocktest.Today(t))
	l := ingest.DefaultLimits()
	l.Rate, l.Burst = 1, 2
	f := newFixture(t, ingest.WithClock(clk.Clock()), ingest.WithLimits(l))
	var stored []string
	for i := range 2 {
		stored = append(stored, f.mustPost(t, "dataset=outpatient", op(fmt.Sprintf("BRXXR%d", i))+"\n").SubmissionId)
	}
	const refused = "BREFUSED"
	code, raw, h := f.postBody(t, f.client, "dataset=outpatient", ndjson, strings.NewReader(op(refused+"1")+"\n"))
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || !strings.Contains(raw, "-submission-rate") {
		t.Errorf("third submission: %d Retry-After %q %s; want 429, Retry-After 1, naming the rate", code, h.Get("Retry-After"), raw)
	}
	_, err := f.sendGRPC(t, f.rxx, []string{op(refused + "2")})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC over the rate: %v, want RESOURCE_EXHAUSTED", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() != time.Second {
		t.Errorf("gRPC refusal's RetryInfo %v, want a delay of 1s", retry)
	}
	// Another organisation has its own bucket.
	if code, resp, raw := f.postAs(t, f.national, "dataset=outpatient", ndjson, op("BRXXN1")+"\n"); code != http.StatusOK {
		t.Errorf("the national exchange, held up by RXX: %d %s", code, raw)
	} else {
		stored = append(stored, resp.SubmissionId)
	}
	clk.Advance(time.Second)
	stored = append(stored, f.mustPost(t, "dataset=outpatient", op("BRXXR9")+"\n").SubmissionId)
	storedOnly(t, f.admin, stored, refused)
	got := refusalsIn(t, f.admin, ingest.ReasonRateLimited, 2)
	if len(got) != 2 || got[0].Caller == nil || got[0].Caller.Org != "RXX" || got[1].Caller.Org != "RXX" {
		t.Errorf("audit trail: %+v, want RXX's two refusals", got)
	}
	if n := counter(t, f.metrics, "dmic_ingest_refusals_total", map[string]string{"reason": ingest.ReasonRateLimited}); n != 2 {
		t.Errorf("dmic_ingest_refusals_total{reason=rate-limited} = %v, want 2", n)
	}
	if n := counter(t, f.reg, "dmic_auth_refusals_total", map[string]string{"reason": ingest.ReasonRateLimited}); n != 2 {
		t.Errorf("dmic_auth_refusals_total{reason=rate-limited} = %v, want 2", n)
	}
}

func TestLimitsValidateListsEveryProblem(t *testing.T) {
	err := ingest.Limits{MaxBodyBytes: 10, MaxRecords: 0, AnswerResults: 0, Rate: -1}.Validate()
	for _, flag := range []string{"-max-submission-bytes", "-max-submission-records", "-answer-results", "-submission-rate"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("Validate = %v, want it to name %s", err, flag)
		}
	}
	if err := ingest.DefaultLimits().Validate(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	if err := (ingest.Limits{MaxBodyBytes: limits.MaxSubmissionBytes, MaxRecords: 1, AnswerResults: 1, Rate: 1}).Validate(); err == nil || !strings.Contains(err.Error(), "-submission-burst") {
		t.Errorf("a rate without a burst: %v", err)
	}
}

// TestOperationsDocumentsTheLimitFlags keeps docs/operations.md's table of
// submission limits in step with the flags and their defaults.
func TestOperationsDocumentsTheLimitFlags(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, ok := strings.Cut(string(b), "### Submission limits")
	if !ok {
		t.Fatal(`docs/operations.md has no "Submission limits"`)
	}
	doc, _, _ = strings.Cut(doc, "\n#")
	l := ingest.DefaultLimits()
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	l.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(doc, "`-"+f.Name+"`") {
			t.Errorf("docs/operations.md's submission limits do not name -%s", f.Name)
		}
		if !strings.Contains(doc, f.DefValue) {
			t.Errorf("docs/operations.md does not give -%s's default %s", f.Name, f.DefValue)
		}
	})
}
