package validate_test

import (
	"context"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
)

// A CDS unique identifier holding the patient's NHS number or local id is
// refused (CDS-004; domain brief section 3, "Submission protocol": it must
// not contain the NHS number or local ID). The verdict and the dead letter
// reach the outcome topic, ClickHouse and the log, so neither carries the
// record id or a key made from it: the record is named by submission and
// line.
func TestProcessRecordIDHoldingAnIdentifier(t *testing.T) {
	for _, id := range []string{"BRJ7" + goodNHS, "BRJ7-" + lpi} {
		outs, err := newStage().Process(context.Background(), message(apcRecord(`"cds_unique_identifier":"`+id+`"`), rawHeaders()))
		if len(outs) != 0 {
			t.Errorf("%d outputs with a rejection, want none", len(outs))
		}
		rej := rejection(t, err)
		if !hasRule(rej.Failures, "CDS-004", "cds_unique_identifier", dmicv1.Severity_SEVERITY_ERROR) {
			t.Errorf("failures %v, want CDS-004 error", rej.Failures)
		}
		assertNoIdentifiers(t, rej)
		v := verdictOf(t, rej.Also)
		if v.Outcome != validationv1.Outcome_OUTCOME_REJECTED || v.Header.GetLineNumber() != 7 || v.Header.GetSubmissionId() != "sub-42" {
			t.Errorf("verdict %v, want rejected, submission sub-42 line 7", v)
		}
		texts := []string{rej.RecordID, rej.Header.GetRecordKey(), v.RecordId, v.Header.GetRecordKey(), string(rej.Also[0].Key)}
		for _, s := range texts {
			if strings.Contains(s, goodNHS) || strings.Contains(s, lpi) {
				t.Errorf("rejection or verdict names the record by its identifier-bearing id (%q)", s)
			}
		}
	}
}
