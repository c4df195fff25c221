package dqreport_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
)

func suiteCase(t *testing.T, name string) dqreporttest.Case {
	t.Helper()
	for _, c := range dqreporttest.Cases() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no suite case %q", name)
	return dqreporttest.Case{}
}

func TestWriteText(t *testing.T) {
	r := suiteCase(t, "accepted, warned, rejected and refused at the door").Build()
	var buf bytes.Buffer
	if err := dqreport.WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Submission: +sub-mixed$`),
		regexp.MustCompile(`(?m)^Dataset: +apc$`),
		regexp.MustCompile(`(?m)^Submitter: +RR8$`),
		regexp.MustCompile(`(?m)^Received: +2025-04-02T10:30:15Z$`),
		regexp.MustCompile(`(?m)^Records: +8, all validated$`),
		regexp.MustCompile(`(?m)^Specification: +apc-2025\.1, apc-2025\.2$`),
		regexp.MustCompile(`(?m)^Accepted: +2$`),
		regexp.MustCompile(`(?m)^Warned: +2 `),
		regexp.MustCompile(`(?m)^Rejected: +4 `),
		regexp.MustCompile(`(?m)^RULE +FIELD +SEVERITY +RECORDS$`),
		regexp.MustCompile(`(?m)^DEC-JSON +- +error +1$`),
		regexp.MustCompile(`(?m)^NHS-002 +nhs_number +error +2$`),
		regexp.MustCompile(`(?m)^W-GP-UNKNOWN +general_medical_practice_code +warning +3$`),
		regexp.MustCompile(`(?m)^Failing records:$`),
		// A record with several failures: the first on the record's line, the others below it.
		regexp.MustCompile(`(?m)^3 +BRR8000003 +rejected +NHS-002 +nhs_number +error +nhs_number breaks rule NHS-002\n +DOB-001 +person_birth_date +error +`),
		regexp.MustCompile(`(?m)^5 +- +rejected +DEC-JSON +- +error +the record breaks rule DEC-JSON$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("text report does not match %s", want)
		}
	}
	// The failing records are listed in line order.
	lines := regexp.MustCompile(`(?m)^([0-9]+) +(BRR8|-)`).FindAllStringSubmatch(out, -1)
	var got []string
	for _, l := range lines {
		got = append(got, l[1])
	}
	if strings.Join(got, ",") != "2,3,4,5,7,8" {
		t.Errorf("failing record lines = %v, want 2,3,4,5,7,8", got)
	}
}

func TestWriteTextLimitedAndOffline(t *testing.T) {
	r := suiteCase(t, "more failing records than the limit").Build()
	r.SubmissionId = ""
	var buf bytes.Buffer
	if err := dqreport.WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Submission: +\(offline check: nothing was submitted\)$`),
		regexp.MustCompile(`(?m)^First 5 of 27 failing records:$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("text report does not match %s:\n%s", want, out)
		}
	}
}

func TestWriteTextNothingBroken(t *testing.T) {
	var buf bytes.Buffer
	if err := dqreport.WriteText(&buf, suiteCase(t, "every record accepted").Build()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "No rule was broken.") || strings.Contains(buf.String(), "RULE") {
		t.Errorf("text report of a clean submission:\n%s", buf.String())
	}
}

