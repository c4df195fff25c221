package assign_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/assign"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

func newStage(t testing.TB) *assign.Stage {
	t.Helper()
	ref, err := refdata.LoadDir("../../reference/sample")
	if err != nil {
		t.Fatalf("load reference sample: %v", err)
	}
	return assign.New(cam.NewAssigner(ref))
}

func deidentified(practice string) *dmicv1.DeidentifiedRecord {
	return &dmicv1.DeidentifiedRecord{
		Header:   &dmicv1.EnvelopeHeader{RecordKey: "RJ7|apc|A1", Dataset: dmicv1.Dataset_DATASET_APC, SubmissionId: "sub-1", Version: 77},
		MatchKey: "apc|RJ7|A1",
		Activity: &dmicv1.DeidentifiedActivity{
			CdsUniqueIdentifier:        "A1",
			ProviderCode:               "ZZZ99", // not a trust, so no host rule
			AdministrativeCategoryCode: "01",
			ActivityDate:               "2026-01-05",
			PseudoNhsNumber:            "pseudo",
			Demographics:               &dmicv1.Demographics{GeneralMedicalPracticeCode: practice},
			Residence:                  &dmicv1.Residence{},
		},
		Warnings: []*dmicv1.Failure{{RuleId: "TIME-001"}},
	}
}

func TestProcess(t *testing.T) {
	tests := []struct {
		name     string
		practice string
		want     *dmicv1.Assignment
	}{
		// CAM 2025/26 (the activity date is 2026-01-05), step B: no
		// charging category is recorded, so B-4 (guidance p.34) decides.
		{"practice in the sample", "H85030", &dmicv1.Assignment{CommissionerCode: "36L", AssignmentMethod: "Sub-ICB (Practice Mapped)",
			CommissionerType: cam.TypeSubICB, RuleId: "CAM-B-4", CamVersion: "2025/26", Step: "B-4", ReasonCode: "36L_B_4_1",
			ServiceCategory: "12", CamDate: "2026-01-05"}},
		{"nothing known", "", &dmicv1.Assignment{CommissionerCode: "", AssignmentMethod: "Not Assigned",
			CommissionerType: cam.TypeUnknown, RuleId: "CAM-B-4", CamVersion: "2025/26", Step: "B-4", ReasonCode: "X",
			Reason: "Unable to assign Commissioner", CamDate: "2026-01-05"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := deidentified(tt.practice)
			v, err := proto.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			key := []byte("apc|RJ7|A1")
			outs, err := newStage(t).Process(context.Background(), pipeline.Message{Topic: topics.Deidentified, Key: key, Value: v})
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if len(outs) != 1 {
				t.Fatalf("got %d outputs, want 1", len(outs))
			}
			if outs[0].Topic != topics.Assigned || string(outs[0].Key) != string(key) {
				t.Errorf("topic, key = %q, %q; want %q, %q", outs[0].Topic, outs[0].Key, topics.Assigned, key)
			}
			var got dmicv1.DeidentifiedRecord
			if err := proto.Unmarshal(outs[0].Value, &got); err != nil {
				t.Fatal(err)
			}
			// The trail, reason text and vintages are checked in package cam.
			a := got.GetAssignment()
			a.Trail, a.ReferenceVintages = nil, nil
			if tt.want.Reason == "" {
				a.Reason = ""
			}
			if !proto.Equal(a, tt.want) {
				t.Errorf("assignment = %v, want %v", got.GetAssignment(), tt.want)
			}
			// Everything else passes through unchanged.
			got.Assignment = nil
			if !proto.Equal(&got, in) {
				t.Errorf("record changed beyond its assignment:\n got %v\nwant %v", &got, in)
			}
		})
	}
}

// The stage appends the assignment to the bytes it received; a record that
// already carries one (a replay of an assigned record) gets the new one in
// its place, never the two merged.
func TestProcessReplacesAnAssignment(t *testing.T) {
	stage := newStage(t)
	fresh := deidentified("H85030")
	old := deidentified("H85030")
	old.Assignment = &dmicv1.Assignment{CommissionerCode: "X98", Step: "old", ReferenceVintages: []string{"old"},
		Trail: []*dmicv1.CamDecision{{Step: "old", Answer: "Yes"}}}
	var got [2]dmicv1.DeidentifiedRecord
	for i, in := range []*dmicv1.DeidentifiedRecord{fresh, old} {
		v, err := proto.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		outs, err := stage.Process(context.Background(), pipeline.Message{Topic: topics.Deidentified, Key: []byte("k"), Value: v})
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(outs[0].Value, &got[i]); err != nil {
			t.Fatal(err)
		}
	}
	// The trail is not sent (explain derives it again): an old one is
	// dropped with the rest of the old assignment.
	if got[0].GetAssignment().GetReasonCode() != "36L_B_4_1" || len(got[1].GetAssignment().GetTrail()) != 0 {
		t.Fatalf("assignment = %v", got[0].GetAssignment())
	}
	if !proto.Equal(&got[0], &got[1]) {
		t.Errorf("a record assigned before is not assigned afresh:\n got %v\nwant %v", got[1].GetAssignment(), got[0].GetAssignment())
	}
}

func TestProcessRejectsGarbage(t *testing.T) {
	m := pipeline.Message{Topic: topics.Deidentified, Key: []byte("k"), Value: []byte{0x0a, 0x64, 0x01}}
	outs, err := newStage(t).Process(context.Background(), m)
	if len(outs) != 0 {
		t.Errorf("got %d outputs, want none", len(outs))
	}
	var rej *pipeline.Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("error = %v, want *pipeline.Rejection", err)
	}
	if len(rej.Failures) != 1 || rej.Failures[0].GetRuleId() != "STAGE-DECODE" {
		t.Errorf("failures = %v, want one STAGE-DECODE", rej.Failures)
	}
}
