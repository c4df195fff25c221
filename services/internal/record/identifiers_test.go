package record_test

import (
	"errors"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// The CDS UNIQUE IDENTIFIER "must not contain the NHS number, local ID or
// clinical text" (domain brief section 3, "Submission protocol", [C]); the
// same holds of every field that outlives de-identification (section 1:
// NHS number, local patient ID and full postcode are removed).
func TestHoldsPatientIdentifier(t *testing.T) {
	p := &dmicv1.Patient{NhsNumber: "9434765919", LocalPatientIdentifier: "K1234567", PostcodeOfUsualAddress: "SW17 0QT", PersonBirthDate: "1970-03-14"}
	tests := []struct {
		value string
		want  bool
		why   string
	}{
		{"BRJ700000000000000000001", false, "an ordinary CDS unique identifier"},
		{"BRJ79434765919", true, "B + provider + the NHS number"},
		{"BRJ7-943-476-5919-01", true, "the NHS number with separators"},
		{"BRJ7K1234567", true, "the local patient identifier"},
		{"BRJ7k1234567", true, "the local patient identifier in another case"},
		{"SW170QT", true, "the postcode without its space"},
		{"sw17 0qt", true, "the postcode in lower case"},
		{"BRJ7943476591", false, "nine digits of the NHS number are not the number"},
		{"BRJ7K123456", false, "a part of the local id is not the id"},
		{"BRJ719700314", false, "the date of birth is not searched for (dates belong in ids)"},
		{"", false, "empty"},
	}
	for _, tt := range tests {
		if got := record.HoldsPatientIdentifier(tt.value, p); got != tt.want {
			t.Errorf("HoldsPatientIdentifier(%q) = %v, want %v: %s", tt.value, got, tt.want, tt.why)
		}
	}

	// Identifiers too short or not identifying are not searched for.
	short := &dmicv1.Patient{NhsNumber: "94347", LocalPatientIdentifier: "K12", PostcodeOfUsualAddress: "ZZ99 3VZ"}
	for _, v := range []string{"BRJ79434765919", "BRJ7K12000", "BRJ7ZZ993VZ"} {
		if record.HoldsPatientIdentifier(v, short) {
			t.Errorf("HoldsPatientIdentifier(%q) with a malformed number, a 3-character local id and a pseudo-postcode = true, want false", v)
		}
	}
	// One digit repeated is no one's NHS number, and zero-padded ids hold it.
	zeros := &dmicv1.Patient{NhsNumber: "0000000000"}
	if record.HoldsPatientIdentifier("BRJ700000000000000000001", zeros) {
		t.Error("NHS number 0000000000 found in a zero-padded record id, want not searched for")
	}
	if record.HoldsPatientIdentifier("BRJ79434765919", nil) {
		t.Error("no patient: want false")
	}
}

// IdentifierField finds an identifier in any field a provider might misuse,
// not only the record id, and never in the patient's own fields.
func TestIdentifierField(t *testing.T) {
	base := func() *dmicv1.CommissioningRecord {
		return &dmicv1.CommissioningRecord{
			CdsUniqueIdentifier: "BRJ700000000000000000001", ProviderCode: "RJ7",
			Patient: &dmicv1.Patient{NhsNumber: "9434765919", LocalPatientIdentifier: "K1234567", PostcodeOfUsualAddress: "SW17 0QT"},
			Activity: &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{
				HospitalProviderSpellNumber: "SP0000123", PrimaryDiagnosisIcd: "I219", SecondaryDiagnosesIcd: "E119;I10X",
			}},
		}
	}
	tests := []struct {
		name   string
		mutate func(r *dmicv1.CommissioningRecord)
		want   string
	}{
		{"clean", func(*dmicv1.CommissioningRecord) {}, ""},
		{"record id", func(r *dmicv1.CommissioningRecord) { r.CdsUniqueIdentifier = "BRJ79434765919" }, "cds_unique_identifier"},
		{"spell number", func(r *dmicv1.CommissioningRecord) { r.GetApc().HospitalProviderSpellNumber = "K1234567" }, "hospital_provider_spell_number"},
		{"code list", func(r *dmicv1.CommissioningRecord) { r.GetApc().SecondaryDiagnosesIcd = "E119;SW17 0QT" }, "secondary_diagnoses_icd"},
		{"site", func(r *dmicv1.CommissioningRecord) { r.SiteCode = "9434765919" }, "site_code"},
		{"outpatient attendance id", func(r *dmicv1.CommissioningRecord) {
			r.Activity = &dmicv1.CommissioningRecord_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AttendanceIdentifier: "9434765919"}}
		}, "attendance_identifier"},
		{"emergency care attendance id", func(r *dmicv1.CommissioningRecord) {
			r.Activity = &dmicv1.CommissioningRecord_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{EcAttendanceIdentifier: "K1234567"}}
		}, "ec_attendance_identifier"},
	}
	for _, tt := range tests {
		r := base()
		tt.mutate(r)
		if got := record.IdentifierField(r); got != tt.want {
			t.Errorf("%s: IdentifierField = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A record the decoder refuses is reported with its record id, unless the id
// holds the patient's identifier: the decode error reaches the validation
// outcomes, the rejections table and the log.
func TestDecodeErrorLeavesOutAnIdentifyingRecordID(t *testing.T) {
	for _, tt := range []struct{ uid, want string }{
		{"BRJ700000000000000000001", "BRJ700000000000000000001"},
		{"BRJ79434765919", ""},
		{"BRJ7K1234567", ""},
	} {
		line := `{"dataset":"apc","cds_unique_identifier":"` + tt.uid + `","nhs_number":"9434765919","local_patient_identifier":"K1234567","patient_name":"x"}`
		_, _, err := record.DecodeJSON([]byte(line), 0)
		var de *record.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("uid %s: error %v, want a DecodeError", tt.uid, err)
		}
		if de.RecordID != tt.want {
			t.Errorf("uid %s: decode error names record %q, want %q", tt.uid, de.RecordID, tt.want)
		}
	}
}
