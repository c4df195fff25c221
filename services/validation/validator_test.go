package validation

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/record"
	"google.golang.org/protobuf/proto"
)

var fixedNow = time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)

func testValidator() *Validator {
	return New(WithClock(func() time.Time { return fixedNow }), WithLocation(time.UTC))
}

// clean returns a clean record of each dataset, decoded from the provider
// format so the tests exercise what ingest will hand over.
func clean(t testing.TB, d dmicv1.Dataset) *dmicv1.CommissioningRecord {
	t.Helper()
	lines := map[dmicv1.Dataset]string{
		dmicv1.Dataset_DATASET_APC:            `{"dataset":"apc","cds_unique_identifier":"BRJ7-1","cds_applicable_date_time":"2026-01-06T09:15:00+01:00","provider_code":"RJ7","administrative_category_code":"01","nhs_number":"9434765919","nhs_number_status_indicator_code":"01","person_birth_date":"1970-03-14","postcode_of_usual_address":"SW17 0QT","person_gender_code":"2","general_medical_practice_code":"H85001","cds_type":"130","start_date_hospital_provider_spell":"2026-01-02","admission_method_code":"21","start_date_episode":"2026-01-02","end_date_episode":"2026-01-05","discharge_date_hospital_provider_spell":"2026-01-05","treatment_function_code":"300"}`,
		dmicv1.Dataset_DATASET_OUTPATIENT:     `{"dataset":"outpatient","cds_unique_identifier":"BRJ7-2","provider_code":"RJ7","nhs_number":"4010232137","nhs_number_status_indicator_code":"01","person_birth_date":"1985-11-30","postcode_of_usual_address":"CR4 3AB","attendance_identifier":"OPA1","appointment_date":"2026-01-08","attended_or_did_not_attend_code":"5","treatment_function_code":"320"}`,
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: `{"dataset":"emergency_care","cds_unique_identifier":"BRJ7-3","provider_code":"RJ7","nhs_number":"9449305552","person_birth_date":"2001-06-01","postcode_of_usual_address":"ZZ99 3VZ","person_gender_code":"X","general_medical_practice_code":"V81999","ec_attendance_identifier":"ECA1","ec_arrival_date":"2026-01-09","ec_arrival_time":"01:12","ec_department_type":"01","ec_departure_date":"2026-01-10"}`,
		dmicv1.Dataset_DATASET_LOCAL_FLOW:     `{"dataset":"local_flow","cds_unique_identifier":"PLCM-RJ7-42","provider_code":"RJ7","nhs_number_status_indicator_code":"07","person_birth_date":"1960-02-29","activity_date":"2026-01-12","point_of_delivery_code":"OPPROC","price_pence":14250,"activity_count":1}`,
	}
	r, _, err := record.DecodeJSON([]byte(lines[d]), 0)
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

const (
	apc = dmicv1.Dataset_DATASET_APC
	op  = dmicv1.Dataset_DATASET_OUTPATIENT
	ec  = dmicv1.Dataset_DATASET_EMERGENCY_CARE
	lf  = dmicv1.Dataset_DATASET_LOCAL_FLOW
)

type recT = dmicv1.CommissioningRecord

func TestCleanRecords(t *testing.T) {
	v := testValidator()
	for _, d := range []dmicv1.Dataset{apc, op, ec, lf} {
		r := clean(t, d)
		if fs := v.Validate(d, r); fs != nil {
			t.Errorf("%s: clean record has failures %v", record.DatasetName(d), fs)
		}
		if fs := v.Validate(dmicv1.Dataset_DATASET_UNSPECIFIED, r); fs != nil {
			t.Errorf("%s: clean record, dataset from the record, has failures %v", record.DatasetName(d), fs)
		}
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		name   string
		d      dmicv1.Dataset
		mutate func(r *recT)
		want   []want
	}{
		// REQ-001
		{"apc missing required", apc, func(r *recT) {
			r.CdsUniqueIdentifier, r.ProviderCode, r.Patient.PersonBirthDate = "", "", ""
			a := r.GetApc()
			a.CdsType, a.StartDateEpisode, a.AdmissionMethodCode, a.TreatmentFunctionCode = "", "", "", ""
		}, []want{e("REQ-001", "cds_unique_identifier"), e("REQ-001", "provider_code"), e("REQ-001", "person_birth_date"),
			e("REQ-001", "cds_type"), e("REQ-001", "start_date_episode"), e("REQ-001", "admission_method_code"), e("REQ-001", "treatment_function_code")}},
		{"outpatient missing required", op, func(r *recT) {
			o := r.GetOutpatient()
			o.AttendanceIdentifier, o.AppointmentDate, o.AttendedOrDidNotAttendCode, o.TreatmentFunctionCode = "", "", "", ""
		}, []want{e("REQ-001", "attendance_identifier"), e("REQ-001", "appointment_date"), e("REQ-001", "attended_or_did_not_attend_code"), e("REQ-001", "treatment_function_code")}},
		{"emergency care missing required", ec, func(r *recT) {
			x := r.GetEmergencyCare()
			x.EcAttendanceIdentifier, x.EcArrivalDate, x.EcDepartmentType = "", "", ""
		}, []want{e("REQ-001", "ec_attendance_identifier"), e("REQ-001", "ec_arrival_date"), e("REQ-001", "ec_department_type")}},
		{"local flow missing required", lf, func(r *recT) {
			r.GetLocalFlow().ActivityDate, r.GetLocalFlow().PointOfDeliveryCode = "", ""
		}, []want{e("REQ-001", "activity_date"), e("REQ-001", "point_of_delivery_code")}},
		{"delete needs only id and provider", op, func(r *recT) {
			r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			r.Patient, r.Demographics = nil, nil
			r.Activity = &dmicv1.CommissioningRecord_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{}}
		}, nil},
		{"delete without id", apc, func(r *recT) {
			r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			r.CdsUniqueIdentifier = ""
			r.Patient = nil
		}, []want{e("REQ-001", "cds_unique_identifier")}},
		{"delete fields still checked", apc, func(r *recT) {
			r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			r.Patient.NhsNumber = "9434765918"
		}, []want{e("NHS-002", "nhs_number")}},
		// NHS-001..004
		{"nhs number too short", apc, func(r *recT) { r.Patient.NhsNumber = "943476591" }, []want{e("NHS-001", "nhs_number")}},
		{"nhs number with spaces", apc, func(r *recT) { r.Patient.NhsNumber = "943 476 5919" }, []want{e("NHS-001", "nhs_number")}},
		{"nhs number bad check digit", apc, func(r *recT) { r.Patient.NhsNumber = "9434765918" }, []want{e("NHS-002", "nhs_number")}},
		{"nhs number check value 10", apc, func(r *recT) { r.Patient.NhsNumber = "1234567890" }, []want{e("NHS-002", "nhs_number")}},
		{"nhs number repeated zero", apc, func(r *recT) { r.Patient.NhsNumber = "0000000000" }, []want{e("NHS-003", "nhs_number")}},
		{"nhs number repeated one", apc, func(r *recT) { r.Patient.NhsNumber = "1111111111" }, []want{e("NHS-003", "nhs_number")}},
		{"nhs number missing while verified", apc, func(r *recT) { r.Patient.NhsNumber = "" }, []want{e("NHS-004", "nhs_number")}},
		{"nhs number missing, other status", apc, func(r *recT) {
			r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "", "03"
		}, nil},
		{"nhs number missing, no status", apc, func(r *recT) {
			r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "", ""
		}, nil},
		// DOB-001..003
		{"dob not a date", apc, func(r *recT) { r.Patient.PersonBirthDate = "14/03/1970" }, []want{e("DOB-001", "person_birth_date")}},
		{"dob impossible day", apc, func(r *recT) { r.Patient.PersonBirthDate = "1970-02-30" }, []want{e("DOB-001", "person_birth_date")}},
		{"dob before 1880", apc, func(r *recT) { r.Patient.PersonBirthDate = "1879-12-31" }, []want{e("DOB-002", "person_birth_date")}},
		{"dob on 1880-01-01", apc, func(r *recT) { r.Patient.PersonBirthDate = "1880-01-01" }, nil},
		{"dob on the activity date", apc, func(r *recT) { r.Patient.PersonBirthDate = "2026-01-05" }, nil},
		{"dob the day after the activity date", apc, func(r *recT) { r.Patient.PersonBirthDate = "2026-01-06" }, []want{e("DOB-003", "person_birth_date")}},
		{"dob after an open episode's start", apc, func(r *recT) {
			r.GetApc().EndDateEpisode = ""
			r.Patient.PersonBirthDate = "2026-01-03"
		}, []want{e("DOB-003", "person_birth_date")}},
		{"dob after the appointment", op, func(r *recT) { r.Patient.PersonBirthDate = "2026-01-09" }, []want{e("DOB-003", "person_birth_date")}},
		{"dob after the arrival", ec, func(r *recT) { r.Patient.PersonBirthDate = "2026-01-10" }, []want{e("DOB-003", "person_birth_date")}},
		{"dob after the local activity", lf, func(r *recT) { r.Patient.PersonBirthDate = "2026-01-13" }, []want{e("DOB-003", "person_birth_date")}},
		// DATE-001..004
		{"episode end not a date", apc, func(r *recT) { r.GetApc().EndDateEpisode = "2026-01-32" },
			[]want{e("DATE-001", "end_date_episode")}},
		{"every bad apc date reported", apc, func(r *recT) {
			a := r.GetApc()
			a.StartDateHospitalProviderSpell, a.StartDateEpisode, a.EndDateEpisode, a.DischargeDateHospitalProviderSpell = "x", "2026-1-2", "20260105", "2026-13-01"
		}, []want{e("DATE-001", "start_date_hospital_provider_spell"), e("DATE-001", "start_date_episode"), e("DATE-001", "end_date_episode"), e("DATE-001", "discharge_date_hospital_provider_spell")}},
		{"appointment not a date", op, func(r *recT) { r.GetOutpatient().AppointmentDate = "08/01/2026" }, []want{e("DATE-001", "appointment_date")}},
		{"departure not a date", ec, func(r *recT) { r.GetEmergencyCare().EcDepartureDate = "tomorrow" }, []want{e("DATE-001", "ec_departure_date")}},
		{"local activity not a date", lf, func(r *recT) { r.GetLocalFlow().ActivityDate = "2026-02" }, []want{e("DATE-001", "activity_date")}},
		{"appointment today", op, func(r *recT) { r.GetOutpatient().AppointmentDate = "2026-02-01" }, nil},
		{"appointment tomorrow", op, func(r *recT) { r.GetOutpatient().AppointmentDate = "2026-02-02" }, []want{e("DATE-002", "appointment_date")}},
		{"discharge in the future", apc, func(r *recT) { r.GetApc().DischargeDateHospitalProviderSpell = "2027-01-01" }, []want{e("DATE-002", "discharge_date_hospital_provider_spell")}},
		{"arrival in the future", ec, func(r *recT) {
			r.GetEmergencyCare().EcArrivalDate, r.GetEmergencyCare().EcDepartureDate = "2026-03-01", ""
		}, []want{e("DATE-002", "ec_arrival_date")}},
		{"local activity in the future", lf, func(r *recT) { r.GetLocalFlow().ActivityDate = "2030-01-01" }, []want{e("DATE-002", "activity_date")}},
		{"episode starts after it ends", apc, func(r *recT) { r.GetApc().StartDateEpisode = "2026-01-06" }, []want{e("DATE-003", "start_date_episode")}},
		{"episode of one day", apc, func(r *recT) { r.GetApc().StartDateEpisode = "2026-01-05" }, nil},
		{"applicable date-time not RFC 3339", apc, func(r *recT) { r.ApplicableDateTime = "2026-01-06 09:15" }, []want{e("DATE-004", "cds_applicable_date_time")}},
		{"applicable date-time UTC", apc, func(r *recT) { r.ApplicableDateTime = "2026-01-06T09:15:00.123Z" }, nil},
		// TIME-001
		{"arrival time not a time", ec, func(r *recT) { r.GetEmergencyCare().EcArrivalTime = "25:00" }, []want{w("TIME-001", "ec_arrival_time")}},
		{"arrival time with seconds", ec, func(r *recT) { r.GetEmergencyCare().EcArrivalTime = "01:12:59" }, nil},
		// PC-001
		{"postcode lower case without space", apc, func(r *recT) { r.Patient.PostcodeOfUsualAddress = "sw1a1aa" }, nil},
		{"postcode pseudo", apc, func(r *recT) { r.Patient.PostcodeOfUsualAddress = "ZZ99 3WZ" }, nil},
		{"postcode Q first", apc, func(r *recT) { r.Patient.PostcodeOfUsualAddress = "Q1 1AA" }, []want{e("PC-001", "postcode_of_usual_address")}},
		{"postcode C inward", apc, func(r *recT) { r.Patient.PostcodeOfUsualAddress = "SW1A 1CA" }, []want{e("PC-001", "postcode_of_usual_address")}},
		{"postcode missing is allowed", apc, func(r *recT) { r.Patient.PostcodeOfUsualAddress = "" }, nil},
		// ORG-001, ORG-002
		{"provider too short", apc, func(r *recT) { r.ProviderCode = "RJ" }, []want{e("ORG-001", "provider_code")}},
		{"provider too long", apc, func(r *recT) { r.ProviderCode = "RJ7001" }, []want{e("ORG-001", "provider_code")}},
		{"provider not alphanumeric", apc, func(r *recT) { r.ProviderCode = "RJ-7" }, []want{e("ORG-001", "provider_code")}},
		{"provider five characters", apc, func(r *recT) { r.ProviderCode = "NT401" }, nil},
		{"practice code bad", apc, func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "H8500" }, []want{w("ORG-002", "general_medical_practice_code")}},
		{"practice code default", apc, func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "V81997" }, nil},
		// CODE-001..006
		{"admission method unknown", apc, func(r *recT) { r.GetApc().AdmissionMethodCode = "28" }, []want{e("CODE-001", "admission_method_code")}},
		{"admission method 2D", apc, func(r *recT) { r.GetApc().AdmissionMethodCode = "2D" }, nil},
		{"admission method lower case", apc, func(r *recT) { r.GetApc().AdmissionMethodCode = "2a" }, []want{e("CODE-001", "admission_method_code")}},
		{"attended code 1", op, func(r *recT) { r.GetOutpatient().AttendedOrDidNotAttendCode = "1" }, []want{e("CODE-002", "attended_or_did_not_attend_code")}},
		{"attended code 0", op, func(r *recT) { r.GetOutpatient().AttendedOrDidNotAttendCode = "0" }, nil},
		{"gender code 3", apc, func(r *recT) { r.Demographics.PersonGenderCode = "3" }, []want{w("CODE-003", "person_gender_code")}},
		{"gender code M", apc, func(r *recT) { r.Demographics.PersonGenderCode = "M" }, []want{w("CODE-003", "person_gender_code")}},
		{"admin category 1", apc, func(r *recT) { r.AdministrativeCategoryCode = "1" }, []want{e("CODE-004", "administrative_category_code")}},
		{"admin category 04", apc, func(r *recT) { r.AdministrativeCategoryCode = "04" }, nil},
		{"cds type 020 in apc", apc, func(r *recT) { r.GetApc().CdsType = "020" }, []want{e("CODE-005", "cds_type")}},
		{"cds type 120", apc, func(r *recT) { r.GetApc().CdsType = "120" }, nil},
		{"department type 1", ec, func(r *recT) { r.GetEmergencyCare().EcDepartmentType = "1" }, []want{e("CODE-006", "ec_department_type")}},
		{"department type 04", ec, func(r *recT) { r.GetEmergencyCare().EcDepartmentType = "04" }, nil},
		// CDS-001
		{"uid too long", apc, func(r *recT) { r.CdsUniqueIdentifier = "B" + strings.Repeat("1", 35) }, []want{e("CDS-001", "cds_unique_identifier")}},
		{"uid 35 characters", apc, func(r *recT) { r.CdsUniqueIdentifier = "B" + strings.Repeat("1", 34) }, nil},
		{"uid with underscore", apc, func(r *recT) { r.CdsUniqueIdentifier = "BRJ7_1" }, []want{e("CDS-001", "cds_unique_identifier")}},
		// Several at once, in a stable order.
		{"many failures", apc, func(r *recT) {
			r.Patient.NhsNumber = "9434765918"
			r.Patient.PostcodeOfUsualAddress = "Q1 1AA"
			r.Demographics.PersonGenderCode = "7"
			r.GetApc().CdsType = "999"
		}, []want{e("NHS-002", "nhs_number"), e("PC-001", "postcode_of_usual_address"), w("CODE-003", "person_gender_code"), e("CODE-005", "cds_type")}},
	}
	v := testValidator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := clean(t, tt.d)
			tt.mutate(r)
			got := v.Validate(tt.d, r)
			var gotW []want
			for _, f := range got {
				gotW = append(gotW, want{f.GetRuleId(), f.GetField(), f.GetSeverity()})
				if f.GetMessage() == "" {
					t.Errorf("%s has no message", f.GetRuleId())
				}
				for _, value := range identifierValues(r) {
					if strings.Contains(f.GetMessage(), value) {
						t.Errorf("%s message %q holds a value of the record", f.GetRuleId(), f.GetMessage())
					}
				}
			}
			if !slices.Equal(gotW, tt.want) {
				t.Errorf("failures\n got %v\nwant %v", gotW, tt.want)
			}
			wantErr := false
			for _, x := range tt.want {
				wantErr = wantErr || x.sev == dmicv1.Severity_SEVERITY_ERROR
			}
			if HasErrors(got) != wantErr {
				t.Errorf("HasErrors = %v, want %v", HasErrors(got), wantErr)
			}
		})
	}
}

