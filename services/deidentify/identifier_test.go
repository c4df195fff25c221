package deidentify_test

import (
	"context"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// A record carrying its patient's identifier in a kept field (domain brief
// section 3: the CDS UNIQUE IDENTIFIER must not contain the NHS number or
// local ID) is dead-lettered as DEID-002, naming the field. When the record
// id itself is the carrier, the dead letter (which reaches the rejections
// table and the log) names the record by its source position only: no record
// id, no record key.
func TestProcessRefusesAnIdentifierInAKeptField(t *testing.T) {
	for _, tt := range []struct {
		field  string
		mutate func(r *dmicv1.CommissioningRecord)
		keepID bool
	}{
		{"cds_unique_identifier", func(r *dmicv1.CommissioningRecord) { r.CdsUniqueIdentifier = "BRJ7" + nhsNumber }, false},
		{"hospital_provider_spell_number", func(r *dmicv1.CommissioningRecord) { r.GetApc().HospitalProviderSpellNumber = localID }, true},
	} {
		in := validated(dmicv1.Dataset_DATASET_APC)
		tt.mutate(in.Record)
		if !tt.keepID {
			in.Header.RecordKey = "RJ7|apc|" + in.Record.CdsUniqueIdentifier
		}
		outs, err := newStage(t).Process(context.Background(), message(t, in))
		if len(outs) != 0 {
			t.Errorf("%s: %d outputs, want none", tt.field, len(outs))
		}
		rej := rejection(t, err)
		if f := rej.Failures[0]; f.GetRuleId() != "DEID-002" || f.GetField() != tt.field {
			t.Errorf("failure %s on %q, want DEID-002 on %s", f.GetRuleId(), f.GetField(), tt.field)
		}
		if tt.keepID && (rej.RecordID != uid || rej.Header.GetRecordKey() == "") {
			t.Errorf("%s: record id %q key %q; want the record named as usual", tt.field, rej.RecordID, rej.Header.GetRecordKey())
		}
		if !tt.keepID && (rej.RecordID != "" || rej.Header.GetRecordKey() != "" || rej.Header.GetSubmissionId() != "sub-42") {
			t.Errorf("%s: record id %q key %q submission %q; want no id, no key, the submission kept",
				tt.field, rej.RecordID, rej.Header.GetRecordKey(), rej.Header.GetSubmissionId())
		}
		if in.Header.GetRecordKey() == "" {
			t.Error("the stage changed its input's header")
		}
		for _, id := range []string{nhsNumber, localID, birthDate, postcode} {
			if strings.Contains(rej.Error(), id) || strings.Contains(rej.RecordID, id) || strings.Contains(rej.Header.GetRecordKey(), id) {
				t.Errorf("%s: rejection holds identifier %q", tt.field, id)
			}
		}
	}
}
