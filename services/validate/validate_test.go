package validate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validate/spec"
)

// Identifiable values used by the records below. No rejection may contain them.
const (
	goodNHS  = "9434765919"
	badNHS   = "9434765918" // fails the Modulus 11 check
	dob      = "1970-03-14"
	postcode = "SW17 0QT"
	lpi      = "LPI0000001"
)

var identifiers = []string{goodNHS, badNHS, dob, postcode, lpi, "SW170QT"}

// apcRecord is the apc example of docs/record-format.md, with overrides
// spliced in as extra JSON members (the last value of a repeated field wins).
func apcRecord(extra string) []byte {
	s := `{"dataset":"apc","cds_unique_identifier":"BRJ700000000000000000001","cds_update_type":"9",` +
		`"cds_applicable_date_time":"2026-01-06T09:15:00Z","provider_code":"RJ7","site_code":"RJ701","commissioner_code":"36L",` +
		`"administrative_category_code":"01","overseas_visitor_status_code":"8","nhs_number":"` + goodNHS + `",` +
		`"nhs_number_status_indicator_code":"01","local_patient_identifier":"` + lpi + `","person_birth_date":"` + dob + `",` +
		`"postcode_of_usual_address":"` + postcode + `","person_gender_code":"2","ethnic_category":"A",` +
		`"general_medical_practice_code":"H85001","cds_type":"130","hospital_provider_spell_number":"SP0000123",` +
		`"episode_number":"01","start_date_hospital_provider_spell":"2026-01-02","admission_method_code":"21",` +
		`"source_of_admission_code":"19","start_date_episode":"2026-01-02","end_date_episode":"2026-01-05",` +
		`"discharge_date_hospital_provider_spell":"2026-01-05","discharge_method_code":"1","discharge_destination_code":"19",` +
		`"patient_classification_code":"1","treatment_function_code":"300","primary_diagnosis_icd":"I219",` +
		`"primary_procedure_opcs":"K634","hrg_code":"EB10A"`
	if extra != "" {
		s += "," + extra
	}
	return []byte(s + "}")
}

var received = time.Date(2026, 1, 7, 10, 0, 0, 0, time.UTC)

func rawHeaders() []pipeline.Header {
	return envelope.Raw{
		Dataset:      dmicv1.Dataset_DATASET_APC,
		Source:       dmicv1.Source_SOURCE_PROVIDER,
		Submitter:    "RJ7",
		SubmissionID: "sub-42",
		Received:     received,
		Line:         7,
		Traceparent:  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}.Headers()
}

func message(value []byte, headers []pipeline.Header) pipeline.Message {
	return pipeline.Message{
		Topic:     topics.Raw,
		Partition: 2,
		Offset:    1234,
		Key:       []byte("RJ7|apc|BRJ700000000000000000001"),
		Value:     value,
		Headers:   headers,
		// As ingest writes it: the receipt time, in the header and as the
		// message timestamp (which the broker keeps to the millisecond).
		Time: received,
	}
}

func newStage() *validate.Stage {
	// The suite's today (clocktest), after the 2026 example dates.
	reg, err := spec.BuiltIn()
	if err != nil {
		panic(err)
	}
	return validate.New(spec.New(reg, spec.WithClock(clock.Fixed(clocktest.Now()))))
}

// specVersion is the label of the built-in apc specification the examples
// are checked against.
const specVersion = "apc/2026.1"