// identifierValues are the patient-identifiable values of a record, at least
// a few characters long (a one-character value appears in any text).
func identifierValues(r *recT) []string {
	var out []string
	for _, s := range []string{r.GetPatient().GetNhsNumber(), r.GetPatient().GetPersonBirthDate(), r.GetPatient().GetPostcodeOfUsualAddress(), r.GetPatient().GetLocalPatientIdentifier(), r.GetCdsUniqueIdentifier()} {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	return out
}

func TestFutureUsesLocalCalendar(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	// 23:30 UTC on 30 June is 00:30 on 1 July in London (BST).
	now := time.Date(2026, 6, 30, 23, 30, 0, 0, time.UTC)
	r := clean(t, op)
	r.GetOutpatient().AppointmentDate = "2026-07-01"
	if fs := New(WithClock(func() time.Time { return now }), WithLocation(london)).Validate(op, r); fs != nil {
		t.Errorf("London calendar: %v", fs)
	}
	fs := New(WithClock(func() time.Time { return now }), WithLocation(time.UTC)).Validate(op, r)
	if len(fs) != 1 || fs[0].GetRuleId() != RuleDateFuture {
		t.Errorf("UTC calendar: %v", fs)
	}
}

func TestDatasetFromRecordAndMismatch(t *testing.T) {
	v := testValidator()
	r := clean(t, apc)
	// Validated as outpatient, an apc record lacks every outpatient field.
	fs := v.Validate(op, r)
	if len(fs) != 4 || fs[0].GetRuleId() != RuleRequired || fs[0].GetField() != "attendance_identifier" {
		t.Errorf("apc record as outpatient: %v", fs)
	}
	// A record with no activity and no dataset gets the common rules only.
	bare := &recT{CdsUniqueIdentifier: "X1", ProviderCode: "RJ7", Patient: &dmicv1.Patient{PersonBirthDate: "1970-01-01"}}
	if fs := v.Validate(dmicv1.Dataset_DATASET_UNSPECIFIED, bare); fs != nil {
		t.Errorf("bare record: %v", fs)
	}
	// nil record: the ever-required fields are missing, no panic.
	fs = v.Validate(apc, nil)
	if !HasErrors(fs) || fs[0].GetField() != "cds_unique_identifier" {
		t.Errorf("nil record: %v", fs)
	}
}

func TestValidateDoesNotModify(t *testing.T) {
	r := clean(t, apc)
	r.Patient.NhsNumber = "123"
	before := proto.Clone(r)
	testValidator().Validate(apc, r)
	if !proto.Equal(before, r) {
		t.Error("Validate changed the record")
	}
}

func TestCleanRecordDoesNotAllocate(t *testing.T) {
	v := testValidator()
	r := clean(t, apc)
	allocs := testing.AllocsPerRun(200, func() {
		if v.Validate(apc, r) != nil {
			t.Fatal("failures")
		}
	})
	if allocs != 0 {
		t.Errorf("Validate of a clean record: %v allocations", allocs)
	}
}

// The JSON Schema's required fields (docs/record.schema.json) and REQ-001 must
// agree, dataset by dataset, for ordinary records and for deletes.
func TestSchemaRequiredMatchesRules(t *testing.T) {
	data, err := os.ReadFile("../../docs/record.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		OneOf []struct {
			Properties struct {
				Dataset struct {
					Const string `json:"const"`
				} `json:"dataset"`
			} `json:"properties"`
			Required []string `json:"required"`
			If       struct {
				Properties map[string]struct {
					Const string `json:"const"`
				} `json:"properties"`
			} `json:"if"`
			Else struct {
				Required []string `json:"required"`
			} `json:"else"`
		} `json:"oneOf"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if len(schema.OneOf) != 4 {
		t.Fatalf("%d branches", len(schema.OneOf))
	}
	for _, b := range schema.OneOf {
		d, err := record.ParseDataset(b.Properties.Dataset.Const)
		if err != nil {
			t.Fatal(err)
		}
		if b.If.Properties["cds_update_type"].Const != "1" {
			t.Errorf("%s: the delete condition is not cds_update_type = 1", b.Properties.Dataset.Const)
		}
		always := slices.DeleteFunc(slices.Clone(b.Required), func(s string) bool { return s == "dataset" })
		full := append(slices.Clone(always), b.Else.Required...)
		for _, c := range []struct {
			got  []string
			want []string
			what string
		}{{always, requiredFields(d, true), "delete"}, {full, requiredFields(d, false), "record"}} {
			slices.Sort(c.got)
			slices.Sort(c.want)
			if !slices.Equal(c.got, c.want) {
				t.Errorf("%s %s: schema requires %v, REQ-001 requires %v", b.Properties.Dataset.Const, c.what, c.got, c.want)
			}
		}
	}
}

// Every rule id is explained in the provider documentation, and the
// documentation's example records are clean.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../../docs/record-format.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, rule := range []string{RuleRequired, RuleNHSFormat, RuleNHSCheckDigit, RuleNHSRepeated, RuleNHSMissingVerified,
		RuleBirthDateFormat, RuleBirthDateTooEarly, RuleBirthAfterActivity, RuleDateFormat, RuleDateFuture, RuleEpisodeOrder,
		RuleApplicableDateTime, RuleArrivalTime, RulePostcode, RuleProviderCode, RulePracticeCode, RuleAdmissionMethod,
		RuleAttendedCode, RuleGenderCode, RuleAdminCategory, RuleCDSType, RuleDepartmentType, RuleUniqueIdentifier} {
		if !strings.Contains(doc, "`"+rule+"`") {
			t.Errorf("record-format.md does not explain %s", rule)
		}
	}
	if !strings.Contains(doc, SpecVersion) {
		t.Errorf("record-format.md does not name spec version %s", SpecVersion)
	}
	v := testValidator()
	sc := bufio.NewScanner(strings.NewReader(doc))
	sc.Buffer(nil, 1<<20)
	in, n := false, 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```json":
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in:
			r, d, err := record.DecodeJSON([]byte(line), 0)
			if err != nil {
				t.Fatalf("doc example: %v", err)
			}
			n++
			if fs := v.Validate(d, r); fs != nil {
				t.Errorf("doc example %d (%s) has failures %v", n, record.DatasetName(d), fs)
			}
		}
	}
	if n < 4 {
		t.Errorf("found %d doc examples", n)
	}
}
