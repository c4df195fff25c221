package spec

import (
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// fixedNow is the suite's today (clocktest): after the built-in
// specifications take effect and after every fixed date in the fixtures.
// Dates that must be in the future are built from it (fromToday).
var fixedNow = clocktest.Now()

func fixedClock() time.Time { return fixedNow }

// fromToday is the UTC calendar date days after fixedNow, as YYYY-MM-DD (the
// test validator reads dates in UTC).
func fromToday(days int) string {
	return fixedNow.UTC().AddDate(0, 0, days).Format(time.DateOnly)
}

const (
	apc = dmicv1.Dataset_DATASET_APC
	op  = dmicv1.Dataset_DATASET_OUTPATIENT
	ec  = dmicv1.Dataset_DATASET_EMERGENCY_CARE
	lf  = dmicv1.Dataset_DATASET_LOCAL_FLOW

	provider = dmicv1.Source_SOURCE_PROVIDER
	national = dmicv1.Source_SOURCE_NATIONAL
)

type recT = dmicv1.CommissioningRecord

func builtIn(t testing.TB) *Registry {
	t.Helper()
	reg, err := BuiltIn()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func testValidator(t testing.TB, opts ...Option) *Validator {
	t.Helper()
	opts = append([]Option{WithClock(fixedClock), WithLocation(time.UTC)}, opts...)
	return New(builtIn(t), opts...)
}

// cleanLines are records of each dataset with every field a provider
// specification requires, and nothing wrong.
var cleanLines = map[dmicv1.Dataset]string{
	apc: `{"dataset":"apc","cds_unique_identifier":"BRJ700000000000000000001","cds_update_type":"9","cds_applicable_date_time":"2026-04-06T09:15:00+01:00","provider_code":"RJ7","site_code":"RJ701","commissioner_code":"36L","administrative_category_code":"01","overseas_visitor_status_code":"8","nhs_number":"9434765919","nhs_number_status_indicator_code":"01","local_patient_identifier":"LPI0000001","person_birth_date":"1970-03-14","postcode_of_usual_address":"SW17 0QT","person_gender_code":"2","ethnic_category":"A","general_medical_practice_code":"H85001","cds_type":"130","hospital_provider_spell_number":"SP0000123","episode_number":"01","start_date_hospital_provider_spell":"2026-04-02","admission_method_code":"21","source_of_admission_code":"19","start_date_episode":"2026-04-02","end_date_episode":"2026-04-05","discharge_date_hospital_provider_spell":"2026-04-05","discharge_method_code":"1","discharge_destination_code":"19","patient_classification_code":"1","treatment_function_code":"300","primary_diagnosis_icd":"I219","primary_procedure_opcs":"K634","hrg_code":"EB10A"}`,
	op:  `{"dataset":"outpatient","cds_unique_identifier":"BRJ700000000000000000002","cds_update_type":"9","cds_applicable_date_time":"2026-04-08T17:00:00Z","provider_code":"RJ7","site_code":"RJ701","commissioner_code":"36L","administrative_category_code":"01","nhs_number":"4010232137","nhs_number_status_indicator_code":"01","person_birth_date":"1985-11-30","postcode_of_usual_address":"CR4 3AB","person_gender_code":"1","ethnic_category":"H","general_medical_practice_code":"H85020","attendance_identifier":"OPA00000456","appointment_date":"2026-04-08","attended_or_did_not_attend_code":"5","first_attendance_code":"1","treatment_function_code":"320","priority_type_code":"1","primary_procedure_opcs":"U201","hrg_code":"WF01B"}`,
	ec:  `{"dataset":"emergency_care","cds_unique_identifier":"BRJ700000000000000000003","cds_update_type":"9","cds_applicable_date_time":"2026-04-09T03:40:00Z","provider_code":"RJ7","site_code":"RJ701","commissioner_code":"36L","administrative_category_code":"01","nhs_number":"9449305552","nhs_number_status_indicator_code":"01","person_birth_date":"2001-06-01","postcode_of_usual_address":"ZZ99 3VZ","person_gender_code":"9","ethnic_category":"Z","general_medical_practice_code":"V81999","ec_attendance_identifier":"ECA000000789","ec_arrival_date":"2026-04-09","ec_arrival_time":"01:12","ec_department_type":"01","ec_chief_complaint_snomed_ct":"29857009","ec_departure_date":"2026-04-10","hrg_code":"VB09Z"}`,
	lf:  `{"dataset":"local_flow","cds_unique_identifier":"PLCM-RJ7-2026-04-000042","cds_update_type":"9","provider_code":"RJ7","commissioner_code":"36L","nhs_number_status_indicator_code":"07","person_birth_date":"1960-02-29","postcode_of_usual_address":"SW1A 1AA","general_medical_practice_code":"H85001","activity_date":"2026-04-12","point_of_delivery_code":"OPPROC","treatment_function_code":"130","hrg_code":"BZ84A","price_pence":14250,"activity_count":1}`,
}

// clean decodes a clean record of dataset d from the provider format, so
// the tests check what ingest and validate hand over.
func clean(t testing.TB, d dmicv1.Dataset) *recT {
	t.Helper()
	r, _, err := record.DecodeJSON([]byte(cleanLines[d]), 0)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type want struct {
	rule, field string
	sev         dmicv1.Severity
}

func e(rule, field string) want { return want{rule, field, dmicv1.Severity_SEVERITY_ERROR} }
func w(rule, field string) want { return want{rule, field, dmicv1.Severity_SEVERITY_WARNING} }

func wants(fs []*dmicv1.Failure) []want {
	var out []want
	for _, f := range fs {
		out = append(out, want{f.GetRuleId(), f.GetField(), f.GetSeverity()})
	}
	return out
}

// practiceSet is a PracticeDirectory of a few codes.
type practiceSet map[string]bool

func (p practiceSet) KnownPractice(code string) bool { return p[code] }
