package spec

import (
	"slices"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// The data dictionary values and formats of the domain brief
// (/work/shared/domain/commissioning-data.md), checked through Validate on
// the built-in provider specifications. Sources, by tag:
//
//	[S3-ID]   section 3, "Identifiers and demographics" (NHS NUMBER STATUS
//	          INDICATOR an2, PERSON GENDER CODE CURRENT, PERSON STATED GENDER
//	          CODE, ETHNIC CATEGORY, ADMINISTRATIVE CATEGORY, the DOB limits,
//	          POSTCODE OF USUAL ADDRESS and its pseudo-postcodes, GP PRACTICE
//	          CODE an6)
//	[S3-APC]  section 3, "APC (120/130/140)" (ADMISSION METHOD, SOURCE OF
//	          ADMISSION / DISCHARGE DESTINATION, DISCHARGE METHOD, PATIENT
//	          CLASSIFICATION, the coding formats, "the CDS activity date is the
//	          episode end")
//	[S3-OP]   section 3, "Outpatients (020)" (ATTENDED/DNA, FIRST
//	          ATTENDANCE, PRIORITY; the appointment date is the activity date)
//	[S3-AE]   section 3, "A&E (010)" (DEPARTMENT TYPE 01-04) and "ECDS (011)"
//	[S3-SUB]  section 3, "Submission protocol" (CDS UPDATE TYPE 9 / 1, CDS
//	          UNIQUE IDENTIFIER <= an35 = B + provider + id, never holding the
//	          NHS number or local id)
//	[S2-COMM] section 2, "Commissioner codes" (an3-5; Q99, X98 not
//	          commissioner codes; default codes V81999, V81998, G9999981)
//	[DD-CODING] NHS Data Dictionary change notice 1496 "Clinical Coding":
//	          ICD-10 min an4 max an6 (X fills an undivided three-character
//	          code), OPCS-4 an4; the brief's "ICD-10: 4 characters, no dot",
//	          "OPCS-4: letter + 3 digits".

// codeCase sets one coded field of a clean record to each accepted code
// (no failure of rule) and each refused one (rule fails on field).
type codeCase struct {
	src       string
	d         dmicv1.Dataset
	field     string
	set       func(r *recT, v string)
	rule      string
	sev       dmicv1.Severity
	ok, notOK []string
}

func TestDictionaryCodeLists(t *testing.T) {
	errS, warnS := dmicv1.Severity_SEVERITY_ERROR, dmicv1.Severity_SEVERITY_WARNING
	setStatus := func(r *recT, v string) { r.Patient.NhsNumberStatusIndicatorCode = v }
	setGender := func(r *recT, v string) { r.Demographics.PersonGenderCode = v }
	setEthnic := func(r *recT, v string) { r.Demographics.EthnicCategory = v }
	setAdmin := func(r *recT, v string) { r.AdministrativeCategoryCode = v }
	cases := []codeCase{
		{"[S3-ID] NHS NUMBER STATUS INDICATOR an2, 01-08, leading zero kept", apc, "nhs_number_status_indicator_code", setStatus, "NHS-006", errS,
			[]string{"01", "02", "03", "04", "05", "06", "07", "08"}, []string{"1", "8", "00", "09", "10", "1 "}},
		{"[S3-ID] PERSON GENDER CODE CURRENT 0 1 2 9, PERSON STATED GENDER CODE 1 2 9 X", op, "person_gender_code", setGender, "CODE-003", warnS,
			[]string{"0", "1", "2", "9", "X"}, []string{"3", "M", "F", "x", "00"}},
		{"[S3-ID] ETHNIC CATEGORY A-H, J-N, P, R, S, Z, 99", ec, "ethnic_category", setEthnic, "CODE-015", errS,
			[]string{"A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "99"},
			[]string{"I", "O", "Q", "T", "Y", "9", "a", "ZZ"}},
		{"[S3-ID] ADMINISTRATIVE CATEGORY 01-04", apc, "administrative_category_code", setAdmin, "CODE-004", errS,
			[]string{"01", "02", "03", "04"}, []string{"1", "05", "00", "99"}},
		{"[S3-APC] ADMISSION METHOD", apc, "admission_method_code", func(r *recT, v string) { r.GetApc().AdmissionMethodCode = v }, "CODE-001", errS,
			[]string{"11", "12", "13", "21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "31", "32", "81", "82", "83"},
			[]string{"14", "26", "28", "2E", "2a", "33", "84", "1", "99"}},
		{"[S3-APC] SOURCE OF ADMISSION", apc, "source_of_admission_code", func(r *recT, v string) { r.GetApc().SourceOfAdmissionCode = v }, "CODE-007", errS,
			[]string{"19", "29", "37", "38", "49", "50", "51", "52", "53", "54", "65", "66", "79", "85", "87", "88", "98", "99"},
			[]string{"10", "20", "40", "55", "70", "89", "9"}},
		{"[S3-APC] DISCHARGE DESTINATION", apc, "discharge_destination_code", func(r *recT, v string) { r.GetApc().DischargeDestinationCode = v }, "CODE-009", errS,
			[]string{"19", "29", "37", "38", "49", "50", "51", "52", "53", "54", "65", "66", "79", "85", "87", "88", "98", "99"},
			[]string{"10", "20", "40", "55", "70", "89", "9"}},
		{"[S3-APC] DISCHARGE METHOD 1-5, 8, 9", apc, "discharge_method_code", func(r *recT, v string) { r.GetApc().DischargeMethodCode = v }, "CODE-008", errS,
			[]string{"1", "2", "3", "4", "5", "8", "9"}, []string{"0", "6", "7", "01"}},
		{"[S3-APC] PATIENT CLASSIFICATION 1-5", apc, "patient_classification_code", func(r *recT, v string) { r.GetApc().PatientClassificationCode = v }, "CODE-010", errS,
			[]string{"1", "2", "3", "4", "5"}, []string{"0", "6", "8", "9", "01"}},
		{"[S3-OP] ATTENDED OR DID NOT ATTEND 0, 2-7", op, "attended_or_did_not_attend_code", func(r *recT, v string) { r.GetOutpatient().AttendedOrDidNotAttendCode = v }, "CODE-002", errS,
			[]string{"0", "2", "3", "4", "5", "6", "7"}, []string{"1", "8", "9", "05"}},
		{"[S3-OP] FIRST ATTENDANCE 1-5", op, "first_attendance_code", func(r *recT, v string) { r.GetOutpatient().FirstAttendanceCode = v }, "CODE-013", errS,
			[]string{"1", "2", "3", "4", "5"}, []string{"0", "6", "9", "01"}},
		{"[S3-OP] PRIORITY 1-3", op, "priority_type_code", func(r *recT, v string) { r.GetOutpatient().PriorityTypeCode = v }, "CODE-014", errS,
			[]string{"1", "2", "3"}, []string{"0", "4", "9", "01"}},
		{"[S3-AE] DEPARTMENT TYPE 01-04", ec, "ec_department_type", func(r *recT, v string) { r.GetEmergencyCare().EcDepartmentType = v }, "CODE-006", errS,
			[]string{"01", "02", "03", "04"}, []string{"1", "00", "05", "4"}},
		// CAM 2025/26 guidance, "CDS scope" (p.5): the admitted patient care
		// types in CAM's scope are 120-160 and the unfinished 180-200; 170
		// (psychiatric census) and the elective admission list (030-110) are not.
		{"[S3-APC, CAM p.5] CDS TYPE of admitted patient care in CAM's scope", apc, "cds_type", func(r *recT, v string) { r.GetApc().CdsType = v }, "CODE-005", errS,
			[]string{"120", "130", "140", "150", "160", "180", "190", "200"}, []string{"170", "030", "110", "210", "020", "011"}},
	}
	// The same code lists hold in every provider specification that has the field.
	for _, d := range []dmicv1.Dataset{op, ec, lf} {
		cases = append(cases,
			codeCase{"[S3-ID] NHS NUMBER STATUS INDICATOR, every data set", d, "nhs_number_status_indicator_code", setStatus, "NHS-006", errS, []string{"01", "07", "08"}, []string{"1", "7"}},
			codeCase{"[S3-ID] ADMINISTRATIVE CATEGORY, every data set", d, "administrative_category_code", setAdmin, "CODE-004", errS, []string{"01", "04"}, []string{"1", "05"}})
	}
	v := testValidator(t)
	for _, c := range cases {
		for _, code := range c.ok {
			r := clean(t, c.d)
			c.set(r, code)
			if fs := v.Validate(r, ValidateInput{Dataset: c.d}).Failures; failsOn(fs, c.rule, c.field) {
				t.Errorf("%s: %s %q refused (%s), want accepted", c.src, c.field, code, c.rule)
			}
		}
		for _, code := range c.notOK {
			r := clean(t, c.d)
			c.set(r, code)
			fs := v.Validate(r, ValidateInput{Dataset: c.d}).Failures
			if !failsOnWith(fs, c.rule, c.field, c.sev) {
				t.Errorf("%s: %s %q accepted, want %s (%v); got %v", c.src, c.field, code, c.rule, c.sev, wants(fs))
			}
		}
	}
}

// [S3-SUB] CDS UPDATE TYPE is 9 (original or replacement) or 1 (delete);
// the record format refuses any other value before a rule runs.
func TestDictionaryCDSUpdateType(t *testing.T) {
	for ut, ok := range map[string]bool{"9": true, "1": true, "2": false, "09": false, "0": false, "D": false} {
		line := `{"dataset":"outpatient","cds_unique_identifier":"BRJ7X1","provider_code":"RJ7","cds_update_type":"` + ut + `"}`
		_, _, err := record.DecodeJSON([]byte(line), 0)
		if (err == nil) != ok {
			t.Errorf("[S3-SUB] cds_update_type %q: decode error %v, want accepted %v", ut, err, ok)
		}
	}
}

// formatCase sets a field and says which failures the provider
// specification gives (none: nil).
type formatCase struct {
	src    string
	d      dmicv1.Dataset
	mutate func(r *recT)
	want   []want
}

func TestDictionaryFormats(t *testing.T) {
	icd := func(v string) func(*recT) { return func(r *recT) { r.GetApc().PrimaryDiagnosisIcd = v } }
	opcs := func(v string) func(*recT) { return func(r *recT) { r.GetApc().PrimaryProcedureOpcs = v } }
	hrg := func(v string) func(*recT) { return func(r *recT) { r.GetApc().HrgCode = v } }
	comm := func(v string) func(*recT) { return func(r *recT) { r.CommissionerCode = v } }
	uid := func(v string) func(*recT) { return func(r *recT) { r.CdsUniqueIdentifier = v } }
	pc := func(v string) func(*recT) { return func(r *recT) { r.Patient.PostcodeOfUsualAddress = v } }
	gp := func(v string) func(*recT) { return func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = v } }
	cases := []formatCase{
		{"[DD-CODING] ICD-10 4 characters, no dot", apc, icd("I219"), nil},
		{"[DD-CODING] ICD-10 X fills an undivided 3-character code", apc, icd("I10X"), nil},
		{"[DD-CODING] ICD-10 fifth character filler and dagger (max an6)", apc, icd("A170-D"), nil},
		{"[DD-CODING] ICD-10 with a dot", apc, icd("I21.9"), []want{e("CLIN-001", "primary_diagnosis_icd")}},
		{"[DD-CODING] ICD-10 three characters: the X filler is missing", apc, icd("J45"), []want{e("CLIN-001", "primary_diagnosis_icd")}},
		{"[DD-CODING] ICD-10 seven characters", apc, icd("I219-D1"), []want{e("CLIN-001", "primary_diagnosis_icd")}},
		{"[DD-CODING] ICD-10 on an outpatient record", op, func(r *recT) { r.GetOutpatient().PrimaryDiagnosisIcd = "I21.9" }, []want{e("CLIN-001", "primary_diagnosis_icd")}},
		{"[DD-CODING] OPCS-4 letter + 3 digits", apc, opcs("W371"), nil},
		{"[DD-CODING] OPCS-4 three characters", apc, opcs("W37"), []want{e("CLIN-002", "primary_procedure_opcs")}},
		{"[DD-CODING] OPCS-4 with a dot", apc, opcs("W37.1"), []want{e("CLIN-002", "primary_procedure_opcs")}},
		{"[DD-CODING] secondary ICD-10 codes, each as the primary", apc, func(r *recT) { r.GetApc().SecondaryDiagnosesIcd = "E119;J45" },
			[]want{w("CLIN-006", "secondary_diagnoses_icd")}},
		{"[DD-CODING] secondary OPCS-4 codes, each as the primary", apc, func(r *recT) { r.GetApc().SecondaryProceduresOpcs = "K634;Y981" }, nil},
		{"[S3-APC] HRG4+ 5 characters", apc, hrg("HN12A"), nil},
		{"[S3-APC] HRG4+ UZ01Z ungroupable: flagged", apc, hrg("UZ01Z"), []want{w("CLIN-004", "hrg_code")}},
		{"[S3-APC] HRG4+ 4 characters", apc, hrg("HN12"), []want{e("CLIN-003", "hrg_code")}},
		{"[S2-COMM] CODE OF COMMISSIONER an3", op, comm("08J"), nil},
		{"[S2-COMM] CODE OF COMMISSIONER an5", op, comm("36L00"), nil},
		{"[S2-COMM] CODE OF COMMISSIONER an2", op, comm("08"), []want{e("ORG-004", "commissioner_code")}},
		{"[S2-COMM] CODE OF COMMISSIONER an6", op, comm("36L000"), []want{e("ORG-004", "commissioner_code")}},
		{"[S2-COMM] Q99 is not a commissioner code", op, comm("Q99"), []want{w("ORG-005", "commissioner_code")}},
		{"[S2-COMM] X98 is not a commissioner code", op, comm("X98"), []want{w("ORG-005", "commissioner_code")}},
		{"[S3-SUB] CDS UNIQUE IDENTIFIER 35 characters", ec, uid("BRJ7" + "0123456789012345678901234567890"), nil},
		{"[S3-SUB] CDS UNIQUE IDENTIFIER 36 characters", ec, uid("BRJ7" + "01234567890123456789012345678901"), []want{e("CDS-001", "cds_unique_identifier")}},
		{"[S3-SUB] CDS UNIQUE IDENTIFIER not B + provider code", ec, uid("XRJ7000001"), []want{w("CDS-002", "cds_unique_identifier")}},
		{"[S3-SUB] CDS UNIQUE IDENTIFIER holding the NHS number", ec, uid("BRJ79449305552"), []want{e("CDS-004", "cds_unique_identifier")}},
		{"[S3-SUB] CDS UNIQUE IDENTIFIER holding the local patient id", apc, uid("BRJ7LPI0000001"), []want{e("CDS-004", "cds_unique_identifier")}},
		{"[S3-SUB] a spell number holding the NHS number", apc, func(r *recT) { r.GetApc().HospitalProviderSpellNumber = "9434765919" },
			[]want{e("PID-001", "hospital_provider_spell_number")}},
		{"[S3-ID] GP practice default V81999", op, gp("V81999"), nil},
		{"[S3-ID] GP practice default V81998", op, gp("V81998"), nil},
		{"[S3-ID] GP practice default V81997", op, gp("V81997"), nil},
		{"[S2-COMM] GP default G9999981 (no registered GP)", op, gp("G9999981"), nil},
		{"[S3-ID] GP PRACTICE CODE an6 letter + 5 digits", op, gp("H850201"), []want{w("ORG-002", "general_medical_practice_code")}},
	}
	// Pseudo-postcodes are valid values of POSTCODE OF USUAL ADDRESS [S3-ID].
	for _, p := range []string{"ZZ99 3VZ", "ZZ99 3WZ", "ZZ99 3CZ", "ZZ99 1WZ", "ZZ99 2WZ", "ZZ99 3GZ", "ZZ99 6CZ"} {
		cases = append(cases, formatCase{"[S3-ID] pseudo-postcode " + p, op, pc(p), nil})
	}
	// The practice directory knows the clean records' practices only: a
	// default code is never looked up in it.
	v := testValidator(t, WithPractices(practiceSet{"H85001": true, "H85020": true}))
	runFormatCases(t, v, cases)
}

// [S3-ID] DOB is invalid before 1880-01-01 or after the activity date; the
// activity date is the APC episode end [S3-APC], the outpatient appointment
// date [S3-OP], the emergency care arrival date [S3-AE].
func TestDictionaryBirthDate(t *testing.T) {
	dob := func(v string) func(*recT) { return func(r *recT) { r.Patient.PersonBirthDate = v } }
	both := func(fs ...func(*recT)) func(*recT) {
		return func(r *recT) {
			for _, f := range fs {
				f(r)
			}
		}
	}
	// The clean records' activity dates: apc episode 2026-04-02 to
	// 2026-04-05, outpatient 2026-04-08, emergency care arrival 2026-04-09
	// (departure 2026-04-10).
	cases := []formatCase{
		{"1880-01-01 is the earliest valid DOB", apc, dob("1880-01-01"), nil},
		{"1879-12-31 is before 1880-01-01", apc, dob("1879-12-31"), []want{e("DOB-002", "person_birth_date")}},
		{"apc: born on the episode end date", apc, dob("2026-04-05"), nil},
		{"apc: born during the episode (a birth episode)", apc, both(dob("2026-04-03"), func(r *recT) { r.GetApc().CdsType = "120" }), nil},
		{"apc: born the day after the episode end", apc, dob("2026-04-06"), []want{e("DOB-003", "person_birth_date")}},
		{"apc: the episode end, not the spell discharge, is the activity date", apc,
			both(dob("2026-04-06"), func(r *recT) { r.GetApc().DischargeDateHospitalProviderSpell = "2026-04-07" }), []want{e("DOB-003", "person_birth_date")}},
		{"outpatient: born on the appointment date", op, dob("2026-04-08"), nil},
		{"outpatient: born the day after the appointment", op, dob("2026-04-09"), []want{e("DOB-003", "person_birth_date")}},
		{"emergency care: born on the arrival date", ec, dob("2026-04-09"), nil},
		{"emergency care: born after arrival, before departure", ec, dob("2026-04-10"), []want{e("DOB-003", "person_birth_date")}},
		{"local flow: born the day after the activity date", lf, dob("2026-04-13"), []want{e("DOB-003", "person_birth_date")}},
	}
	v := testValidator(t)
	runFormatCases(t, v, cases)
}

// CODE-032: a service line the year's list keeps but whose Effective_To is
// before the record's CAM date is flagged (a warning: the code is a
// published code of the year, CODE-031 passes, and CAM reads it as no line
// of the year: docs/commissioner-assignment.md, choice 21). Reference data:
// the sample of cam_service_codes_2024-25_2025-26.csv, where NCBPH26E ends
// 2021-03-31 in the 24/25 list and NCBPS01C is open.
func TestDictionaryRetiredServiceLine(t *testing.T) {
	ref, err := refdata.LoadDir("../../../reference/sample")
	if err != nil {
		t.Fatal(err)
	}
	v := testValidator(t, WithServiceCodes(ref))
	for _, tt := range []struct {
		day, code string
		want      []want
	}{
		{"2024-06-15", "NCBPH26E", []want{w("CODE-032", "service_code")}},
		{"2024-06-15", "NCBPS01C", nil},
		{"2025-06-15", "NCBPS01C", nil},
		{"2025-06-15", "NCBPH26E", []want{e("CODE-031", "service_code")}}, // not in the 25/26 list at all
	} {
		r := clean(t, op)
		camCode(tt.day, tt.code)(r)
		got := wants(v.Validate(r, ValidateInput{Dataset: op}).Failures)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s on %s: failures %v, want %v", tt.code, tt.day, got, tt.want)
		}
	}
}

// runFormatCases validates each case's changed clean record and compares
// its failures with the case's.
func runFormatCases(t *testing.T, v *Validator, cases []formatCase) {
	t.Helper()
	for _, c := range cases {
		r := clean(t, c.d)
		c.mutate(r)
		got := wants(v.Validate(r, ValidateInput{Dataset: c.d}).Failures)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: failures %v, want %v", c.src, got, c.want)
		}
	}
}

func failsOn(fs []*dmicv1.Failure, rule, field string) bool {
	for _, f := range fs {
		if f.GetRuleId() == rule && f.GetField() == field {
			return true
		}
	}
	return false
}

func failsOnWith(fs []*dmicv1.Failure, rule, field string, sev dmicv1.Severity) bool {
	for _, f := range fs {
		if f.GetRuleId() == rule && f.GetField() == field && f.GetSeverity() == sev {
			return true
		}
	}
	return false
}
