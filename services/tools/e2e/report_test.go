package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
	"github.com/dmic-nhs/dmic/services/tools/leakguard"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

// fault is one kind of deliberate mistake: the rule it must break, on which
// field, and how to make it in a good record.
type fault struct {
	rule, field string
	severity    dmicv1.Severity
	make        func(rec map[string]any, first map[string]any)
}

const (
	sevErr  = dmicv1.Severity_SEVERITY_ERROR
	sevWarn = dmicv1.Severity_SEVERITY_WARNING
)

func dayAfter(s any) string {
	t, _ := time.Parse(time.DateOnly, s.(string))
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

// faults covers rules of every family; each is made on faultCopies records.
var faults = []fault{
	{"NHS-002", "nhs_number", sevErr, func(r, _ map[string]any) {
		r["nhs_number"], r["nhs_number_status_indicator_code"] = "9434765918", "01"
	}},
	{"NHS-003", "nhs_number", sevErr, func(r, _ map[string]any) {
		r["nhs_number"], r["nhs_number_status_indicator_code"] = "1111111111", "01"
	}},
	{"DOB-002", "person_birth_date", sevErr, func(r, _ map[string]any) { r["person_birth_date"] = "1870-05-05" }},
	{"PC-001", "postcode_of_usual_address", sevErr, func(r, _ map[string]any) { r["postcode_of_usual_address"] = "SM1 A2B" }},
	{"REQ-001", "treatment_function_code", sevErr, func(r, _ map[string]any) { delete(r, "treatment_function_code") }},
	{"CODE-001", "admission_method_code", sevErr, func(r, _ map[string]any) { r["admission_method_code"] = "99" }},
	{"CODE-010", "patient_classification_code", sevErr, func(r, _ map[string]any) { r["patient_classification_code"] = "7" }},
	{"CLIN-001", "primary_diagnosis_icd", sevErr, func(r, _ map[string]any) { r["primary_diagnosis_icd"] = "I21.9" }},
	{"CLIN-003", "hrg_code", sevErr, func(r, _ map[string]any) { r["hrg_code"] = "H12A" }},
	{"DATE-003", "start_date_episode", sevErr, func(r, _ map[string]any) {
		r["start_date_episode"] = dayAfter(r["end_date_episode"])
	}},
	{"DUP-001", "cds_unique_identifier", sevErr, func(r, first map[string]any) {
		r["cds_unique_identifier"] = first["cds_unique_identifier"]
	}},
	{"ORG-006", "general_medical_practice_code", sevWarn, func(r, _ map[string]any) { r["general_medical_practice_code"] = "Y99999" }},
	{"CODE-003", "person_gender_code", sevWarn, func(r, _ map[string]any) { r["person_gender_code"] = "7" }},
	{"CLIN-004", "hrg_code", sevWarn, func(r, _ map[string]any) { r["hrg_code"] = "UZ01Z" }},
	// Near the record limit, the issue-10 case: a field of half a MiB goes
	// through ingest, is judged, and dead-lettered with an excerpt; nothing
	// stalls behind it.
	{"CLIN-003", "hrg_code", sevErr, func(r, _ map[string]any) {
		r["hrg_code"] = strings.Repeat("A", limits.MaxRecordBytes-4096)
	}},
	// Over it: refused at the door, by line.
	{record.RuleTooLong, "", sevErr, func(r, _ map[string]any) {
		r["hrg_code"] = strings.Repeat("A", limits.MaxRecordBytes)
	}},
}

const (
	faultCopies  = 3
	undecodable  = 2
	reportRecord = 200
)

// faultyFile builds an apc file: good generated records, faultCopies records
// per fault, and some lines that are not JSON. It returns the file and what
// its report must say.
func faultyFile(t *testing.T) ([]byte, map[string]int64, int64, int64, int64) {
	t.Helper()
	ref, err := refdata.LoadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	if ref.KnownPractice("Y99999") {
		t.Fatal("Y99999 must not be a practice of the reference data")
	}
	items, err := synth.Generate(synth.Config{Seed: seed + 300, Records: reportRecord, BadShare: -1, NationalShare: -1,
		NationalOnlyShare: -1, RevisionShare: -1, DeleteShare: -1, Datasets: []dmicv1.Dataset{dmicv1.Dataset_DATASET_APC},
		Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: ref.TrustCodes()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]map[string]any, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it.JSON, &recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(recs) < len(faults)*faultCopies+undecodable+10 {
		t.Fatalf("only %d records generated", len(recs))
	}
	byRule := map[string]int64{}
	var rejected, warned int64
	next := 5 // the first records stay good: DUP-001 repeats the first one's id
	for _, f := range faults {
		for range faultCopies {
			f.make(recs[next], recs[0])
			next++
			byRule[f.rule+"|"+f.field+"|"+f.severity.String()]++
			if f.severity == sevErr {
				rejected++
			} else {
				warned++
			}
		}
	}
	var file bytes.Buffer
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if i >= next && i < next+undecodable {
			b = b[:len(b)/2] // cut mid-record: not JSON
		}
		file.Write(b)
		file.WriteByte('\n')
	}
	byRule["DEC-JSON||"+sevErr.String()] += undecodable
	rejected += undecodable
	accepted := int64(len(recs)) - rejected - warned
	return file.Bytes(), byRule, accepted, warned, rejected
}

// TestSubmissionReportMatchesFaultsAndOfflineChecker is the acceptance test
// of data-quality feedback: a file with a known mix of faults, submitted to
// the running system, gets a report whose counts by rule are the faults
// injected; `dmic validate` on the same file prints the same report.
func TestSubmissionReportMatchesFaultsAndOfflineChecker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the whole stack")
	}
	bin := buildBinaries(t)
	ch := chservertest.Server(t)
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	// Ingest abandons an attempt that never ended after 3 s (not 15 min), so
	// that the test sees an interrupted submission abandoned.
	t.Setenv("DMIC_SUBMISSION_ABANDON_AFTER", abandonAfter.String())
	st, err := devstack.Start(ctx, devstack.Config{BinDir: bin, VarDir: t.TempDir(), ReferenceDir: refDir,
		ClickHouseAddr: ch.Addr, ClickHouseSecrets: ch.Secrets, Database: database + "_report", PortBase: freePortBase(t), Out: logs})
	if err != nil {
		t.Fatalf("start stack: %v\nlogs:\n%s", err, logs.String())
	}
	defer st.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("service logs (tail):\n%s", tail(logs.String(), 100))
		}
	}()

	file, byRule, accepted, warned, rejected := faultyFile(t)
	path := filepath.Join(t.TempDir(), "episodes.ndjson")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}

	// Online: submit, then poll the report until every record is judged.
	// The file is one provider's, sent with its certificate.
	client := providerClient(t, st)
	resp, err := client.Post(st.IngestURL()+"/v1/submissions?dataset=apc", "application/x-ndjson", bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	var online *validationv1.SubmissionReport
	deadline := time.Now().Add(2 * time.Minute)
	for {
		online = getReport(t, client, st.IngestURL()+loc+"?limit=1000")
		if online.GetComplete() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report not complete after 2 minutes: %v", online)
		}
		time.Sleep(500 * time.Millisecond)
	}

	got := map[string]int64{}
	for _, rc := range online.Rules {
		got[rc.RuleId+"|"+rc.Field+"|"+rc.Severity.String()] = rc.Records
	}
	if fmt.Sprint(got) != fmt.Sprint(byRule) {
		t.Errorf("report counts by rule:\n got  %v\n want %v", got, byRule)
	}
	if online.Accepted != accepted || online.Warned != warned || online.Rejected != rejected {
		t.Errorf("report accepted/warned/rejected = %d/%d/%d, want %d/%d/%d",
			online.Accepted, online.Warned, online.Rejected, accepted, warned, rejected)
	}
	if n := int64(len(online.FailingRecords)); n != warned+rejected {
		t.Errorf("report lists %d failing records, want %d", n, warned+rejected)
	}
	if !slices.IsSortedFunc(online.FailingRecords, func(a, b *validationv1.FailingRecord) int {
		return int(a.LineNumber - b.LineNumber)
	}) {
		t.Error("failing records are not in line order")
	}

	// Offline: the same file through `dmic validate` gives the same report,
	// checked as the provider whose certificate sent it.
	cmd := exec.Command(filepath.Join(bin, "dmic"), "validate", "--dataset", "apc", "--submitter", sampleProvider(t), "--reference-dir", refDir,
		"--limit", "1000", "-o", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("dmic validate exit %d (want 1: some records rejected): %v\n%s", code, err, stderr.String())
	}
	offline := &validationv1.SubmissionReport{}
	if err := protojson.Unmarshal(out, offline); err != nil {
		t.Fatalf("dmic validate output: %v\n%s", err, out)
	}
	// Only the platform knows the submission id, when it received the file,
	// and where the submission is.
	first := proto.Clone(online).(*validationv1.SubmissionReport)
	if online.State != validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED || online.Attempts != 1 {
		t.Errorf("report state %v after %d attempts, want received after 1", online.State, online.Attempts)
	}
	online.SubmissionId, online.ReceivedTime, online.State, online.Attempts = "", nil, 0, 0
	// How much of the file was read is in the submission's answer, not in the
	// platform's report.
	if rd := offline.GetRead(); rd.GetRecords() != online.GetRecords() || rd.GetStoppedAtLine() != 0 {
		t.Errorf("offline read summary %v, want %d records read to the end", rd, online.GetRecords())
	}
	offline.Read = nil
	if !proto.Equal(online, offline) {
		t.Errorf("online and offline reports differ:\nonline:  %v\noffline: %v", online, offline)
	}

	// Nothing in the report or the outcome tables repeats a value of the file.
	ids := leakguard.NewIdentifiers([]leakguard.Patient{{NHSNumber: "9434765918", BirthDate: "1870-05-05", Postcode: "SM1 A2B"},
		{NHSNumber: "1111111111"}}, "2000-01-01")
	noLeaks(t, ids.ScanText("online report", protojson.Format(online)))
	noLeaks(t, ids.ScanText("offline report", string(out)))
	text, _ := exec.Command(filepath.Join(bin, "dmic"), "validate", "--dataset", "apc", path).Output()
	if !strings.Contains(string(text), "DUP-001") {
		t.Errorf("text report does not name DUP-001:\n%s", text)
	}
	noLeaks(t, ids.ScanText("offline text report", string(text)))

	interruptedAndResent(ctx, t, st, bin, first)
}

// sampleProvider is the provider faultyFile's and bigFile's records are
// from: the submitter of their submissions.
func sampleProvider(t *testing.T) string {
	t.Helper()
	ref, err := refdata.LoadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	return ref.TrustCodes()[0]
}

// providerClient is an HTTP client of ingest with the certificate of
// sampleProvider.
func providerClient(t *testing.T, st *devstack.Stack) *http.Client {
	t.Helper()
	c, err := st.PKI.HTTPClient(devpki.ProviderFile(sampleProvider(t)), 2)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func getReport(t *testing.T, client *http.Client, url string) *validationv1.SubmissionReport {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rep := &validationv1.SubmissionReport{}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := protojson.Unmarshal(b, rep); err != nil {
			t.Fatalf("report: %v\n%s", err, b)
		}
	case http.StatusNotFound: // not loaded yet
	default:
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return rep
}
