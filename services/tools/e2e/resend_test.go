package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
	"github.com/dmic-nhs/dmic/services/load"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

const (
	// abandonAfter is ingest's abandon time in the report test.
	abandonAfter = 3 * time.Second
	// bigRecords is the size of the file whose submission is interrupted:
	// storing it takes ingest over a second, so a kill lands mid-way.
	bigRecords = 30000
	bigKey     = "e2e-apc-big.ndjson"
)

// bigFile writes an apc file of bigRecords records of the report test's
// provider, about 5% of them bad, and returns its path and content.
func bigFile(t *testing.T) (string, []byte) {
	t.Helper()
	ref, err := refdata.LoadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	items, err := synth.Generate(synth.Config{Seed: seed + 400, Records: bigRecords, BadShare: 0.05, NationalShare: -1,
		NationalOnlyShare: -1, RevisionShare: -1, DeleteShare: -1, Datasets: []dmicv1.Dataset{dmicv1.Dataset_DATASET_APC},
		Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: ref.TrustCodes()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	for _, it := range items {
		if it.Source == dmicv1.Source_SOURCE_PROVIDER {
			file.Write(it.JSON)
			file.WriteByte('\n')
		}
	}
	path := filepath.Join(t.TempDir(), "big.ndjson")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, file.Bytes()
}

// rawSize is how many messages dmic.raw holds. A failed look (the embedded
// broker drops a connection now and then under the test's rapid polling) is
// tried again, for a while.
func rawSize(ctx context.Context, t *testing.T, c kafkaconn.Cluster) int64 {
	t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var n int64
		if n, err = lookRawSize(ctx, c); err == nil {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("size of %s: %v", topics.Raw, err)
	return 0
}

func lookRawSize(ctx context.Context, c kafkaconn.Cluster) (int64, error) {
	client := c.Client(5 * time.Second)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topics.Raw}})
	if err != nil {
		return 0, err
	}
	if len(meta.Topics) != 1 {
		return 0, fmt.Errorf("metadata names %d topics", len(meta.Topics))
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topics.Raw: reqs}})
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range offs.Topics[topics.Raw] {
		if p.Error != nil {
			return 0, p.Error
		}
		n += p.LastOffset
	}
	return n, nil
}

