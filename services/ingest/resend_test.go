package ingest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
)

const ndjson = "application/x-ndjson"

// topicSize is how many messages topic holds, over all partitions.
func topicSize(t *testing.T, c kafkaconn.Cluster, topic string) int64 {
	t.Helper()
	client := c.Client(10 * time.Second)
	meta, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(meta.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("offsets of %s: %v", topic, err)
	}
	var n int64
	for _, p := range offs.Topics[topic] {
		n += p.LastOffset
	}
	return n
}

// TestResendIsTheSameSubmission: a file sent again, without a key, is the
// same submission: the same id, a second attempt, and every record of it
// carries the first attempt's received time, even a day later.
func TestResendIsTheSameSubmission(t *testing.T) {
	today := clocktest.Today(t)
	clk := clock.NewManual(today)
	// A spool of 64 bytes in memory: the file is kept in a (nameless) file.
	f := newFixture(t, ingest.WithClock(clk.Clock()), ingest.WithSpool(t.TempDir(), 64))
	body := op("BRXX1") + "\n" + "not json\n" + op("BRXX2") + "\n"
	code, first, raw := f.post(t, "dataset=outpatient&submitter=rxx", ndjson, body)
	if code != http.StatusOK || first.Attempt != 1 {
		t.Fatalf("first send: %d %s", code, raw)
	}
	clk.Advance(6 * time.Hour)
	code, again, raw := f.post(t, "dataset=outpatient&submitter=rxx", ndjson, body)
	if code != http.StatusOK {
		t.Fatalf("resend: %d %s", code, raw)
	}
	if again.SubmissionId != first.SubmissionId || again.Attempt != 2 || again.Accepted != 2 || again.Rejected != 1 {
		t.Errorf("resend answered %v, want submission %s, attempt 2, 2 accepted and 1 rejected", again, first.SubmissionId)
	}
	for _, m := range read(t, f.admin, topics.Raw, 4) {
		h, err := envelope.ParseHeaders(kafkapipe.FromKafkaHeaders(m.Headers))
		if err != nil {
			t.Fatal(err)
		}
		if h.SubmissionID != first.SubmissionId || !h.Received.Equal(today) {
			t.Errorf("raw record of submission %s received %v, want %s received %v", h.SubmissionID, h.Received, first.SubmissionId, today)
		}
	}
	var got []string
	for _, r := range receiptsOf(t, read(t, f.admin, topics.Submissions, 4)) {
		if r.SubmissionId != first.SubmissionId || !r.ReceivedTime.AsTime().Equal(today) {
			t.Errorf("receipt %v: want submission %s received %v", r, first.SubmissionId, today)
		}
		got = append(got, r.State.String()+" "+r.AttemptTime.AsTime().Sub(today).String())
	}
	want := "[SUBMISSION_STATE_RECEIVING 0s SUBMISSION_STATE_RECEIVED 0s SUBMISSION_STATE_RECEIVING 6h0m0s SUBMISSION_STATE_RECEIVED 6h0m0s]"
	if strings.Join(got, " ") != strings.Trim(want, "[]") {
		t.Errorf("receipts (state, attempt time) = %v, want %s", got, want)
	}

	// A resend more than ResendKeepsReceived after the first attempt is the
	// same submission, received when it is sent: the broker bounds how old a
	// record's timestamp may be.
	clk.Advance(20 * time.Hour)
	code, late, raw := f.post(t, "dataset=outpatient&submitter=rxx", ndjson, body)
	if code != http.StatusOK || late.SubmissionId != first.SubmissionId || late.Attempt != 3 {
		t.Fatalf("late resend: %d %s", code, raw)
	}
	for _, m := range read(t, f.admin, topics.Raw, 2) {
		h, err := envelope.ParseHeaders(kafkapipe.FromKafkaHeaders(m.Headers))
		if err != nil {
			t.Fatal(err)
		}
		if want := today.Add(26 * time.Hour); !h.Received.Equal(want) || !m.Time.Equal(want) {
			t.Errorf("late resend's record received %v (timestamp %v), want %v", h.Received, m.Time, want)
		}
	}

	// Other content, or another submitter (the same records, RYY's), is
	// another submission.
	for _, q := range []string{"dataset=outpatient&submitter=rxx&content=other", "dataset=outpatient&submitter=ryy"} {
		b, client := body, f.client
		switch {
		case strings.Contains(q, "content=other"):
			q, b = "dataset=outpatient&submitter=rxx", body+op("BRXX3")+"\n"
		case strings.Contains(q, "ryy"):
			b, client = ofProvider("RYY", body), f.clientOf("RYY")
		}
		code, other, raw := f.postAs(t, client, q, ndjson, b)
		if code != http.StatusOK || other.SubmissionId == first.SubmissionId || other.Attempt != 1 {
			t.Errorf("%s: %d %s, want a submission of its own", q, code, raw)
		}
	}
}