// verdictOf finds the validation outcome among a stage's outputs.
func verdictOf(t *testing.T, outs []pipeline.Output) *validationv1.ValidationOutcome {
	t.Helper()
	for _, o := range outs {
		if o.Topic == topics.ValidationOutcomes {
			v := &validationv1.ValidationOutcome{}
			if err := proto.Unmarshal(o.Value, v); err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no output on %s among %d", topics.ValidationOutcomes, len(outs))
	return nil
}

// recordOutputs are the outputs other than the verdict.
func recordOutputs(outs []pipeline.Output) []pipeline.Output {
	var rs []pipeline.Output
	for _, o := range outs {
		if o.Topic != topics.ValidationOutcomes {
			rs = append(rs, o)
		}
	}
	return rs
}

func rejection(t *testing.T, err error) *pipeline.Rejection {
	t.Helper()
	var rej *pipeline.Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("error = %v (%T), want *pipeline.Rejection", err, err)
	}
	return rej
}

// assertNoIdentifiers fails if any identifiable value appears in any text of
// the rejection.
func assertNoIdentifiers(t *testing.T, rej *pipeline.Rejection) {
	t.Helper()
	texts := []string{rej.Error(), rej.RecordID, rej.Provider}
	for _, f := range rej.Failures {
		texts = append(texts, f.GetMessage(), f.GetField(), f.GetRuleId())
	}
	for _, s := range texts {
		for _, id := range identifiers {
			if strings.Contains(s, id) {
				t.Errorf("rejection text %q contains identifiable value %q", s, id)
			}
		}
	}
}

func hasRule(fs []*dmicv1.Failure, rule, field string, sev dmicv1.Severity) bool {
	for _, f := range fs {
		if f.GetRuleId() == rule && f.GetField() == field && f.GetSeverity() == sev {
			return true
		}
	}
	return false
}

func TestProcessGoodRecord(t *testing.T) {
	m := message(apcRecord(""), rawHeaders())
	all, err := newStage().Process(context.Background(), m)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	outs := recordOutputs(all)
	if len(outs) != 1 {
		t.Fatalf("got %d record outputs, want 1", len(outs))
	}
	o := outs[0]
	if v := verdictOf(t, all); v.Outcome != validationv1.Outcome_OUTCOME_ACCEPTED || len(v.Failures) != 0 ||
		v.RecordId != "BRJ700000000000000000001" || v.ProviderCode != "RJ7" || v.Stage != "validate" ||
		v.Header.GetSpecVersion() != specVersion || v.Header.GetLineNumber() != 7 || v.Header.GetSubmissionId() != "sub-42" {
		t.Errorf("verdict = %v, want accepted, with the record's id, line and submission", v)
	}
	if o.Topic != topics.Validated {
		t.Errorf("topic = %q, want %q", o.Topic, topics.Validated)
	}
	const wantKey = "RJ7|apc|BRJ700000000000000000001"
	if string(o.Key) != wantKey {
		t.Errorf("key = %q, want %q", o.Key, wantKey)
	}
	var vr dmicv1.ValidatedRecord
	if err := proto.Unmarshal(o.Value, &vr); err != nil {
		t.Fatalf("output is not a ValidatedRecord: %v", err)
	}
	h := vr.GetHeader()
	if h.GetRecordKey() != wantKey {
		t.Errorf("header record key = %q, want %q", h.GetRecordKey(), wantKey)
	}
	if h.GetSubmissionId() != "sub-42" {
		t.Errorf("submission id = %q, want sub-42", h.GetSubmissionId())
	}
	if h.GetSpecVersion() != specVersion {
		t.Errorf("spec version = %q, want %q", h.GetSpecVersion(), specVersion)
	}
	applicable := time.Date(2026, 1, 6, 9, 15, 0, 0, time.UTC)
	if want := envelope.Version(applicable, m.Offset); h.GetVersion() != want {
		t.Errorf("version = %d, want %d", h.GetVersion(), want)
	}
	if h.GetDataset() != dmicv1.Dataset_DATASET_APC || h.GetSource() != dmicv1.Source_SOURCE_PROVIDER {
		t.Errorf("dataset, source = %v, %v; want apc, provider", h.GetDataset(), h.GetSource())
	}
	if h.GetSubmitterOrgCode() != "RJ7" || h.GetLineNumber() != 7 || h.GetRawPartition() != 2 || h.GetRawOffset() != 1234 {
		t.Errorf("submitter, line, partition, offset = %q, %d, %d, %d; want RJ7, 7, 2, 1234",
			h.GetSubmitterOrgCode(), h.GetLineNumber(), h.GetRawPartition(), h.GetRawOffset())
	}
	if !h.GetReceivedTime().AsTime().Equal(received) {
		t.Errorf("received = %v, want %v", h.GetReceivedTime().AsTime(), received)
	}
	if h.GetTraceparent() == "" {
		t.Error("traceparent not carried")
	}
	rec := vr.GetRecord()
	if rec.GetCdsUniqueIdentifier() != "BRJ700000000000000000001" || rec.GetPatient().GetNhsNumber() != goodNHS ||
		rec.GetApc().GetHrgCode() != "EB10A" {
		t.Errorf("record not carried intact: uid %q, hrg %q", rec.GetCdsUniqueIdentifier(), rec.GetApc().GetHrgCode())
	}
	if len(vr.GetWarnings()) != 0 {
		t.Errorf("warnings = %v, want none", vr.GetWarnings())
	}
}

func TestProcessWarningOnlyPasses(t *testing.T) {
	// "H8500" is not a letter and five digits: ORG-002, a warning.
	m := message(apcRecord(`"general_medical_practice_code":"H8500"`), rawHeaders())
	all, err := newStage().Process(context.Background(), m)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	outs := recordOutputs(all)
	if len(outs) != 1 || outs[0].Topic != topics.Validated {
		t.Fatalf("outputs = %+v, want one on %s", outs, topics.Validated)
	}
	if v := verdictOf(t, all); v.Outcome != validationv1.Outcome_OUTCOME_WARNED || !hasRule(v.Failures, "ORG-002", "general_medical_practice_code", dmicv1.Severity_SEVERITY_WARNING) {
		t.Errorf("verdict = %v, want warned with ORG-002", v)
	}
	var vr dmicv1.ValidatedRecord
	if err := proto.Unmarshal(outs[0].Value, &vr); err != nil {
		t.Fatal(err)
	}
	ws := vr.GetWarnings()
	if len(ws) != 1 || !hasRule(ws, "ORG-002", "general_medical_practice_code", dmicv1.Severity_SEVERITY_WARNING) {
		t.Errorf("warnings = %v, want one ORG-002 warning on general_medical_practice_code", ws)
	}
}

func TestProcessRejects(t *testing.T) {
	// The good headers, then a bad data set: what parsed before it is kept.
	var badDataset []pipeline.Header
	for _, h := range rawHeaders() {
		if h.Key != envelope.HeaderDataset {
			badDataset = append(badDataset, h)
		}
	}
	badDataset = append(badDataset, pipeline.Header{Key: envelope.HeaderDataset, Value: []byte("dental")})
	tests := []struct {
		name    string
		value   []byte
		headers []pipeline.Header
		rule    string
		field   string
		// wantHeader: the rejection carries (at least a partial) header.
		wantHeader bool
		// fullHeader: the header is the validated record's (spec version set).
		fullHeader bool
		recordID   string
	}{
		{
			name:  "invalid NHS number",
			value: apcRecord(`"nhs_number":"` + badNHS + `"`), headers: rawHeaders(),
			rule: "NHS-002", field: "nhs_number",
			wantHeader: true, fullHeader: true, recordID: "BRJ700000000000000000001",
		},
		{
			name:  "undecodable JSON",
			value: []byte(`{"nhs_number":"` + goodNHS + `","person_birth_date":"` + dob + `"`), headers: rawHeaders(),
			rule: "DEC-JSON", wantHeader: true,
		},
		{
			name:  "unknown field",
			value: apcRecord(`"patient_name":"x"`), headers: rawHeaders(),
			rule: "DEC-UNKNOWN-FIELD", field: "patient_name", wantHeader: true, recordID: "BRJ700000000000000000001",
		},
		{
			name:  "bad dataset header",
			value: apcRecord(""), headers: badDataset,
			rule: "HDR-001", field: "headers", wantHeader: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, err := newStage().Process(context.Background(), message(tt.value, tt.headers))
			if len(outs) != 0 {
				t.Errorf("got %d outputs with a rejection, want none", len(outs))
			}
			rej := rejection(t, err)
			// The verdict goes along with the dead letter, with the same failures.
			v := verdictOf(t, rej.Also)
			if v.Outcome != validationv1.Outcome_OUTCOME_REJECTED || !proto.Equal(&validationv1.ValidationOutcome{Failures: v.Failures},
				&validationv1.ValidationOutcome{Failures: rej.Failures}) || v.Header.GetLineNumber() != 7 || v.RecordId != tt.recordID {
				t.Errorf("verdict = %v, want rejected with the dead letter's failures, line 7, record %q", v, tt.recordID)
			}
			if !hasRule(rej.Failures, tt.rule, tt.field, dmicv1.Severity_SEVERITY_ERROR) {
				t.Errorf("failures = %v, want error %s on field %q", rej.Failures, tt.rule, tt.field)
			}
			assertNoIdentifiers(t, rej)
			if tt.rule == "HDR-001" && !strings.Contains(rej.Failures[0].GetMessage(), envelope.HeaderDataset) {
				t.Errorf("HDR-001 message %q does not name header %s", rej.Failures[0].GetMessage(), envelope.HeaderDataset)
			}
			if tt.recordID != "" && rej.RecordID != tt.recordID {
				t.Errorf("record id = %q, want %q", rej.RecordID, tt.recordID)
			}
			h := rej.Header
			if !tt.wantHeader {
				if h != nil {
					t.Errorf("header = %v, want none", h)
				}
				return
			}
			if h == nil {
				t.Fatal("rejection has no header")
			}
			if h.GetSubmissionId() != "sub-42" || h.GetLineNumber() != 7 {
				t.Errorf("submission id, line = %q, %d; want sub-42, 7", h.GetSubmissionId(), h.GetLineNumber())
			}
			if h.GetRawPartition() != 2 || h.GetRawOffset() != 1234 || h.GetSubmitterOrgCode() != "RJ7" {
				t.Errorf("partition, offset, submitter = %d, %d, %q; want 2, 1234, RJ7", h.GetRawPartition(), h.GetRawOffset(), h.GetSubmitterOrgCode())
			}
			if !h.GetReceivedTime().AsTime().Equal(received) {
				t.Errorf("received = %v, want %v", h.GetReceivedTime().AsTime(), received)
			}
			if tt.fullHeader {
				if h.GetSpecVersion() != specVersion || h.GetRecordKey() != "RJ7|apc|BRJ700000000000000000001" {
					t.Errorf("spec version, record key = %q, %q; want the validated header", h.GetSpecVersion(), h.GetRecordKey())
				}
			} else if h.GetSpecVersion() != "" || h.GetRecordKey() != "" {
				t.Errorf("partial header has spec version %q, record key %q; want neither", h.GetSpecVersion(), h.GetRecordKey())
			}
		})
	}
}

