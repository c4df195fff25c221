package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// of is an outpatient record of provider, with record id uid.
func of(provider, uid string) string { return ofProvider(provider, op(uid)) }

// dataTopics are every topic a submission writes to.
var dataTopics = []string{topics.Raw, topics.Rejected, topics.ValidationOutcomes, topics.Submissions, topics.SubmissionAttempts}

// drain reads with kafka-go every message on topic, from the first offset
// of each partition to its end.
func drain(t *testing.T, c kafkaconn.Cluster, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := c.Client(10 * time.Second)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(meta.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range meta.Topics[0].Partitions {
		offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p.ID)}}})
		if err != nil {
			t.Fatal(err)
		}
		end := offs.Topics[topic][0].LastOffset
		if end == 0 {
			continue
		}
		r := c.NewReader(kafka.ReaderConfig{Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset >= end-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// storedOnly fails unless every message on every data topic belongs to one
// of the submissions in ids, and none holds text from a refused one.
func storedOnly(t *testing.T, c kafkaconn.Cluster, ids []string, refusedText string) {
	t.Helper()
	for _, topic := range dataTopics {
		for _, m := range drain(t, c, topic) {
			if bytes.Contains(m.Value, []byte(refusedText)) || bytes.Contains(m.Key, []byte(refusedText)) {
				t.Errorf("%s/%d@%d holds %q, from a refused submission", topic, m.Partition, m.Offset, refusedText)
			}
			if !slices.ContainsFunc(ids, func(id string) bool {
				return bytes.Contains(m.Value, []byte(id)) || bytes.Contains(m.Key, []byte(id)) ||
					slices.ContainsFunc(m.Headers, func(h kafka.Header) bool { return string(h.Value) == id })
			}) {
				t.Errorf("%s/%d@%d (key %q) belongs to no submission that was accepted (%v)", topic, m.Partition, m.Offset, m.Key, ids)
			}
		}
	}
}

// refusalsIn reads the audit trail for refusals with reason, waiting a
// while for at least want of them (refusals are written in the background).
func refusalsIn(t *testing.T, c kafkaconn.Cluster, reason string, want int) []audit.Entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []audit.Entry
		for _, m := range drain(t, c, topics.Audit) {
			var e audit.Entry
			if err := json.Unmarshal(m.Value, &e); err != nil {
				t.Fatal(err)
			}
			if e.Outcome == audit.Refused && e.Reason == reason {
				out = append(out, e)
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRefusedSubmissionsStoreNothing is issue 12's acceptance for ingest:
// anonymous submissions (HTTP and gRPC) are refused; RCF's certificate
// sending an RP4 record is refused (the whole submission, naming the line)
// and audited; a provider's certificate sending national copies is refused;
// a submitter other than the certificate's is refused; the national
// exchange's submission is accepted as national. Nothing of a refused
// submission reaches Kafka: every message on every topic a submission
// writes to is read back and belongs to an accepted one.
func TestRefusedSubmissionsStoreNothing(t *testing.T) {
	f := newFixture(t)
	rcf := f.clientOf("RCF")
	anonymous := f.pki.HTTPClient(nil)
	analyst := f.pki.HTTPClient(f.pki.Client(identity.Analyst, "0DC", "an analyst"))
	const refused = "BREFUSED"
	mixed := of("RCF", "BRCF1") + "\n" + of("RP4", refused+"1") + "\n" + of("RCF01", "BRCF2") + "\n" + of("RP4", refused+"2") + "\n"
	for _, tc := range []struct {
		name   string
		client *http.Client
		query  string
		body   string
		code   int
		reason string
		text   []string
	}{
		{"anonymous", anonymous, "dataset=outpatient", of("RCF", refused+"1"), http.StatusUnauthorized, identity.ReasonNoCredentials, []string{"no credentials"}},
		{"an analyst", analyst, "dataset=outpatient", of("RCF", refused+"1"), http.StatusForbidden, access.ReasonRole, []string{"may not call POST /v1/submissions"}},
		{"RCF sending RP4's records", rcf, "dataset=outpatient", mixed, http.StatusForbidden, ingest.ReasonOtherProviders,
			[]string{"provider:RCF (RCF EPR) may submit only its own records", "2 record(s) name another provider", `line 2 ("RP4")`, `line 4 ("RP4")`, "Nothing of this submission was stored"}},
		{"RCF sending national copies", rcf, "dataset=outpatient&source=national", of("RCF", refused+"1"), http.StatusForbidden, ingest.ReasonNationalCopy,
			[]string{"may not submit national copies"}},
		{"RCF as RP4", rcf, "dataset=outpatient&submitter=RP4", of("RP4", refused+"1"), http.StatusForbidden, ingest.ReasonSubmitterNotCaller,
			[]string{`submitter "RP4" is not the organisation of your certificate (provider:RCF`}},
		{"national sending provider copies", f.national, "dataset=outpatient&source=provider", of("RCF", refused+"1"), http.StatusForbidden, ingest.ReasonProviderCopy,
			[]string{"submits national copies only"}},
	} {
		code, _, raw := f.postAs(t, tc.client, tc.query, ndjson, tc.body)
		if code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, raw, tc.code)
		}
		var answer struct{ Error string }
		if err := json.Unmarshal([]byte(raw), &answer); err != nil {
			t.Fatalf("%s: answer %s: %v", tc.name, raw, err)
		}
		for _, w := range tc.text {
			if !strings.Contains(answer.Error, w) {
				t.Errorf("%s: answer %q does not say %s", tc.name, answer.Error, w)
			}
		}
		if got := refusalsIn(t, f.admin, tc.reason, 1); len(got) == 0 || got[len(got)-1].Action != "POST /v1/submissions" || got[len(got)-1].Detail != answer.Error {
			t.Errorf("%s: no refusal %s on the audit trail: %+v", tc.name, tc.reason, got)
		}
	}
	// Anonymous over gRPC too.
	stream, err := f.grpcClient(t, nil).SubmitRecords(t.Context())
	if err == nil {
		_ = stream.Send(&dmicv1.SubmitRecordsRequest{Dataset: dmicv1.Dataset_DATASET_OUTPATIENT, JsonRecords: []string{of("RCF", refused+"3")}})
		_, err = stream.CloseAndRecv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous gRPC submission: %v, want Unauthenticated", err)
	}
	// RCF over gRPC, with an RP4 record.
	stream, err = f.grpcClient(t, f.pki.Client(identity.Provider, "RCF", "RCF EPR")).SubmitRecords(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&dmicv1.SubmitRecordsRequest{Dataset: dmicv1.Dataset_DATASET_OUTPATIENT, JsonRecords: []string{of("RCF", "BRCF9"), of("RP4", refused+"4")}})
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `line 2 ("RP4")`) {
		t.Errorf("RCF's gRPC submission of an RP4 record: %v, want PermissionDenied naming line 2", err)
	}
	if got := refusalsIn(t, f.admin, ingest.ReasonOtherProviders, 2); len(got) != 2 || got[1].Caller == nil || got[1].Caller.Org != "RCF" || got[1].Protocol != "grpc" {
		t.Errorf("refusals of other providers' records on the audit trail: %+v, want HTTP's and gRPC's, RCF's", got)
	}
	if got := topicSize(t, f.admin, topics.Raw) + topicSize(t, f.admin, topics.Submissions); got != 0 {
		t.Fatalf("%d messages stored by refused submissions", got)
	}

	// What may be sent is stored: RCF's own records and its site's, and the
	// national exchange's copies (of any provider) as national.
	code, own, raw := f.postAs(t, rcf, "dataset=outpatient", ndjson, of("RCF", "BRCF1")+"\n"+of("RCF01", "BRCF2")+"\n"+of("", "BRCF3")+"\n")
	if code != http.StatusOK || own.Accepted != 3 {
		t.Fatalf("RCF's own records: %d %s", code, raw)
	}
	code, national, raw := f.postAs(t, f.national, "dataset=outpatient", ndjson, of("RCF", "BRCF1")+"\n"+of("RP4", "BRP41")+"\n")
	if code != http.StatusOK || national.Accepted != 2 {
		t.Fatalf("the national exchange's copies: %d %s", code, raw)
	}
	for _, m := range drain(t, f.admin, topics.Raw) {
		h, err := envelope.ParseHeaders(kafkapipe.FromKafkaHeaders(m.Headers))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][2]string{own.SubmissionId: {"RCF", "provider"}, national.SubmissionId: {"X26", "national"}}[h.SubmissionID]
		if h.Submitter != want[0] || envelope.SourceName(h.Source) != want[1] {
			t.Errorf("raw record of %s: submitter %s, source %s; want %s", h.SubmissionID, h.Submitter, envelope.SourceName(h.Source), want)
		}
	}
	storedOnly(t, f.admin, []string{own.SubmissionId, national.SubmissionId}, refused)
	var receipts int
	for _, m := range drain(t, f.admin, topics.Submissions) {
		r := &validationv1.SubmissionReceipt{}
		if err := proto.Unmarshal(m.Value, r); err != nil {
			t.Fatal(err)
		}
		receipts++
		if r.GetSubmissionId() == national.SubmissionId && (r.GetSubmitterOrgCode() != "X26" || r.GetSource() != dmicv1.Source_SOURCE_NATIONAL) {
			t.Errorf("national receipt %v, want X26's national copy", r)
		}
	}
	if receipts != 4 {
		t.Errorf("%d receipts, want the start and end of the two accepted submissions", receipts)
	}
}
