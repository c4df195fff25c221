package deidentify_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

const (
	nhsNumber = "9434765919"
	birthDate = "1970-03-14"
	postcode  = "SM1 1AA" // in the sample ONSPD: sub-ICB E38000245
	localID   = "LPI0000001"
	uid       = "BRJ700000000000000000001"
)

func newStage(t *testing.T) *deidentify.Stage {
	t.Helper()
	ref, err := refdata.LoadDir("../../reference/sample")
	if err != nil {
		t.Fatalf("load reference sample: %v", err)
	}
	ring, err := didi.NewKeyRing(map[string]didi.Key{
		didi.DomainAnalytics:      {Version: "t1", Secret: bytes.Repeat([]byte("k"), 32)},
		didi.DomainNationalReturn: {Version: "n1", Secret: bytes.Repeat([]byte("n"), 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return deidentify.New(didi.NewDeidentifier(ring, ref))
}

func header(ds dmicv1.Dataset) *dmicv1.EnvelopeHeader {
	return &dmicv1.EnvelopeHeader{
		RecordKey:        "RJ7|apc|" + uid,
		Dataset:          ds,
		Source:           dmicv1.Source_SOURCE_PROVIDER,
		SubmitterOrgCode: "RJ7",
		SubmissionId:     "sub-42",
		SpecVersion:      "dmic-spec-2026.1",
		RawPartition:     3,
		RawOffset:        99,
		LineNumber:       5,
		Version:          12345,
	}
}

func validated(ds dmicv1.Dataset) *dmicv1.ValidatedRecord {
	return &dmicv1.ValidatedRecord{
		Header: header(ds),
		Record: &dmicv1.CommissioningRecord{
			CdsUniqueIdentifier: uid,
			UpdateType:          dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
			ProviderCode:        "RJ7",
			Patient: &dmicv1.Patient{
				NhsNumber:                    nhsNumber,
				NhsNumberStatusIndicatorCode: "01",
				LocalPatientIdentifier:       localID,
				PersonBirthDate:              birthDate,
				PostcodeOfUsualAddress:       postcode,
			},
			Demographics: &dmicv1.Demographics{PersonGenderCode: "2", GeneralMedicalPracticeCode: "H85030"},
			Activity: &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{
				CdsType: "130", AdmissionMethodCode: "21", StartDateEpisode: "2026-01-02", EndDateEpisode: "2026-01-05",
				TreatmentFunctionCode: "300", HrgCode: "EB10A",
			}},
		},
		Warnings: []*dmicv1.Failure{{RuleId: "ORG-002", Field: "general_medical_practice_code", Severity: dmicv1.Severity_SEVERITY_WARNING}},
	}
}

func message(t *testing.T, m proto.Message) pipeline.Message {
	t.Helper()
	v, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Message{Topic: topics.Validated, Key: []byte("RJ7|apc|" + uid), Value: v}
}

func TestProcessDeidentifies(t *testing.T) {
	in := validated(dmicv1.Dataset_DATASET_APC)
	outs, err := newStage(t).Process(context.Background(), message(t, in))
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if len(outs) != 1 {
		t.Fatalf("got %d outputs, want 1", len(outs))
	}
	o := outs[0]
	if o.Topic != topics.Deidentified {
		t.Errorf("topic = %q, want %q", o.Topic, topics.Deidentified)
	}
	wantKey := didi.MatchKey(dmicv1.Dataset_DATASET_APC, "RJ7", uid)
	if wantKey != "apc|RJ7|"+uid {
		t.Fatalf("MatchKey = %q: unexpected form", wantKey)
	}
	if string(o.Key) != wantKey {
		t.Errorf("key = %q, want %q", o.Key, wantKey)
	}

	// Neither form of any identifier may be anywhere in the bytes that leave.
	for _, id := range []string{nhsNumber, "943 476 5919", birthDate, "19700314", postcode, "SM11AA", localID} {
		if bytes.Contains(o.Value, []byte(id)) {
			t.Errorf("output bytes contain identifier %q", id)
		}
	}

	var dr dmicv1.DeidentifiedRecord
	if err := proto.Unmarshal(o.Value, &dr); err != nil {
		t.Fatalf("output is not a DeidentifiedRecord: %v", err)
	}
	if !proto.Equal(dr.GetHeader(), in.GetHeader()) {
		t.Errorf("header = %v, want %v", dr.GetHeader(), in.GetHeader())
	}
	if dr.GetMatchKey() != wantKey {
		t.Errorf("match key = %q, want %q", dr.GetMatchKey(), wantKey)
	}
	if len(dr.GetWarnings()) != 1 || dr.GetWarnings()[0].GetRuleId() != "ORG-002" {
		t.Errorf("warnings = %v, want the ORG-002 warning carried", dr.GetWarnings())
	}
	act := dr.GetActivity()
	if act.GetPseudoNhsNumber() == "" || act.GetPseudonymKeyVersion() != "t1" || act.GetPseudonymDomain() != didi.DomainAnalytics {
		t.Errorf("pseudonym %q, key version %q, domain %q; want an analytics pseudonym made with key t1", act.GetPseudoNhsNumber(), act.GetPseudonymKeyVersion(), act.GetPseudonymDomain())
	}
	// The national-return pseudonym travels beside it, for reconcile.
	if dp := act.GetDomainPseudonyms(); len(dp) != 1 || dp[0].GetDomain() != didi.DomainNationalReturn || dp[0].GetKeyVersion() != "n1" ||
		len(dp[0].GetPseudonym()) != 64 || dp[0].GetPseudonym() == act.GetPseudoNhsNumber() {
		t.Errorf("domain pseudonyms = %v, want one national-return pseudonym under n1, unlike the analytics one", dp)
	}
	if act.GetAgeAtActivityYears() != 55 || act.GetActivityDate() != "2026-01-05" {
		t.Errorf("age %d at %q, want 55 at 2026-01-05", act.GetAgeAtActivityYears(), act.GetActivityDate())
	}
	if r := act.GetResidence(); r.GetPostcodeSector() != "SM1 1" || r.GetSubIcb() == "" {
		t.Errorf("residence = %v, want sector SM1 1 and a sub-ICB from the sample", r)
	}
	if act.GetApc().GetHrgCode() != "EB10A" || act.GetCdsUniqueIdentifier() != uid {
		t.Errorf("activity not carried: uid %q, hrg %q", act.GetCdsUniqueIdentifier(), act.GetApc().GetHrgCode())
	}
}

func rejection(t *testing.T, err error) *pipeline.Rejection {
	t.Helper()
	var rej *pipeline.Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("error = %v (%T), want *pipeline.Rejection", err, err)
	}
	if len(rej.Failures) != 1 {
		t.Fatalf("failures = %v, want one", rej.Failures)
	}
	return rej
}

func TestProcessRejectsGarbage(t *testing.T) {
	// A length-delimited field 1 claiming 100 bytes that are not there.
	m := pipeline.Message{Topic: topics.Validated, Value: []byte{0x0a, 0x64, 0x01, 0x02}}
	outs, err := newStage(t).Process(context.Background(), m)
	if len(outs) != 0 {
		t.Errorf("got %d outputs, want none", len(outs))
	}
	rej := rejection(t, err)
	if f := rej.Failures[0]; f.GetRuleId() != "STAGE-DECODE" || f.GetSeverity() != dmicv1.Severity_SEVERITY_ERROR {
		t.Errorf("failure = %v, want STAGE-DECODE error", f)
	}
}

// A record whose activity is not of its header's dataset cannot be
// de-identified; the rejection names the record but none of its values.
func TestProcessRejectsDatasetMismatch(t *testing.T) {
	in := validated(dmicv1.Dataset_DATASET_OUTPATIENT)
	outs, err := newStage(t).Process(context.Background(), message(t, in))
	if len(outs) != 0 {
		t.Errorf("got %d outputs, want none", len(outs))
	}
	rej := rejection(t, err)
	if rej.Failures[0].GetRuleId() != "DEID-001" {
		t.Errorf("rule = %q, want DEID-001", rej.Failures[0].GetRuleId())
	}
	if rej.RecordID != uid || rej.Provider != "RJ7" || rej.Header.GetSubmissionId() != "sub-42" {
		t.Errorf("record id, provider, submission = %q, %q, %q; want %s, RJ7, sub-42", rej.RecordID, rej.Provider, rej.Header.GetSubmissionId(), uid)
	}
	for _, id := range []string{nhsNumber, birthDate, postcode, localID} {
		if strings.Contains(rej.Error(), id) {
			t.Errorf("rejection %q contains identifier %q", rej.Error(), id)
		}
	}
}

// The stage reuses its input message: a second record must not inherit
// anything from the first.
func TestProcessReusesNoState(t *testing.T) {
	s := newStage(t)
	if _, err := s.Process(context.Background(), message(t, validated(dmicv1.Dataset_DATASET_APC))); err != nil {
		t.Fatal(err)
	}
	second := validated(dmicv1.Dataset_DATASET_APC)
	second.Warnings = nil
	second.Record.Patient.NhsNumber = ""
	second.Record.Patient.NhsNumberStatusIndicatorCode = "07"
	outs, err := s.Process(context.Background(), message(t, second))
	if err != nil {
		t.Fatal(err)
	}
	var dr dmicv1.DeidentifiedRecord
	if err := proto.Unmarshal(outs[0].Value, &dr); err != nil {
		t.Fatal(err)
	}
	if len(dr.GetWarnings()) != 0 {
		t.Errorf("warnings = %v, want none", dr.GetWarnings())
	}
	if a := dr.GetActivity(); a.GetPseudoNhsNumber() != "" || a.GetPseudonymAbsentReason() != didi.AbsentMissing {
		t.Errorf("pseudonym %q, absent reason %q; want none, %q", a.GetPseudoNhsNumber(), a.GetPseudonymAbsentReason(), didi.AbsentMissing)
	}
}