func postWithKey(ctx context.Context, client *http.Client, url, key string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/submissions?dataset=apc&results=errors", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// interruptedAndResent is the fault-injection run of issue 10 on the running
// system: ingest is killed (-9) while it stores a large file sent with an
// idempotency key. The submission is reported abandoned and counts nowhere;
// the file sent again with the key is the same submission, whose report is
// the offline checker's and complete; dq_summary, dq_rule_summary and the
// rejections then hold each record of both files once. first is the report
// of the file submitted before, by the same provider.
func interruptedAndResent(ctx context.Context, t *testing.T, st *devstack.Stack, bin string, first *validationv1.SubmissionReport) {
	op := operator(t, st)
	db := database + "_report"
	analyst, err := st.ClickHouseConfig(chaccess.Analyst)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := analyst.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path, file := bigFile(t)
	client := providerClient(t, st)

	// 1. Kill ingest once it has stored some of the file, not all.
	before := rawSize(ctx, t, op)
	answered := make(chan string, 1)
	go func() {
		code, body, err := postWithKey(ctx, client, st.IngestURL(), bigKey, file)
		answered <- fmt.Sprintf("%d %s %v", code, body, err)
	}()
	deadline := time.Now().Add(time.Minute)
	for rawSize(ctx, t, op) == before {
		if time.Now().After(deadline) {
			t.Fatalf("ingest stored nothing of the large file: %s", <-answered)
		}
		time.Sleep(5 * time.Millisecond)
	}
	killHard(t, st, "ingest")
	if a := <-answered; a[:4] == "200 " {
		t.Fatalf("the large file was stored before ingest was killed (make it larger): %.200s", a)
	}
	stored := rawSize(ctx, t, op) - before
	t.Logf("ingest killed after storing %d of %d records", stored, bigRecords)

	// 2. The restarted ingest abandons the attempt: the report says so, and
	// dq_summary counts the first file alone.
	var interrupted string
	var abandoned *validationv1.SubmissionReport
	deadline = time.Now().Add(2 * time.Minute)
	for abandoned.GetState() != validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED {
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted submission %q is not reported abandoned: %v", interrupted, abandoned)
		}
		time.Sleep(250 * time.Millisecond)
		if interrupted == "" {
			_ = conn.QueryRow(ctx, "SELECT submission_id FROM "+db+".submission_status WHERE idempotency_key = ?", bigKey).Scan(&interrupted)
			continue
		}
		abandoned = getReport(t, client, st.IngestURL()+"/v1/submissions/"+interrupted)
	}
	if abandoned.Complete || abandoned.Validated >= bigRecords || abandoned.IdempotencyKey != bigKey {
		t.Errorf("abandoned submission's report = %d validated of %d, complete %v, key %q", abandoned.Validated, bigRecords, abandoned.Complete, abandoned.IdempotencyKey)
	}
	if got := dqTotals(ctx, t, conn, db); got != totalsOf(first) {
		t.Errorf("dq_summary with an abandoned submission = %+v, want the first file's alone %+v", got, totalsOf(first))
	}

	// 3. The file again, with its key: the same submission, second attempt.
	code, body, err := postWithKey(ctx, client, st.IngestURL(), bigKey, file)
	resent := &dmicv1.SubmitRecordsResponse{}
	if err != nil || code != http.StatusOK || protojson.Unmarshal(body, resent) != nil {
		t.Fatalf("resend: %d %.300s %v", code, body, err)
	}
	if resent.SubmissionId != interrupted || resent.Attempt != 2 {
		t.Errorf("resend is submission %s attempt %d, want %s attempt 2", resent.SubmissionId, resent.Attempt, interrupted)
	}
	var online *validationv1.SubmissionReport
	deadline = time.Now().Add(3 * time.Minute)
	for online = getReport(t, client, st.IngestURL()+"/v1/submissions/"+interrupted+"?limit=10000"); !online.GetComplete() ||
		online.GetState() != validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED; online = getReport(t, client, st.IngestURL()+"/v1/submissions/"+interrupted+"?limit=10000") {
		if time.Now().After(deadline) {
			t.Fatalf("the resent submission's report is not complete: %d of %d validated, state %v", online.GetValidated(), online.GetRecords(), online.GetState())
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitIdle(ctx, t, op, "dmic-validate", []string{topics.Raw})
	waitIdle(ctx, t, op, "dmic-load", load.Inputs)
	online = getReport(t, client, st.IngestURL()+"/v1/submissions/"+interrupted+"?limit=10000")

	// 4. Its report is the file's, as dmic validate gives it.
	cmd := exec.Command(filepath.Join(bin, "dmic"), "validate", "--dataset", "apc", "--submitter", sampleProvider(t), "--reference-dir", refDir, "--limit", "10000", "-o", "json", path)
	out, _ := cmd.Output()
	offline := &validationv1.SubmissionReport{}
	if err := protojson.Unmarshal(out, offline); err != nil {
		t.Fatalf("dmic validate: %v\n%.300s", err, out)
	}
	if online.Attempts != 2 || online.Records != bigRecords || online.Rejected == 0 {
		t.Errorf("resent report: %d attempts, %d records, %d rejected; want 2, %d and some", online.Attempts, online.Records, online.Rejected, bigRecords)
	}
	if int64(len(online.FailingRecords)) != online.Warned+online.Rejected {
		t.Fatalf("the report lists %d of %d failing records", len(online.FailingRecords), online.Warned+online.Rejected)
	}
	big := proto.Clone(online).(*validationv1.SubmissionReport)
	online.SubmissionId, online.ReceivedTime, online.State, online.Attempts, online.IdempotencyKey = "", nil, 0, 0, ""
	// How much of the file was read is in the answer, not the platform's report.
	if rd := offline.GetRead(); rd.GetRecords() != bigRecords || rd.GetStoppedAtLine() != 0 {
		t.Errorf("offline read summary %v, want %d records read to the end", rd, bigRecords)
	}
	offline.Read = nil
	if !proto.Equal(online, offline) {
		t.Errorf("resent submission's report differs from dmic validate's:\nonline:  %.2000s\noffline: %.2000s", prototext.Format(online), prototext.Format(offline))
	}

	// 5. dq_summary, dq_rule_summary and rejections hold each record once.
	want := totalsOf(first)
	want.add(totalsOf(big))
	want.submissions = 2
	if got := dqTotals(ctx, t, conn, db); got != want {
		t.Errorf("dq_summary after the resend = %+v, want the two files once each %+v", got, want)
	}
	rules, err := chstore.DQRules(ctx, conn, db, chstore.DQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	gotRules, wantRules := map[string]int64{}, map[string]int64{}
	for _, r := range rules {
		gotRules[r.RuleID+"|"+r.Field+"|"+r.Severity] += int64(r.Records)
	}
	for _, rep := range []*validationv1.SubmissionReport{first, big} {
		for _, rc := range rep.Rules {
			wantRules[rc.RuleId+"|"+rc.Field+"|"+dqreport.SeverityName(rc.Severity)] += rc.Records
		}
	}
	if fmt.Sprint(gotRules) != fmt.Sprint(wantRules) {
		t.Errorf("dq_rule_summary:\n got  %v\n want %v", gotRules, wantRules)
	}
	var rows, records uint64
	q := "SELECT count(), uniqExact(position) FROM " + db + ".rejections FINAL WHERE submission_id = ? AND stage IN ('ingest', 'validate')"
	if err := conn.QueryRow(ctx, q, interrupted).Scan(&rows, &records); err != nil {
		t.Fatal(err)
	}
	var wantRows uint64
	for _, fr := range big.FailingRecords {
		if fr.Outcome == validationv1.Outcome_OUTCOME_REJECTED {
			seen := map[string]bool{}
			for _, f := range fr.Failures {
				seen[f.RuleId+"|"+f.Field] = true
			}
			wantRows += uint64(len(seen))
		}
	}
	if records != uint64(big.Rejected) || rows != wantRows {
		t.Errorf("rejections of the resent submission: %d rows for %d records, want %d rows for its %d rejected records", rows, records, wantRows, big.Rejected)
	}
}

// totals are the counts of dq_summary over every row, and the most
// submissions a row counts (a submission of several providers' records is in
// several rows).
type totals struct{ records, accepted, warned, rejected, submissions int64 }

func (a *totals) add(b totals) {
	a.records += b.records
	a.accepted += b.accepted
	a.warned += b.warned
	a.rejected += b.rejected
	a.submissions = max(a.submissions, b.submissions)
}

func totalsOf(r *validationv1.SubmissionReport) totals {
	return totals{r.Records, r.Accepted, r.Warned, r.Rejected, 1}
}

func dqTotals(ctx context.Context, t *testing.T, conn driver.Conn, db string) totals {
	t.Helper()
	rows, err := chstore.DQSummary(ctx, conn, db, chstore.DQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got totals
	for _, r := range rows {
		got.add(totals{int64(r.Records), int64(r.Accepted), int64(r.Warned), int64(r.Rejected), int64(r.Submissions)})
	}
	return got
}

// waitIdle waits until group has consumed everything of inputs.
func waitIdle(ctx context.Context, t *testing.T, c kafkaconn.Cluster, group string, inputs []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		lag, err := kafkatopics.GroupLag(ctx, c, group, inputs...)
		if err == nil && lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has %d messages to do: %v", group, lag, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
