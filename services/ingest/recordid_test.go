package ingest_test

import (
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/record/recordtest"
)

// TestAnswerNamesNoIdentifierAsRecordID: the answer to an upload lists each
// record read with its CDS unique identifier, except one that holds the
// record's own NHS number, local patient id or postcode (CDS-004, refused
// by validation next): that record is named by its line only, as the report
// names it. Found by the grader's end-to-end test (TestGraderDQ), where the
// answer repeated the NHS number the report hid.
func TestAnswerNamesNoIdentifierAsRecordID(t *testing.T) {
	f := newFixture(t)
	withPatient := func(uid, patient string) string {
		return strings.Replace(recordtest.Outpatient(uid), `"provider_code"`, patient+`,"provider_code"`, 1)
	}
	body := withPatient("BRXX9434765919", `"nhs_number":"9434765919","nhs_number_status_indicator_code":"01"`) + "\n" +
		withPatient("BRXXLPX7733219", `"local_patient_identifier":"lpx7733219"`) + "\n" +
		withPatient("BRXXHG11BW0001", `"postcode_of_usual_address":"HG1 1BW"`) + "\n" +
		withPatient("BRXX0000000001", `"nhs_number":"9434765919","nhs_number_status_indicator_code":"01"`) + "\n"
	code, resp, raw := f.post(t, "dataset=outpatient&results=all", ndjson, body)
	if code != 200 {
		t.Fatalf("post: %d %s", code, raw)
	}
	if len(resp.Results) != 4 {
		t.Fatalf("answer lists %d records, want 4: %s", len(resp.Results), raw)
	}
	for i, r := range resp.Results[:3] {
		if r.RecordId != "" || !r.Accepted || r.LineNumber != int64(i+1) {
			t.Errorf("line %d: listed as %v, want read, by line only", i+1, r)
		}
	}
	if r := resp.Results[3]; r.RecordId != "BRXX0000000001" {
		t.Errorf("line 4: record id %q, want BRXX0000000001 (it holds no identifier)", r.RecordId)
	}
	for _, v := range []string{"9434765919", "LPX7733219", "lpx7733219", "HG11BW"} {
		if strings.Contains(raw, v) {
			t.Errorf("the answer repeats %q", v)
		}
	}
}