// A message or id with line breaks or tabs stays in its cell.
func TestWriteTextKeepsCellsOnOneLine(t *testing.T) {
	r := &validationv1.SubmissionReport{
		Validated: 1, Rejected: 1,
		Rules: []*validationv1.RuleCount{{RuleId: "R\n1", Field: "f", Severity: dmicv1.Severity_SEVERITY_ERROR, Records: 1}},
		FailingRecords: []*validationv1.FailingRecord{{LineNumber: 1, RecordId: "A\tB", Outcome: validationv1.Outcome_OUTCOME_REJECTED,
			Failures: []*dmicv1.Failure{{RuleId: "R\n1", Field: "f", Severity: dmicv1.Severity_SEVERITY_ERROR, Message: "two\nlines"}}}},
	}
	var buf bytes.Buffer
	if err := dqreport.WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^1 +A B +rejected +R 1 +f +error +two lines$`).MatchString(buf.String()) {
		t.Errorf("control characters not kept in their cells:\n%s", buf.String())
	}
}

func TestWriteJSON(t *testing.T) {
	r := suiteCase(t, "accepted, warned, rejected and refused at the door").Build()
	var a, b bytes.Buffer
	if err := dqreport.WriteJSON(&a, r); err != nil {
		t.Fatal(err)
	}
	if err := dqreport.WriteJSON(&b, proto.Clone(r).(*validationv1.SubmissionReport)); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("JSON differs between two writes of the same report")
	}
	out := a.String()
	for _, want := range []string{"{\n  \"submission_id\": \"sub-mixed\",\n", "\n  \"failing_records\": [\n", "\"rule_id\": \"NHS-002\"", "\"dataset\": \"DATASET_APC\"", "\"complete\": true"} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "}\n") {
		t.Errorf("JSON does not end with a newline")
	}
	back := &validationv1.SubmissionReport{}
	if err := protojson.Unmarshal(a.Bytes(), back); err != nil {
		t.Fatalf("JSON does not read back: %v", err)
	}
	if !proto.Equal(back, r) {
		t.Errorf("JSON reads back as a different report")
	}
	// Every field is present, also when zero.
	var empty bytes.Buffer
	if err := dqreport.WriteJSON(&empty, &validationv1.SubmissionReport{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(empty.String(), "\"rejected\": \"0\"") || !strings.Contains(empty.String(), "\"failing_records\": []") {
		t.Errorf("empty report JSON leaves fields out:\n%s", empty.String())
	}
}

// The text report says where a submission is, with its key and digest.
func TestWriteTextStates(t *testing.T) {
	for name, want := range map[string][]*regexp.Regexp{
		"an interrupted attempt and its resend count once": {
			regexp.MustCompile(`(?m)^State: +received \(sent 2 times: each resend replaced the results of the earlier attempts\)$`),
			regexp.MustCompile(`(?m)^Idempotency key: +RR8-apc-2025-04\.ndjson$`),
			regexp.MustCompile(`(?m)^Content SHA-256: +` + dqreporttest.Digest + `$`),
			regexp.MustCompile(`(?m)^Records: +3, all validated$`),
		},
		"an abandoned attempt is not complete": {
			regexp.MustCompile(`(?m)^State: +abandoned: it was not stored to the end and is not counted; send the same file again`),
			regexp.MustCompile(`(?m)^Records: +2 validated before the submission was abandoned$`),
		},
		"an attempt still being stored": {
			regexp.MustCompile(`(?m)^State: +receiving: ingest is still storing it$`),
			regexp.MustCompile(`(?m)^Records: +1, 1 validated so far: the report is not complete yet$`),
		},
		"the earlier of two submissions with one key is superseded": {
			regexp.MustCompile(`(?m)^State: +superseded by sub-superseded-second, sent later with the same idempotency key: not counted$`),
		},
		"every record accepted": {regexp.MustCompile(`(?m)^State: +received$`)},
	} {
		var buf bytes.Buffer
		if err := dqreport.WriteText(&buf, suiteCase(t, name).Build()); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !w.MatchString(buf.String()) {
				t.Errorf("%s: text report does not match %s:\n%s", name, w, buf.String())
			}
		}
	}
	// An offline check was not submitted: no state.
	r := suiteCase(t, "every record accepted").Build()
	r.SubmissionId, r.State, r.Attempts = "", 0, 0
	var buf bytes.Buffer
	if err := dqreport.WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "State:") {
		t.Errorf("offline report names a state:\n%s", buf.String())
	}
}