// A rejection with many failures names each rule and field, and none of the
// values that broke them.
func TestProcessRejectionNeverHoldsValues(t *testing.T) {
	value := apcRecord(`"nhs_number":"` + badNHS + `","person_birth_date":"2027-13-45","postcode_of_usual_address":"SW17 0QTX"`)
	_, err := newStage().Process(context.Background(), message(value, rawHeaders()))
	rej := rejection(t, err)
	for _, want := range []struct{ rule, field string }{
		{"NHS-002", "nhs_number"},
		{"DOB-001", "person_birth_date"},
		{"PC-001", "postcode_of_usual_address"},
	} {
		if !hasRule(rej.Failures, want.rule, want.field, dmicv1.Severity_SEVERITY_ERROR) {
			t.Errorf("failures = %v, want %s on %s", rej.Failures, want.rule, want.field)
		}
	}
	values := append([]string{"2027-13-45", "SW17 0QTX"}, identifiers...)
	for _, f := range rej.Failures {
		for _, id := range values {
			if strings.Contains(f.GetMessage(), id) {
				t.Errorf("failure %s message %q contains %q", f.GetRuleId(), f.GetMessage(), id)
			}
		}
	}
}

// A bad applicable date/time must not hide the record's other failures.
func TestProcessReportsEveryFailureWithABadApplicableTime(t *testing.T) {
	value := apcRecord(`"nhs_number":"` + badNHS + `","cds_applicable_date_time":"yesterday"`)
	_, err := newStage().Process(context.Background(), message(value, rawHeaders()))
	rej := rejection(t, err)
	if !hasRule(rej.Failures, "NHS-002", "nhs_number", dmicv1.Severity_SEVERITY_ERROR) ||
		!hasRule(rej.Failures, "DATE-004", "cds_applicable_date_time", dmicv1.Severity_SEVERITY_ERROR) {
		t.Errorf("failures = %v, want both NHS-002 and DATE-004", rej.Failures)
	}
	if rej.Header.GetSubmissionId() != "sub-1" && rej.Header.GetSubmissionId() == "" {
		t.Errorf("header lost: %v", rej.Header)
	}
	assertNoIdentifiers(t, rej)
}