// ofProvider is body with the records of test providers RXX made provider's.
func ofProvider(provider, body string) string {
	return strings.ReplaceAll(body, `"provider_code":"RXX"`, `"provider_code":"`+provider+`"`)
}

// clientOf presents a certificate of provider org.
func (f *fixture) clientOf(org string) *http.Client {
	return f.pki.HTTPClient(f.pki.Client(identity.Provider, org, org+" EPR"))
}

// mustPost posts NDJSON and fails the test unless it is stored.
func (f *fixture) mustPost(t *testing.T, query, body string) *dmicv1.SubmitRecordsResponse {
	t.Helper()
	code, resp, raw := f.post(t, query, ndjson, body)
	if code != http.StatusOK {
		t.Fatalf("POST ?%s: %d %s", query, code, raw)
	}
	return resp
}

// postKey posts body as RXX with an idempotency key in the query (and
// header when header is not empty).
func (f *fixture) postKey(t *testing.T, query, header, body string) (int, string, http.Header) {
	t.Helper()
	return f.postKeyAs(t, f.client, query, header, body)
}

// postKeyAs is postKey with client's certificate.
func (f *fixture) postKeyAs(t *testing.T, client *http.Client, query, header, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/v1/submissions?"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ndjson)
	if header != "" {
		req.Header.Set(ingest.KeyHeader, header)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestIdempotencyKey: a key names one submission per submitter, dataset and
// source; a resend under it is that submission, and other content under it
// is refused with 409, storing nothing.
func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	a, b := op("BRXX1")+"\n", op("BRXX2")+"\n"
	first := f.mustPost(t, "dataset=outpatient&submitter=RXX&idempotency_key=RXX-op-2026-11.ndjson", a)
	before := topicSize(t, f.admin, topics.Raw)

	code, body, hdr := f.postKey(t, "dataset=outpatient&submitter=RXX&idempotency_key=RXX-op-2026-11.ndjson", "", b)
	if code != http.StatusConflict || !strings.Contains(body, `idempotency key \"RXX-op-2026-11.ndjson\" is already used by submission `+first.SubmissionId) ||
		!strings.Contains(body, "a different file needs a new key") || hdr.Get("Location") != "/v1/submissions/"+first.SubmissionId {
		t.Errorf("other content under the key: %d %s (Location %q), want 409 naming the key and submission %s", code, body, hdr.Get("Location"), first.SubmissionId)
	}
	if after := topicSize(t, f.admin, topics.Raw); after != before {
		t.Errorf("the refused submission stored %d records", after-before)
	}

	// The same file under the key, named in the header: a resend.
	code, body, _ = f.postKey(t, "dataset=outpatient&submitter=RXX", "RXX-op-2026-11.ndjson", a)
	if code != http.StatusOK || !strings.Contains(body, `"submission_id":"`+first.SubmissionId+`"`) || !strings.Contains(body, `"attempt":"2"`) {
		t.Errorf("resend with the key in the header: %d %s, want submission %s, attempt 2", code, body, first.SubmissionId)
	}
	// The key is the submitter's: another submitter may use it.
	code, body, _ = f.postKeyAs(t, f.clientOf("RYY"), "dataset=outpatient&submitter=RYY&idempotency_key=RXX-op-2026-11.ndjson", "", ofProvider("RYY", b))
	if code != http.StatusOK || strings.Contains(body, first.SubmissionId) {
		t.Errorf("the key of another submitter: %d %s, want a submission of its own", code, body)
	}

	for _, tc := range []struct{ query, header, want string }{
		{"dataset=outpatient&idempotency_key=one", "two", "differ"},
		{"dataset=outpatient&idempotency_key=has%20space", "", "1 to 128 letters, digits or . _ : -"},
		{"dataset=outpatient&idempotency_key=" + strings.Repeat("k", 129), "", "1 to 128"},
	} {
		if code, body, _ := f.postKey(t, tc.query, tc.header, a); code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s (header %q): %d %s, want 400 saying %q", tc.query, tc.header, code, body, tc.want)
		}
	}
}

// TestAnotherInstanceKnowsTheKey: the attempt log is every instance's, and
// outlives them: an instance started later refuses the key with other
// content, and takes the same file as a resend.
func TestAnotherInstanceKnowsTheKey(t *testing.T) {
	f := newFixture(t)
	a, b := op("BRXX1")+"\n", op("BRXX2")+"\n"
	first := f.mustPost(t, "dataset=outpatient&idempotency_key=batch-7", a)
	other := instance(t, f.b, ingest.WithClock(clocktest.Clock(t)))
	if code, body, _ := other.postKey(t, "dataset=outpatient&idempotency_key=batch-7", "", b); code != http.StatusConflict {
		t.Errorf("other content at another instance: %d %s, want 409", code, body)
	}
	code, again, raw := other.post(t, "dataset=outpatient&idempotency_key=batch-7", ndjson, a)
	if code != http.StatusOK || again.SubmissionId != first.SubmissionId || again.Attempt != 2 {
		t.Errorf("resend at another instance: %d %s, want submission %s, attempt 2", code, raw, first.SubmissionId)
	}
}

// grpcClient is a client of the fixture's gRPC server presenting leaf.
func (f *fixture) grpcClient(t *testing.T, leaf *devpki.Leaf) dmicv1.IngestServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(f.grpc, f.pki.DialOption(leaf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return dmicv1.NewIngestServiceClient(conn)
}

// TestGRPCIdempotencyKey: the key rides on the first message.
func TestGRPCIdempotencyKey(t *testing.T) {
	f := newFixture(t, ingest.WithSpool(t.TempDir(), 100))
	client := f.grpcClient(t, f.rxx)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	send := func(key string, records ...[]string) (*dmicv1.SubmitRecordsResponse, error) {
		stream, err := client.SubmitRecords(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, recs := range records {
			req := &dmicv1.SubmitRecordsRequest{JsonRecords: recs}
			if i == 0 {
				req.Dataset, req.SubmitterOrgCode, req.IdempotencyKey = dmicv1.Dataset_DATASET_OUTPATIENT, "RXX", key
			}
			if err := stream.Send(req); err != nil {
				t.Fatal(err)
			}
		}
		return stream.CloseAndRecv()
	}
	first, err := send("op-batch-1", []string{op("BRXX1")}, []string{op("BRXX2"), "not json"})
	if err != nil || first.Attempt != 1 || first.Accepted != 2 || first.Rejected != 1 {
		t.Fatalf("first send: %v, %v", first, err)
	}
	// The same records in other messages are the same content.
	again, err := send("op-batch-1", []string{op("BRXX1"), op("BRXX2")}, []string{"not json"})
	if err != nil || again.SubmissionId != first.SubmissionId || again.Attempt != 2 || again.ContentSha256 != first.ContentSha256 {
		t.Errorf("resend: %v, %v; want submission %s, attempt 2", again, err, first.SubmissionId)
	}
	if _, err := send("op-batch-1", []string{op("BRXX1")}); status.Code(err) != codes.AlreadyExists ||
		!strings.Contains(status.Convert(err).Message(), first.SubmissionId) {
		t.Errorf("other records under the key: %v, want AlreadyExists naming %s", err, first.SubmissionId)
	}
	if _, err := send("no spaces please", []string{op("BRXX1")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a bad key: %v, want InvalidArgument", err)
	}
	// Without a key, the records are the identity.
	noKey, err := send("", []string{op("BRXX1")})
	if err != nil || noKey.SubmissionId == first.SubmissionId {
		t.Fatalf("without a key: %v, %v", noKey, err)
	}
	if again, err := send("", []string{op("BRXX1")}); err != nil || again.SubmissionId != noKey.SubmissionId || again.Attempt != 2 {
		t.Errorf("the same records again without a key: %v, %v; want submission %s, attempt 2", again, err, noKey.SubmissionId)
	}
	var states []validationv1.SubmissionState
	for _, r := range receiptsOf(t, read(t, f.admin, topics.Submissions, 8)) {
		if r.Transport != "grpc" {
			t.Errorf("receipt over gRPC says transport %q", r.Transport)
		}
		states = append(states, r.State)
	}
	if len(states) != 8 {
		t.Errorf("receipts = %v, want a start and an end for each of the 4 stored", states)
	}
}