// A record id repeated within a submission (ingest marks it) breaks DUP-001.
func TestProcessRepeatedRecordID(t *testing.T) {
	raw := envelope.Raw{Dataset: dmicv1.Dataset_DATASET_APC, Submitter: "RJ7", SubmissionID: "sub-42", Received: received,
		Line: 9, DuplicateOfLine: 7}
	_, err := newStage().Process(context.Background(), message(apcRecord(""), raw.Headers()))
	rej := rejection(t, err)
	if !hasRule(rej.Failures, "DUP-001", "cds_unique_identifier", dmicv1.Severity_SEVERITY_ERROR) {
		t.Errorf("failures = %v, want DUP-001 on cds_unique_identifier", rej.Failures)
	}
	if v := verdictOf(t, rej.Also); v.Header.GetLineNumber() != 9 {
		t.Errorf("verdict line = %d, want 9", v.Header.GetLineNumber())
	}
}

// The validator every service builds checks the service code against the
// list of the financial year of the record's CAM date (rule CODE-031), from
// the reference data: the APC example is discharged on 2026-01-05, in
// 2025/26 (CAM 2025/26 guidance p.6: the discharge date).
func TestNewValidatorChecksServiceCodesByYear(t *testing.T) {
	v, err := validate.NewValidator(validate.ValidatorConfig{ReferenceDir: "../../reference/sample", Clock: clock.Fixed(clocktest.Now())})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, extra string
		want        bool // CODE-031 fails
	}{
		{"green service in 2025/26", `"service_code":"NCBPS01C"`, false},
		{"split from NCBPS22S in 2025-26", `"service_code":"NCBPS22SA"`, false},
		{"retired: in the 2024/25 list only", `"service_code":"NCBPH26E"`, true},
		{"in no list", `"service_code":"NCBZZ99Z"`, true},
		{"the same, discharged in 2024/25", `"service_code":"NCBPH26E","start_date_hospital_provider_spell":"2025-03-02","start_date_episode":"2025-03-02","end_date_episode":"2025-03-05","discharge_date_hospital_provider_spell":"2025-03-05"`, false},
	}
	for _, tt := range tests {
		r, _, err := record.DecodeJSON(apcRecord(tt.extra), 0)
		if err != nil {
			t.Fatal(err)
		}
		res := v.Validate(r, spec.ValidateInput{Dataset: dmicv1.Dataset_DATASET_APC, Received: received})
		got := false
		for _, f := range res.Failures {
			if f.GetRuleId() == "CODE-031" {
				got = f.GetField() == "service_code" && f.GetSeverity() == dmicv1.Severity_SEVERITY_ERROR
			}
		}
		if got != tt.want {
			t.Errorf("%s: CODE-031 failed %v, want %v (failures %v)", tt.name, got, tt.want, res.Failures)
		}
	}
}
