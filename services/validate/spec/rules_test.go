package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// ruleCase changes a clean record of dataset d and says what the provider
// specification finds (want) and, for apc, outpatient and emergency care,
// what the national one finds (nat; nil means the same as want, an empty
// non-nil slice means nothing).
type ruleCase struct {
	name      string
	d         dmicv1.Dataset
	mutate    func(r *recT)
	want      []want
	nat       []want
	dup       int64
	practices PracticeDirectory
	services  ServiceCodeDirectory
	hrgs      HRGDirectory
	// all runs the case on every dataset (d is ignored): its change is to
	// common fields and its outcome the same everywhere.
	all bool
}

// setHRG sets the HRG of any dataset's record.
func setHRG(r *recT, v string) {
	switch a := r.GetActivity().(type) {
	case *dmicv1.CommissioningRecord_Apc:
		a.Apc.HrgCode = v
	case *dmicv1.CommissioningRecord_Outpatient:
		a.Outpatient.HrgCode = v
	case *dmicv1.CommissioningRecord_EmergencyCare:
		a.EmergencyCare.HrgCode = v
	case *dmicv1.CommissioningRecord_LocalFlow:
		a.LocalFlow.HrgCode = v
	}
}

var none = []want{}

func ruleCases() []ruleCase {
	return []ruleCase{
		// REQ-001: mandatory fields. In the national extract only the
		// record id, provider and activity date are mandatory.
		{name: "apc missing mandatory", d: apc, mutate: func(r *recT) {
			r.CdsUniqueIdentifier, r.ProviderCode, r.Patient.PersonBirthDate = "", "", ""
			a := r.GetApc()
			a.CdsType, a.StartDateEpisode, a.AdmissionMethodCode, a.TreatmentFunctionCode = "", "", "", ""
		}, want: []want{e("REQ-001", "cds_unique_identifier"), e("REQ-001", "provider_code"), e("REQ-001", "person_birth_date"),
			e("REQ-001", "cds_type"), e("REQ-001", "admission_method_code"), e("REQ-001", "start_date_episode"), e("REQ-001", "treatment_function_code")},
			nat: []want{e("REQ-001", "cds_unique_identifier"), e("REQ-001", "provider_code"), e("REQ-001", "start_date_episode"),
				w("REQ-002", "person_birth_date"), w("REQ-002", "cds_type"), w("REQ-002", "admission_method_code"), w("REQ-002", "treatment_function_code")}},
		{name: "outpatient missing mandatory", d: op, mutate: func(r *recT) {
			o := r.GetOutpatient()
			o.AttendanceIdentifier, o.AppointmentDate, o.AttendedOrDidNotAttendCode, o.TreatmentFunctionCode = "", "", "", ""
		}, want: []want{e("REQ-001", "attendance_identifier"), e("REQ-001", "appointment_date"), e("REQ-001", "attended_or_did_not_attend_code"), e("REQ-001", "treatment_function_code")},
			nat: []want{e("REQ-001", "appointment_date"), w("REQ-002", "treatment_function_code"), w("REQ-002", "attendance_identifier"), w("REQ-002", "attended_or_did_not_attend_code")}},
		{name: "emergency care missing mandatory", d: ec, mutate: func(r *recT) {
			x := r.GetEmergencyCare()
			x.EcAttendanceIdentifier, x.EcArrivalDate, x.EcDepartmentType = "", "", ""
		}, want: []want{e("REQ-001", "ec_attendance_identifier"), e("REQ-001", "ec_arrival_date"), e("REQ-001", "ec_department_type")},
			nat: []want{e("REQ-001", "ec_arrival_date"), w("REQ-002", "ec_attendance_identifier"), w("REQ-002", "ec_department_type")}},
		{name: "local flow missing mandatory", d: lf, mutate: func(r *recT) {
			r.GetLocalFlow().ActivityDate, r.GetLocalFlow().PointOfDeliveryCode = "", ""
		}, want: []want{e("REQ-001", "activity_date"), e("REQ-001", "point_of_delivery_code")}},
		{name: "delete needs only id and provider", d: op, mutate: func(r *recT) {
			*r = recT{CdsUniqueIdentifier: "BRJ700000000000000000002", ProviderCode: "RJ7", UpdateType: dmicv1.UpdateType_UPDATE_TYPE_DELETE,
				Activity: &dmicv1.CommissioningRecord_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{}}}
		}},
		{name: "local flow delete needs only id and provider", d: lf, mutate: func(r *recT) {
			*r = recT{CdsUniqueIdentifier: "PLCM-1", ProviderCode: "RJ7", UpdateType: dmicv1.UpdateType_UPDATE_TYPE_DELETE,
				Activity: &dmicv1.CommissioningRecord_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{}}}
		}},
		{name: "delete without id", d: apc, mutate: func(r *recT) {
			r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			r.CdsUniqueIdentifier = ""
			r.Patient = nil
		}, want: []want{e("REQ-001", "cds_unique_identifier")}},
		{name: "delete without provider", d: ec, mutate: func(r *recT) {
			r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			r.ProviderCode = ""
		}, want: []want{e("REQ-001", "provider_code")}},
		{name: "delete values still checked", d: apc, mutate: func(r *recT) {
			r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			r.Patient.NhsNumber = "9434765918"
			r.SiteCode = ""
		}, want: []want{e("NHS-002", "nhs_number")}},
		// REQ-002: required fields.
		{name: "apc missing required", d: apc, mutate: func(r *recT) {
			r.SiteCode, r.ApplicableDateTime = "", ""
			r.GetApc().EndDateEpisode, r.GetApc().PrimaryDiagnosisIcd = "", ""
		}, want: []want{w("REQ-002", "cds_applicable_date_time"), w("REQ-002", "site_code"), w("REQ-002", "primary_diagnosis_icd"), w("REQ-003", "end_date_episode")}},
		{name: "common required", d: apc, mutate: func(r *recT) {
			r.CommissionerCode, r.AdministrativeCategoryCode, r.Patient.NhsNumberStatusIndicatorCode = "", "", ""
			r.Patient.PostcodeOfUsualAddress = ""
			r.Demographics = nil
		}, want: []want{w("REQ-002", "commissioner_code"), w("REQ-002", "administrative_category_code"), w("REQ-002", "nhs_number_status_indicator_code"),
			w("REQ-002", "postcode_of_usual_address"), w("REQ-002", "person_gender_code"), w("REQ-002", "ethnic_category"), w("REQ-002", "general_medical_practice_code")}},
		{name: "outpatient missing required", d: op, mutate: func(r *recT) {
			r.GetOutpatient().FirstAttendanceCode, r.GetOutpatient().PriorityTypeCode = "", ""
		}, want: []want{w("REQ-002", "first_attendance_code"), w("REQ-002", "priority_type_code")}},
		{name: "emergency care missing required", d: ec, mutate: func(r *recT) {
			x := r.GetEmergencyCare()
			x.EcArrivalTime, x.EcChiefComplaintSnomedCt, x.EcDepartureDate = "", "", ""
		}, want: []want{w("REQ-002", "ec_arrival_time"), w("REQ-002", "ec_chief_complaint_snomed_ct"), w("REQ-002", "ec_departure_date")}},
		{name: "local flow missing required", d: lf, mutate: func(r *recT) { r.CommissionerCode = "" },
			want: []want{w("REQ-002", "commissioner_code")}},
		{name: "local flow optional fields", d: lf, mutate: func(r *recT) {
			r.SiteCode, r.AdministrativeCategoryCode, r.ApplicableDateTime = "", "", ""
			r.GetLocalFlow().TreatmentFunctionCode, r.GetLocalFlow().HrgCode = "", ""
		}},
		{name: "delete needs no required field", d: op, mutate: func(r *recT) {
			r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			r.SiteCode, r.CommissionerCode = "", ""
			r.GetOutpatient().FirstAttendanceCode = ""
		}},
		// CDS-003: only a record not from the decoder can lack it (the decoder
		// reads an absent update type as 9).
		{name: "update type missing", all: true, mutate: func(r *recT) { r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_UNSPECIFIED },
			want: []want{w("CDS-003", "cds_update_type")}},
		// CDS-001, CDS-002
		{name: "uid too long", all: true, mutate: func(r *recT) { r.CdsUniqueIdentifier = "BRJ7" + strings.Repeat("1", 32) },
			want: []want{e("CDS-001", "cds_unique_identifier")}},
		{name: "uid 35 characters", d: apc, mutate: func(r *recT) { r.CdsUniqueIdentifier = "BRJ7" + strings.Repeat("1", 31) }},
		{name: "uid with underscore", d: op, mutate: func(r *recT) { r.CdsUniqueIdentifier = "BRJ7_1" },
			want: []want{e("CDS-001", "cds_unique_identifier")}},
		{name: "uid not B and provider", d: ec, mutate: func(r *recT) { r.CdsUniqueIdentifier = "XRJ700000001" },
			want: []want{w("CDS-002", "cds_unique_identifier")}},
		{name: "uid other provider", d: apc, mutate: func(r *recT) { r.CdsUniqueIdentifier = "BRJ100000001" },
			want: []want{w("CDS-002", "cds_unique_identifier")}},
		// The provider code in lower case is the same organisation: its
		// identifier BRJ7... still starts with B and the provider code.
		{name: "uid of a provider code in lower case", d: apc, mutate: func(r *recT) { r.ProviderCode = "rj7" }},
		{name: "uid only B and provider", d: op, mutate: func(r *recT) { r.CdsUniqueIdentifier = "BRJ7" },
			want: []want{w("CDS-002", "cds_unique_identifier")}},
		{name: "uid of a five-character provider", d: apc, mutate: func(r *recT) {
			r.ProviderCode, r.CdsUniqueIdentifier = "NT401", "BNT4010001"
		}},
		{name: "local flow uid is the flow's own", d: lf, mutate: func(r *recT) { r.CdsUniqueIdentifier = "LFRJ7000000000001" }},
		// DUP-001
		{name: "uid used earlier in the submission", all: true, dup: 7, want: []want{e("DUP-001", "cds_unique_identifier")}},
		{name: "local flow id used earlier", d: lf, dup: 1, want: []want{e("DUP-001", "cds_unique_identifier")}},
		// ORG-001, ORG-003, ORG-004, ORG-005
		{name: "provider too short", all: true, mutate: func(r *recT) { r.ProviderCode = "RJ" }, want: []want{e("ORG-001", "provider_code")}},
		{name: "provider too long", d: apc, mutate: func(r *recT) {
			r.ProviderCode, r.CdsUniqueIdentifier = "RJ7001", "BRJ700100001"
		}, want: []want{e("ORG-001", "provider_code")}},
		{name: "provider not alphanumeric", d: lf, mutate: func(r *recT) { r.ProviderCode = "RJ-7" }, want: []want{e("ORG-001", "provider_code")}},
		{name: "site too short", all: true, mutate: func(r *recT) { r.SiteCode = "RJ70" }, want: []want{w("ORG-003", "site_code")}},
		{name: "site not alphanumeric", d: lf, mutate: func(r *recT) { r.SiteCode = "RJ7-01" }, want: []want{w("ORG-003", "site_code")}},
		{name: "site nine characters", d: ec, mutate: func(r *recT) { r.SiteCode = "RJ7010000" }},
		{name: "commissioner too short", all: true, mutate: func(r *recT) { r.CommissionerCode = "36" },
			want: []want{e("ORG-004", "commissioner_code")}, nat: []want{w("ORG-004", "commissioner_code")}},
		{name: "commissioner private", d: op, mutate: func(r *recT) { r.CommissionerCode = "VPP00" }},
		{name: "commissioner Q99", all: true, mutate: func(r *recT) { r.CommissionerCode = "Q99" }, want: []want{w("ORG-005", "commissioner_code")}},
		{name: "commissioner X98", d: lf, mutate: func(r *recT) { r.CommissionerCode = "X98" }, want: []want{w("ORG-005", "commissioner_code")}},
		// DATE-004
		{name: "applicable date-time not RFC 3339", all: true, mutate: func(r *recT) { r.ApplicableDateTime = "2026-04-06 09:15" },
			want: []want{e("DATE-004", "cds_applicable_date_time")}},
		{name: "applicable date-time UTC", d: apc, mutate: func(r *recT) { r.ApplicableDateTime = "2026-04-06T09:15:00.123Z" }},
		// DATE-008: the applicable date/time orders a record's revisions
		// (CDS net change: "SUS applies versions in time order"), so one in
		// the future would outrank every later correction.
		{name: "applicable date-time tomorrow", all: true, mutate: func(r *recT) { r.ApplicableDateTime = fromToday(1) + "T00:30:00Z" },
			want: []want{e("DATE-008", "cds_applicable_date_time")}, nat: []want{w("DATE-008", "cds_applicable_date_time")}},
		{name: "applicable date-time far in the future", d: lf, mutate: func(r *recT) { r.ApplicableDateTime = "2999-01-01T00:00:00Z" },
			want: []want{e("DATE-008", "cds_applicable_date_time")}},
		{name: "applicable date-time late today", all: true, mutate: func(r *recT) { r.ApplicableDateTime = fromToday(0) + "T23:59:59Z" }},
		// NHS-001..006
		{name: "nhs number too short", all: true, mutate: func(r *recT) { r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "943476591", "01" }, want: []want{e("NHS-001", "nhs_number")}},
		{name: "nhs number with spaces", d: op, mutate: func(r *recT) { r.Patient.NhsNumber = "943 476 5919" }, want: []want{e("NHS-001", "nhs_number")}},
		{name: "nhs number with a letter", d: ec, mutate: func(r *recT) { r.Patient.NhsNumber = "943476591X" }, want: []want{e("NHS-001", "nhs_number")}},
		{name: "nhs number bad check digit", all: true, mutate: func(r *recT) { r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "9434765918", "01" }, want: []want{e("NHS-002", "nhs_number")}},
		{name: "nhs number check value 10", d: op, mutate: func(r *recT) { r.Patient.NhsNumber = "1234567890" }, want: []want{e("NHS-002", "nhs_number")}},
		{name: "nhs number valid 9449305552", d: apc, mutate: func(r *recT) { r.Patient.NhsNumber = "9449305552" }},
		{name: "nhs number valid 4010232137", d: ec, mutate: func(r *recT) { r.Patient.NhsNumber = "4010232137" }},
		{name: "nhs number repeated zero", all: true, mutate: func(r *recT) { r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "0000000000", "01" }, want: []want{e("NHS-003", "nhs_number")}},
		{name: "nhs number repeated one", d: ec, mutate: func(r *recT) { r.Patient.NhsNumber = "1111111111" }, want: []want{e("NHS-003", "nhs_number")}},
		{name: "nhs number missing while verified", all: true, mutate: func(r *recT) { r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "", "01" },
			want: []want{e("NHS-004", "nhs_number")}, nat: []want{w("NHS-004", "nhs_number")}},
		{name: "nhs number missing while present not traced", d: op, mutate: func(r *recT) {
			r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "", "02"
		}, want: []want{e("NHS-004", "nhs_number")}, nat: []want{w("NHS-004", "nhs_number")}},
		{name: "nhs number missing, trace required", d: apc, mutate: func(r *recT) {
			r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "", "03"
		}},
		{name: "nhs number missing, no status", d: lf, mutate: func(r *recT) {
			r.Patient.NhsNumberStatusIndicatorCode = ""
		}, want: []want{w("REQ-002", "nhs_number_status_indicator_code")}},
		{name: "nhs number present with status 07", d: lf, mutate: func(r *recT) { r.Patient.NhsNumber = "9434765919" },
			want: []want{w("NHS-005", "nhs_number")}},
		{name: "nhs number present with status 07", all: true, mutate: func(r *recT) {
			r.Patient.NhsNumber, r.Patient.NhsNumberStatusIndicatorCode = "9434765919", "07"
		},
			want: []want{w("NHS-005", "nhs_number")}},
		{name: "nhs status not a code", all: true, mutate: func(r *recT) { r.Patient.NhsNumberStatusIndicatorCode = "1" },
			want: []want{e("NHS-006", "nhs_number_status_indicator_code")}, nat: []want{w("NHS-006", "nhs_number_status_indicator_code")}},
		{name: "nhs status 09", d: lf, mutate: func(r *recT) { r.Patient.NhsNumberStatusIndicatorCode = "09" },
			want: []want{e("NHS-006", "nhs_number_status_indicator_code")}},
		{name: "nhs status 08", d: op, mutate: func(r *recT) { r.Patient.NhsNumberStatusIndicatorCode = "08" }},
		// DOB-001..003
		{name: "dob not a date", all: true, mutate: func(r *recT) { r.Patient.PersonBirthDate = "14/03/1970" }, want: []want{e("DOB-001", "person_birth_date")}},
		{name: "dob impossible day", d: op, mutate: func(r *recT) { r.Patient.PersonBirthDate = "1970-02-30" }, want: []want{e("DOB-001", "person_birth_date")}},
		{name: "dob 29 February of a common year", d: lf, mutate: func(r *recT) { r.Patient.PersonBirthDate = "1961-02-29" }, want: []want{e("DOB-001", "person_birth_date")}},
		{name: "dob 29 February 2000", d: ec, mutate: func(r *recT) { r.Patient.PersonBirthDate = "2000-02-29" }},
		{name: "dob before 1880", all: true, mutate: func(r *recT) { r.Patient.PersonBirthDate = "1879-12-31" },
			want: []want{e("DOB-002", "person_birth_date")}, nat: []want{w("DOB-002", "person_birth_date")}},
		{name: "dob on 1880-01-01", all: true, mutate: func(r *recT) { r.Patient.PersonBirthDate = "1880-01-01" }},
		{name: "dob on the activity date", d: apc, mutate: func(r *recT) { r.Patient.PersonBirthDate = "2026-04-05" }},
		{name: "dob the day after the activity date", d: apc, mutate: func(r *recT) { r.Patient.PersonBirthDate = "2026-04-06" },
			want: []want{e("DOB-003", "person_birth_date")}, nat: []want{w("DOB-003", "person_birth_date")}},
		{name: "dob after an open episode's start", d: apc, mutate: func(r *recT) {
			a := r.GetApc()
			a.EndDateEpisode, a.DischargeDateHospitalProviderSpell, a.DischargeMethodCode, a.DischargeDestinationCode = "", "", "", ""
			r.Patient.PersonBirthDate = "2026-04-03"
		}, want: []want{w("REQ-003", "end_date_episode"), e("DOB-003", "person_birth_date")},
			nat: []want{w("REQ-003", "end_date_episode"), w("DOB-003", "person_birth_date")}},
		// REQ-003: a finished episode (CDS 120-140) or other birth or delivery
		// event (150, 160) has an end date; an unfinished episode (180-200,
		// in CAM's scope, guidance p.5) has none, and is dated by its start.
		{name: "unfinished episode with no end date", d: apc, mutate: func(r *recT) {
			a := r.GetApc()
			a.CdsType = "190"
			a.EndDateEpisode, a.DischargeDateHospitalProviderSpell, a.DischargeMethodCode, a.DischargeDestinationCode = "", "", "", ""
		}},
		{name: "other delivery event with no end date", d: apc, mutate: func(r *recT) {
			a := r.GetApc()
			a.CdsType = "160"
			a.EndDateEpisode, a.DischargeDateHospitalProviderSpell, a.DischargeMethodCode, a.DischargeDestinationCode = "", "", "", ""
		}, want: []want{w("REQ-003", "end_date_episode")}},
		{name: "psychiatric census is out of scope", d: apc, mutate: func(r *recT) { r.GetApc().CdsType = "170" },
			want: []want{e("CODE-005", "cds_type")}, nat: []want{w("CODE-005", "cds_type")}},
		{name: "dob after the appointment", d: op, mutate: func(r *recT) { r.Patient.PersonBirthDate = "2026-04-09" },
			want: []want{e("DOB-003", "person_birth_date")}, nat: []want{w("DOB-003", "person_birth_date")}},
		{name: "dob after the arrival", d: ec, mutate: func(r *recT) { r.Patient.PersonBirthDate = "2026-04-10" },
			want: []want{e("DOB-003", "person_birth_date")}, nat: []want{w("DOB-003", "person_birth_date")}},
		{name: "dob after the local activity", d: lf, mutate: func(r *recT) { r.Patient.PersonBirthDate = "2026-04-13" },
			want: []want{e("DOB-003", "person_birth_date")}},
		{name: "dob on a leap day before a leap-day activity", d: lf, mutate: func(r *recT) {
			r.Patient.PersonBirthDate, r.GetLocalFlow().ActivityDate = "2024-02-29", "2024-02-29"
		}},
		// DATE-001, DATE-002
		{name: "episode end not a date", d: apc, mutate: func(r *recT) { r.GetApc().EndDateEpisode = "2026-04-32" },
			want: []want{e("DATE-001", "end_date_episode")}},
		{name: "every bad apc date reported", d: apc, mutate: func(r *recT) {
			a := r.GetApc()
			a.StartDateHospitalProviderSpell, a.StartDateEpisode, a.EndDateEpisode, a.DischargeDateHospitalProviderSpell = "x", "2026-4-2", "20260405", "2026-13-01"
		}, want: []want{e("DATE-001", "start_date_hospital_provider_spell"), e("DATE-001", "start_date_episode"), e("DATE-001", "end_date_episode"), e("DATE-001", "discharge_date_hospital_provider_spell")}},
		{name: "appointment not a date", d: op, mutate: func(r *recT) { r.GetOutpatient().AppointmentDate = "08/04/2026" }, want: []want{e("DATE-001", "appointment_date")}},
		{name: "departure not a date", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcDepartureDate = "tomorrow" }, want: []want{e("DATE-001", "ec_departure_date")}},
		{name: "local activity not a date", d: lf, mutate: func(r *recT) { r.GetLocalFlow().ActivityDate = "2026-02" }, want: []want{e("DATE-001", "activity_date")}},
		{name: "local activity on a leap day that is not", d: lf, mutate: func(r *recT) { r.GetLocalFlow().ActivityDate = "2026-02-29" }, want: []want{e("DATE-001", "activity_date")}},
		{name: "appointment today", d: op, mutate: func(r *recT) { r.GetOutpatient().AppointmentDate = fromToday(0) }},
		{name: "appointment tomorrow", d: op, mutate: func(r *recT) { r.GetOutpatient().AppointmentDate = fromToday(1) },
			want: []want{e("DATE-002", "appointment_date")}, nat: []want{w("DATE-002", "appointment_date")}},
		{name: "discharge in the future", d: apc, mutate: func(r *recT) { r.GetApc().DischargeDateHospitalProviderSpell = fromToday(245) },
			want: []want{e("DATE-002", "discharge_date_hospital_provider_spell")}, nat: []want{w("DATE-002", "discharge_date_hospital_provider_spell")}},
		{name: "arrival and departure in the future", d: ec, mutate: func(r *recT) {
			r.GetEmergencyCare().EcArrivalDate, r.GetEmergencyCare().EcDepartureDate = fromToday(31), fromToday(32)
		}, want: []want{e("DATE-002", "ec_arrival_date"), e("DATE-002", "ec_departure_date")},
			nat: []want{w("DATE-002", "ec_arrival_date"), w("DATE-002", "ec_departure_date")}},
		{name: "local activity in the future", d: lf, mutate: func(r *recT) { r.GetLocalFlow().ActivityDate = fromToday(1000) }, want: []want{e("DATE-002", "activity_date")}},
		// DATE-003, DATE-005, DATE-006, DATE-007
		{name: "episode starts after it ends", d: apc, mutate: func(r *recT) { r.GetApc().StartDateEpisode = "2026-04-06" },
			want: []want{e("DATE-003", "start_date_episode")}},
		{name: "episode of one day", d: apc, mutate: func(r *recT) { r.GetApc().StartDateEpisode = "2026-04-05" }},
		{name: "episode ends after the discharge", d: apc, mutate: func(r *recT) { r.GetApc().DischargeDateHospitalProviderSpell = "2026-04-04" },
			want: []want{e("DATE-005", "end_date_episode")}},
		{name: "spell starts after the episode", d: apc, mutate: func(r *recT) { r.GetApc().StartDateHospitalProviderSpell = "2026-04-03" },
			want: []want{e("DATE-006", "start_date_hospital_provider_spell")}},
		{name: "spell, episode and discharge on one day", d: apc, mutate: func(r *recT) {
			a := r.GetApc()
			a.StartDateHospitalProviderSpell, a.StartDateEpisode, a.EndDateEpisode, a.DischargeDateHospitalProviderSpell = "2026-04-05", "2026-04-05", "2026-04-05", "2026-04-05"
		}},
		{name: "departure before arrival", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcDepartureDate = "2026-04-08" },
			want: []want{e("DATE-007", "ec_departure_date")}},
		{name: "departure on the arrival day", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcDepartureDate = "2026-04-09" }},
		// TIME-001
		{name: "arrival time not a time", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcArrivalTime = "25:00" }, want: []want{w("TIME-001", "ec_arrival_time")}},
		{name: "arrival time with seconds", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcArrivalTime = "01:12:59" }},
		// PC-001
		{name: "postcode lower case without space", d: apc, mutate: func(r *recT) { r.Patient.PostcodeOfUsualAddress = "sw1a1aa" }},
		{name: "postcode pseudo not known", d: op, mutate: func(r *recT) { r.Patient.PostcodeOfUsualAddress = "ZZ99 3WZ" }},
		{name: "postcode pseudo India", d: lf, mutate: func(r *recT) { r.Patient.PostcodeOfUsualAddress = "zz996cz" }},
		{name: "postcode Q first", all: true, mutate: func(r *recT) { r.Patient.PostcodeOfUsualAddress = "Q1 1AA" },
			want: []want{e("PC-001", "postcode_of_usual_address")}, nat: []want{w("PC-001", "postcode_of_usual_address")}},
		{name: "postcode C inward", d: ec, mutate: func(r *recT) { r.Patient.PostcodeOfUsualAddress = "SW1A 1CA" },
			want: []want{e("PC-001", "postcode_of_usual_address")}, nat: []want{w("PC-001", "postcode_of_usual_address")}},
		{name: "postcode truncated", d: lf, mutate: func(r *recT) { r.Patient.PostcodeOfUsualAddress = "SM1 2A" },
			want: []want{e("PC-001", "postcode_of_usual_address")}},
		// ORG-002, ORG-006
		{name: "practice code bad", all: true, mutate: func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "H8500" }, want: []want{w("ORG-002", "general_medical_practice_code")}},
		// A patient registered in the Channel Islands is recorded by the
		// practice's ODS code, which CAM step B reads (guidance p.29:
		// "identify these patients via ... their registered GP practice
		// code"; epraccur high level health geography YAD-YAF).
		{name: "practice code in Jersey", d: apc, mutate: func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "JER002" }},
		{name: "practice code in Alderney", d: op, mutate: func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "ALD200" }},
		{name: "practice code of three other letters", d: op, mutate: func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "ABC123" }, want: []want{w("ORG-002", "general_medical_practice_code")}},
		{name: "practice code default", d: apc, mutate: func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "V81997" }},
		{name: "practice known", d: apc, practices: practiceSet{"H85001": true}},
		{name: "practice not known", all: true, practices: practiceSet{"H85001": true}, mutate: func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "H85099" }, want: []want{w("ORG-006", "general_medical_practice_code")}},
		{name: "practice default not looked up", d: ec, practices: practiceSet{}},
		{name: "practice bad format not looked up", d: lf, practices: practiceSet{}, mutate: func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "H8500" },
			want: []want{w("ORG-002", "general_medical_practice_code")}},
		{name: "practice not looked up without reference data", d: op, mutate: func(r *recT) { r.Demographics.GeneralMedicalPracticeCode = "Z99999" }},
		// CODE-001..017
		{name: "admission method unknown", d: apc, mutate: func(r *recT) { r.GetApc().AdmissionMethodCode = "28" },
			want: []want{e("CODE-001", "admission_method_code")}, nat: []want{w("CODE-001", "admission_method_code")}},
		{name: "admission method lower case", d: apc, mutate: func(r *recT) { r.GetApc().AdmissionMethodCode = "2a" }, want: []want{e("CODE-001", "admission_method_code")},
			nat: []want{w("CODE-001", "admission_method_code")}},
		{name: "admission method 2D", d: apc, mutate: func(r *recT) { r.GetApc().AdmissionMethodCode = "2D" }},
		{name: "attended code 1", d: op, mutate: func(r *recT) { r.GetOutpatient().AttendedOrDidNotAttendCode = "1" },
			want: []want{e("CODE-002", "attended_or_did_not_attend_code")}, nat: []want{w("CODE-002", "attended_or_did_not_attend_code")}},
		{name: "attended code 0", d: op, mutate: func(r *recT) { r.GetOutpatient().AttendedOrDidNotAttendCode = "0" }},
		{name: "gender code 3", all: true, mutate: func(r *recT) { r.Demographics.PersonGenderCode = "3" }, want: []want{w("CODE-003", "person_gender_code")}},
		{name: "gender code M", d: lf, mutate: func(r *recT) { r.GetDemographics().PersonGenderCode = "M" }, want: []want{w("CODE-003", "person_gender_code")}},
		{name: "gender code X", d: op, mutate: func(r *recT) { r.Demographics.PersonGenderCode = "X" }},
		{name: "admin category 1", all: true, mutate: func(r *recT) { r.AdministrativeCategoryCode = "1" },
			want: []want{e("CODE-004", "administrative_category_code")}, nat: []want{w("CODE-004", "administrative_category_code")}},
		{name: "admin category 04", d: ec, mutate: func(r *recT) { r.AdministrativeCategoryCode = "04" }},
		{name: "cds type 020 in apc", d: apc, mutate: func(r *recT) { r.GetApc().CdsType = "020" },
			want: []want{e("CODE-005", "cds_type")}, nat: []want{w("CODE-005", "cds_type")}},
		{name: "cds type 120", d: apc, mutate: func(r *recT) { r.GetApc().CdsType = "120" }},
		{name: "department type 1", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcDepartmentType = "1" },
			want: []want{e("CODE-006", "ec_department_type")}, nat: []want{w("CODE-006", "ec_department_type")}},
		{name: "department type 04", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcDepartmentType = "04" }},
		{name: "source of admission 30", d: apc, mutate: func(r *recT) { r.GetApc().SourceOfAdmissionCode = "30" },
			want: []want{e("CODE-007", "source_of_admission_code")}, nat: []want{w("CODE-007", "source_of_admission_code")}},
		{name: "source of admission 79 (born in hospital)", d: apc, mutate: func(r *recT) { r.GetApc().SourceOfAdmissionCode = "79" }},
		{name: "discharge method 6", d: apc, mutate: func(r *recT) { r.GetApc().DischargeMethodCode = "6" },
			want: []want{e("CODE-008", "discharge_method_code")}, nat: []want{w("CODE-008", "discharge_method_code")}},
		{name: "discharge method died", d: apc, mutate: func(r *recT) { r.GetApc().DischargeMethodCode, r.GetApc().DischargeDestinationCode = "4", "79" }},
		{name: "discharge destination 30", d: apc, mutate: func(r *recT) { r.GetApc().DischargeDestinationCode = "30" },
			want: []want{e("CODE-009", "discharge_destination_code")}, nat: []want{w("CODE-009", "discharge_destination_code")}},
		{name: "discharge destination 98", d: apc, mutate: func(r *recT) { r.GetApc().DischargeDestinationCode = "98" }},
		{name: "patient classification 6", d: apc, mutate: func(r *recT) { r.GetApc().PatientClassificationCode = "6" },
			want: []want{e("CODE-010", "patient_classification_code")}, nat: []want{w("CODE-010", "patient_classification_code")}},
		{name: "patient classification 5", d: apc, mutate: func(r *recT) { r.GetApc().PatientClassificationCode = "5" }},
		{name: "treatment function 2 digits", d: apc, mutate: func(r *recT) { r.GetApc().TreatmentFunctionCode = "30" },
			want: []want{e("CODE-011", "treatment_function_code")}, nat: []want{w("CODE-011", "treatment_function_code")}},
		{name: "treatment function letters", d: op, mutate: func(r *recT) { r.GetOutpatient().TreatmentFunctionCode = "ABC" },
			want: []want{e("CODE-011", "treatment_function_code")}, nat: []want{w("CODE-011", "treatment_function_code")}},
		{name: "local flow treatment function 4 digits", d: lf, mutate: func(r *recT) { r.GetLocalFlow().TreatmentFunctionCode = "3000" },
			want: []want{e("CODE-011", "treatment_function_code")}},
		{name: "treatment function not in the list", d: apc, mutate: func(r *recT) { r.GetApc().TreatmentFunctionCode = "999" },
			want: []want{w("CODE-012", "treatment_function_code")}},
		{name: "local flow treatment function not in the list", d: lf, mutate: func(r *recT) { r.GetLocalFlow().TreatmentFunctionCode = "999" },
			want: []want{w("CODE-012", "treatment_function_code")}},
		{name: "outpatient treatment function not in the list", d: op, mutate: func(r *recT) { r.GetOutpatient().TreatmentFunctionCode = "998" },
			want: []want{w("CODE-012", "treatment_function_code")}},
		{name: "treatment function 812", d: op, mutate: func(r *recT) { r.GetOutpatient().TreatmentFunctionCode = "812" }},
		{name: "first attendance 6", d: op, mutate: func(r *recT) { r.GetOutpatient().FirstAttendanceCode = "6" },
			want: []want{e("CODE-013", "first_attendance_code")}, nat: []want{w("CODE-013", "first_attendance_code")}},
		{name: "first attendance 5", d: op, mutate: func(r *recT) { r.GetOutpatient().FirstAttendanceCode = "5" }},
		{name: "priority 4", d: op, mutate: func(r *recT) { r.GetOutpatient().PriorityTypeCode = "4" },
			want: []want{e("CODE-014", "priority_type_code")}, nat: []want{w("CODE-014", "priority_type_code")}},
		{name: "priority 3", d: op, mutate: func(r *recT) { r.GetOutpatient().PriorityTypeCode = "3" }},
		{name: "ethnic category T", all: true, mutate: func(r *recT) { r.Demographics.EthnicCategory = "T" },
			want: []want{e("CODE-015", "ethnic_category")}, nat: []want{w("CODE-015", "ethnic_category")}},
		{name: "ethnic category lower case", d: lf, mutate: func(r *recT) { r.GetDemographics().EthnicCategory = "a" },
			want: []want{e("CODE-015", "ethnic_category")}},
		{name: "ethnic category 99", d: ec, mutate: func(r *recT) { r.Demographics.EthnicCategory = "99" }},
		{name: "overseas visitor 5", all: true, mutate: func(r *recT) { r.OverseasVisitorStatusCode = "5" },
			want: []want{e("CODE-016", "overseas_visitor_status_code")}, nat: []want{w("CODE-016", "overseas_visitor_status_code")}},
		{name: "overseas visitor 9", d: op, mutate: func(r *recT) { r.OverseasVisitorStatusCode = "9" }},
		// CAM steps A and B read the charging category (issue 14).
		{name: "charging category G", all: true, mutate: func(r *recT) { r.OverseasVisitorChargingCategory = "G" },
			want: []want{e("CODE-030", "overseas_visitor_charging_category")}, nat: []want{w("CODE-030", "overseas_visitor_charging_category")}},
		{name: "charging category D", d: apc, mutate: func(r *recT) { r.OverseasVisitorChargingCategory = "D" }},
		// CODE-031: the service code is in NHS England's list of the
		// financial year of the record's CAM date. CAM reads the service
		// code and its delegation status in the year's list (C-0, C-0a, C-5:
		// "The different services and their 'status' are available from the
		// NHS England website", guidance p.13, p.43, p.46) at the date of
		// "When to assign commissioner code" (p.6): discharge, appointment,
		// arrival. NCBPS22SA was split from NCBPS22S in 2025-26; NCBPH26E
		// (bowel scope screening) is retired and only in the 2024/25 list.
		{name: "service code in its year's list", all: true, services: camLists, mutate: camCode("2025-06-15", "NCBPS01C")},
		{name: "service code of a later year", all: true, services: camLists, mutate: camCode("2024-06-15", "NCBPS22SA"),
			want: []want{e("CODE-031", "service_code")}, nat: []want{w("CODE-031", "service_code")}},
		{name: "service code new that year", all: true, services: camLists, mutate: camCode("2025-06-15", "NCBPS22SA")},
		{name: "service code retired", all: true, services: camLists, mutate: camCode("2025-06-15", "NCBPH26E"),
			want: []want{e("CODE-031", "service_code")}, nat: []want{w("CODE-031", "service_code")}},
		{name: "service code before retirement", d: op, services: camLists, mutate: camCode("2024-06-15", "NCBPH26E")},
		{name: "service code in no list", d: ec, services: camLists, mutate: camCode("2024-06-15", "NCBZZ99Z"),
			want: []want{e("CODE-031", "service_code")}, nat: []want{w("CODE-031", "service_code")}},
		{name: "service code 31 March is the year before", d: op, services: camLists, mutate: camCode("2025-03-31", "NCBPS22SA"),
			want: []want{e("CODE-031", "service_code")}, nat: []want{w("CODE-031", "service_code")}},
		{name: "service code 1 April is the new year", d: op, services: camLists, mutate: camCode("2025-04-01", "NCBPS22SA")},
		{name: "service code in a year with no list", d: apc, services: camLists, mutate: func(r *recT) { r.ServiceCode = "NCBZZ99Z" }},
		{name: "service code without reference data", d: lf, mutate: camCode("2024-06-15", "NCBZZ99Z")},
		// Admitted care: the CAM date is the spell's discharge, not the
		// episode's end (p.6) ...
		{name: "apc service code by discharge date", d: apc, services: camLists, mutate: func(r *recT) {
			camCode("2025-03-30", "NCBPS22SA")(r)
			r.GetApc().DischargeDateHospitalProviderSpell = "2025-04-02"
		}},
		// ... and, before discharge, the spell's start.
		{name: "apc service code by spell start", d: apc, services: camLists, mutate: func(r *recT) {
			camCode("2025-04-02", "NCBPS22SA")(r)
			a := r.GetApc()
			a.StartDateHospitalProviderSpell, a.DischargeDateHospitalProviderSpell = "2025-03-30", ""
			a.DischargeMethodCode, a.DischargeDestinationCode = "", ""
		}, want: []want{e("CODE-031", "service_code")}, nat: []want{w("CODE-031", "service_code")}},
		{name: "point of delivery unknown", d: lf, mutate: func(r *recT) { r.GetLocalFlow().PointOfDeliveryCode = "XYZ" },
			want: []want{w("CODE-017", "point_of_delivery_code")}},
		{name: "point of delivery DRUG", d: lf, mutate: func(r *recT) { r.GetLocalFlow().PointOfDeliveryCode = "DRUG" }},
		// CODE-032: a line of the year's list that ended before the CAM
		// date (NCBPH26E ended 2021-03-31 in the 24/25 list).
		{name: "service code retired line", all: true, mutate: camCode("2024-06-15", "NCBPH26E"), services: retiredLines{camLists},
			want: []want{w("CODE-032", "service_code")}},
		{name: "service code open line", all: true, mutate: camCode("2024-06-15", "NCBPS01C"), services: retiredLines{camLists}},
		// CDS-004 and PID-001: the patient's identifiers in the record id or
		// another kept field (CDS UNIQUE IDENTIFIER must not contain them).
		{name: "uid holds the NHS number or postcode", all: true, mutate: func(r *recT) {
			id := r.Patient.NhsNumber // the local flow has none: its postcode
			if id == "" {
				id = strings.ReplaceAll(r.Patient.PostcodeOfUsualAddress, " ", "")
			}
			r.CdsUniqueIdentifier = "B" + r.ProviderCode + id
		}, want: []want{e("CDS-004", "cds_unique_identifier")}},
		{name: "spell number is the NHS number", d: apc, mutate: func(r *recT) { r.GetApc().HospitalProviderSpellNumber = r.Patient.NhsNumber },
			want: []want{e("PID-001", "hospital_provider_spell_number")}},
		{name: "attendance id holds the NHS number", d: op, mutate: func(r *recT) { r.GetOutpatient().AttendanceIdentifier = "OP" + r.Patient.NhsNumber },
			want: []want{e("PID-001", "attendance_identifier")}},
		{name: "ec attendance id is the NHS number", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcAttendanceIdentifier = r.Patient.NhsNumber },
			want: []want{e("PID-001", "ec_attendance_identifier")}},
		// PID-001 reads every field de-identification keeps (record.KeptFields):
		// a column shifted in a CSV file put an identifier where only a
		// warning rule, or none, looked, and the provider's report said
		// accepted while de-identification refused the record (DEID-002;
		// found by TestGraderDQ).
		{name: "site code is the postcode", all: true, mutate: func(r *recT) {
			// A real postcode: a ZZ99 pseudo-postcode names no one.
			r.Patient.PostcodeOfUsualAddress, r.SiteCode = "HG1 1AA", "HG11AA"
		}, want: []want{e("PID-001", "site_code")}},
		{name: "chief complaint is the NHS number", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcChiefComplaintSnomedCt = r.Patient.NhsNumber },
			want: []want{e("PID-001", "ec_chief_complaint_snomed_ct")}},
		// The national specification reads no outpatient diagnosis.
		{name: "outpatient icd with a dot", d: op, mutate: func(r *recT) { r.GetOutpatient().PrimaryDiagnosisIcd = "I21.9" },
			want: []want{e("CLIN-001", "primary_diagnosis_icd")}, nat: none},
		// CLIN-006, CLIN-007: the secondary code lists, element by element.
		{name: "secondary diagnosis with a dot", d: apc, mutate: func(r *recT) { r.GetApc().SecondaryDiagnosesIcd = "E119;I10.X" },
			want: []want{w("CLIN-006", "secondary_diagnoses_icd")}},
		{name: "secondary diagnoses", d: op, mutate: func(r *recT) { r.GetOutpatient().SecondaryDiagnosesIcd = "E119;I10X" }},
		{name: "secondary diagnosis of three characters", d: op, mutate: func(r *recT) { r.GetOutpatient().SecondaryDiagnosesIcd = "E119;I10" },
			want: []want{w("CLIN-006", "secondary_diagnoses_icd")}},
		{name: "secondary procedure of three characters", d: op, mutate: func(r *recT) { r.GetOutpatient().SecondaryProceduresOpcs = "K634;Y98" },
			want: []want{w("CLIN-007", "secondary_procedures_opcs")}},
		{name: "secondary procedures, empty element", d: apc, mutate: func(r *recT) { r.GetApc().SecondaryProceduresOpcs = "K634;" },
			want: []want{w("CLIN-007", "secondary_procedures_opcs")}},
		// CLIN-001..005
		{name: "icd with a dot", d: apc, mutate: func(r *recT) { r.GetApc().PrimaryDiagnosisIcd = "I21.9" },
			want: []want{e("CLIN-001", "primary_diagnosis_icd")}, nat: []want{w("CLIN-001", "primary_diagnosis_icd")}},
		{name: "icd lower case", d: apc, mutate: func(r *recT) { r.GetApc().PrimaryDiagnosisIcd = "i219" },
			want: []want{e("CLIN-001", "primary_diagnosis_icd")}, nat: []want{w("CLIN-001", "primary_diagnosis_icd")}},
		{name: "icd three characters and X", d: apc, mutate: func(r *recT) { r.GetApc().PrimaryDiagnosisIcd = "I10X" }},
		{name: "icd three characters", d: apc, mutate: func(r *recT) { r.GetApc().PrimaryDiagnosisIcd = "J45" },
			want: []want{e("CLIN-001", "primary_diagnosis_icd")}, nat: []want{w("CLIN-001", "primary_diagnosis_icd")}},
		{name: "opcs too short", d: apc, mutate: func(r *recT) { r.GetApc().PrimaryProcedureOpcs = "W3" },
			want: []want{e("CLIN-002", "primary_procedure_opcs")}, nat: []want{w("CLIN-002", "primary_procedure_opcs")}},
		{name: "opcs too long", d: op, mutate: func(r *recT) { r.GetOutpatient().PrimaryProcedureOpcs = "U2011" },
			want: []want{e("CLIN-002", "primary_procedure_opcs")}, nat: []want{w("CLIN-002", "primary_procedure_opcs")}},
		{name: "opcs category", d: apc, mutate: func(r *recT) { r.GetApc().PrimaryProcedureOpcs = "W37" },
			want: []want{e("CLIN-002", "primary_procedure_opcs")}, nat: []want{w("CLIN-002", "primary_procedure_opcs")}},
		{name: "hrg too short", d: apc, mutate: func(r *recT) { r.GetApc().HrgCode = "HN12" },
			want: []want{e("CLIN-003", "hrg_code")}, nat: []want{w("CLIN-003", "hrg_code")}},
		{name: "emergency care hrg too short", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().HrgCode = "VB09" },
			want: []want{e("CLIN-003", "hrg_code")}, nat: []want{w("CLIN-003", "hrg_code")}},
		{name: "local flow hrg lower case", d: lf, mutate: func(r *recT) { r.GetLocalFlow().HrgCode = "bz84a" },
			want: []want{e("CLIN-003", "hrg_code")}},
		{name: "hrg ungroupable", all: true, mutate: func(r *recT) { setHRG(r, "UZ01Z") }, want: []want{w("CLIN-004", "hrg_code")}},
		{name: "hrg too long", all: true, mutate: func(r *recT) { setHRG(r, "HN12AB") },
			want: []want{e("CLIN-003", "hrg_code")}, nat: []want{w("CLIN-003", "hrg_code")}},
		// CLIN-008: the HRG is a code of the HRG4+ list (the National
		// Casemix Office's Code to Group, 2020/21 to 2025/26, reference file
		// 21) in a grouper release in force on the activity date. The list
		// is the published one, as reference/sample copies it.
		{name: "hrg of the list", all: true, hrgs: publishedHRGs(), mutate: hrgOn("2025-06-15", "FF37D")},
		{name: "hrg of no release", all: true, hrgs: publishedHRGs(), mutate: hrgOn("2025-06-15", "FF10B"),
			want: []want{w("CLIN-008", "hrg_code")}},
		{name: "hrg retired", all: true, hrgs: publishedHRGs(), mutate: hrgOn("2022-04-01", "AB19Z"),
			want: []want{w("CLIN-008", "hrg_code")}},
		{name: "hrg on its last day", d: op, hrgs: publishedHRGs(), mutate: hrgOn("2022-03-31", "AB19Z")},
		{name: "hrg before the list", d: apc, hrgs: publishedHRGs(), mutate: hrgOn("2020-03-31", "FF10B")},
		{name: "hrg after the latest release", d: lf, hrgs: publishedHRGs(), mutate: hrgOn("2026-06-15", "FF37D")},
		{name: "hrg without reference data", d: ec, mutate: hrgOn("2025-06-15", "FF10B")},
		// One bad value is reported once: a code not in HRG form is CLIN-003's.
		{name: "hrg not in form is not also unknown", all: true, hrgs: publishedHRGs(), mutate: hrgOn("2025-06-15", "HN12AB"),
			want: []want{e("CLIN-003", "hrg_code")}, nat: []want{w("CLIN-003", "hrg_code")}},
		{name: "snomed leading zero", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcChiefComplaintSnomedCt = "029857009" },
			want: []want{w("CLIN-005", "ec_chief_complaint_snomed_ct")}},
		{name: "snomed too short", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcChiefComplaintSnomedCt = "12345" },
			want: []want{w("CLIN-005", "ec_chief_complaint_snomed_ct")}},
		{name: "snomed 18 digits", d: ec, mutate: func(r *recT) { r.GetEmergencyCare().EcChiefComplaintSnomedCt = "123456789012345678" }},
		// LF-001, LF-002
		{name: "negative price", d: lf, mutate: func(r *recT) { r.GetLocalFlow().PricePence = -300 }, want: []want{w("LF-001", "price_pence")}},
		{name: "zero price", d: lf, mutate: func(r *recT) { r.GetLocalFlow().PricePence = 0 }},
		{name: "no activity count", d: lf, mutate: func(r *recT) { r.GetLocalFlow().ActivityCount = 0 }, want: []want{w("LF-002", "activity_count")}},
		{name: "negative activity count", d: lf, mutate: func(r *recT) { r.GetLocalFlow().ActivityCount = -1 }, want: []want{w("LF-002", "activity_count")}},
		{name: "delete has no count", d: lf, mutate: func(r *recT) {
			r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
			r.GetLocalFlow().ActivityCount, r.GetLocalFlow().PricePence = 0, -5
		}},
		// Several at once, in the specification's rule order.
		{name: "many failures", d: apc, mutate: func(r *recT) {
			r.Patient.NhsNumber = "9434765918"
			r.Patient.PostcodeOfUsualAddress = "Q1 1AA"
			r.Demographics.PersonGenderCode = "7"
			r.GetApc().CdsType = "999"
			r.SiteCode = ""
		}, want: []want{w("REQ-002", "site_code"), e("NHS-002", "nhs_number"), e("PC-001", "postcode_of_usual_address"), w("CODE-003", "person_gender_code"), e("CODE-005", "cds_type")},
			nat: []want{w("REQ-002", "site_code"), e("NHS-002", "nhs_number"), w("PC-001", "postcode_of_usual_address"), w("CODE-003", "person_gender_code"), w("CODE-005", "cds_type")}},
	}
}

// TestRules runs every case under the provider specification of its dataset
// and, for CDS datasets, under the national one; and checks that every rule
// of every built-in specification fails in at least one case and every
// specification has passing cases.
func TestRules(t *testing.T) {
	reg := builtIn(t)
	failed := map[string]bool{} // label + " " + rule id
	passed := map[string]int{}  // label -> passing cases
	for _, tc := range ruleCases() {
		datasets := []dmicv1.Dataset{tc.d}
		if tc.all {
			datasets = []dmicv1.Dataset{apc, op, ec, lf}
		}
		for _, d := range datasets {
			tc := tc
			tc.d = d
			runRuleCase(t, reg, tc, failed, passed)
		}
	}
	for _, s := range reg.List() {
		for _, r := range s.Rules() {
			if !failed[s.Label()+" "+r.ID] {
				t.Errorf("%s: no case makes rule %s fail", s.Label(), r.ID)
			}
		}
		if passed[s.Label()] < 5 {
			t.Errorf("%s: only %d passing cases", s.Label(), passed[s.Label()])
		}
	}
}

func runRuleCase(t *testing.T, reg *Registry, tc ruleCase, failed map[string]bool, passed map[string]int) {
	{
		for _, src := range []dmicv1.Source{provider, national} {
			if src == national && tc.d == lf {
				continue
			}
			expect := tc.want
			if src == national && tc.nat != nil {
				expect = tc.nat
			}
			name := tc.name + "/" + record.DatasetName(tc.d)
			if src == national {
				name += "/national"
			}
			t.Run(name, func(t *testing.T) {
				v := New(reg, WithClock(fixedClock), WithLocation(time.UTC), WithPractices(tc.practices), WithServiceCodes(tc.services), WithHRGs(tc.hrgs))
				r := clean(t, tc.d)
				if tc.mutate != nil {
					tc.mutate(r)
				}
				res := v.Validate(r, ValidateInput{Dataset: tc.d, Source: src, DuplicateOfLine: tc.dup})
				if res.Spec == nil {
					t.Fatal("no specification selected")
				}
				label := res.Spec.Label()
				if wantLabel := map[bool]string{true: "national/2026.1", false: record.DatasetName(tc.d) + "/2026.1"}[src == national]; label != wantLabel {
					t.Errorf("specification %s, want %s", label, wantLabel)
				}
				got := wants(res.Failures)
				if !slices.Equal(got, expect) {
					t.Errorf("failures\n got %v\nwant %v", got, expect)
				}
				for _, f := range res.Failures {
					failed[label+" "+f.GetRuleId()] = true
					if f.GetMessage() == "" {
						t.Errorf("%s has no message", f.GetRuleId())
					}
					for _, value := range identifierValues(r) {
						if strings.Contains(f.GetMessage(), value) {
							t.Errorf("%s message %q holds a value of the record", f.GetRuleId(), f.GetMessage())
						}
					}
				}
				if len(expect) == 0 {
					passed[label]++
				}
				wantErr := slices.ContainsFunc(expect, func(x want) bool { return x.sev == dmicv1.Severity_SEVERITY_ERROR })
				if HasErrors(res.Failures) != wantErr {
					t.Errorf("HasErrors = %v, want %v", HasErrors(res.Failures), wantErr)
				}
			})
		}
	}
}

// serviceCodeLists is a ServiceCodeDirectory: codes by financial year.
type serviceCodeLists map[string]map[string]bool

func (l serviceCodeLists) ServiceCodeListed(year, code string) (listed, haveYear bool) {
	codes, ok := l[year]
	return codes[code], ok
}

// ServiceCodeEnd: these lists hold no retired line.
func (l serviceCodeLists) ServiceCodeEnd(year, code string) string { return "" }

// retiredLines are lists in which NCBPH26E's 24/25 line ended on
// 2021-03-31, as in cam_service_codes_2024-25_2025-26.csv.
type retiredLines struct{ serviceCodeLists }

func (retiredLines) ServiceCodeEnd(year, code string) string {
	if year == "24/25" && code == "NCBPH26E" {
		return "2021-03-31"
	}
	return ""
}

// camLists are a few rows of cam_service_codes_2024-25_2025-26.csv.
var camLists = serviceCodeLists{
	"24/25": {"NCBPS01C": true, "NCBPH26E": true, "99999999": true},
	"25/26": {"NCBPS01C": true, "NCBPS22SA": true, "99999999": true},
}

// hrgOn gives a record HRG code and puts its activity on day.
func hrgOn(day, code string) func(*recT) {
	return func(r *recT) {
		camCode(day, r.ServiceCode)(r)
		setHRG(r, code)
	}
}

// publishedHRGs is the HRG4+ list as reference/sample copies it whole.
var publishedHRGs = sync.OnceValue(func() HRGDirectory {
	f, err := os.Open(filepath.Join("../../../reference/sample", refdata.HRGFile))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	l, err := refdata.LoadHRGs(f)
	if err != nil {
		panic(err)
	}
	return l
})

// camCode gives a record service code code and puts its activity on day:
// every date of the activity, so the CAM date of each data set is day.
func camCode(day, code string) func(*recT) {
	return func(r *recT) {
		r.ServiceCode = code
		switch a := r.GetActivity().(type) {
		case *dmicv1.CommissioningRecord_Apc:
			x := a.Apc
			x.StartDateHospitalProviderSpell, x.StartDateEpisode, x.EndDateEpisode, x.DischargeDateHospitalProviderSpell = day, day, day, day
		case *dmicv1.CommissioningRecord_Outpatient:
			a.Outpatient.AppointmentDate = day
		case *dmicv1.CommissioningRecord_EmergencyCare:
			a.EmergencyCare.EcArrivalDate, a.EmergencyCare.EcDepartureDate = day, day
		case *dmicv1.CommissioningRecord_LocalFlow:
			a.LocalFlow.ActivityDate = day
		}
	}
}

// The financial year runs from 1 April to 31 March.
func TestFinancialYear(t *testing.T) {
	for _, tt := range []struct {
		day  int
		want string
	}{{20250331, "24/25"}, {20250401, "25/26"}, {20260331, "25/26"}, {20990401, "99/00"}, {20000101, "99/00"}, {20000401, "00/01"}} {
		if got := financialYear(tt.day); got != tt.want {
			t.Errorf("financialYear(%d) = %s, want %s", tt.day, got, tt.want)
		}
	}
}

// Reference data given to WithPractices backs CODE-031 when it has the
// lists, unless WithServiceCodes names other lists.
func TestServiceCodesFromPracticeData(t *testing.T) {
	r := clean(t, op)
	camCode("2024-06-15", "NCBPS22SA")(r)
	both := practicesAndCodes{practiceSet{"H85020": true}, camLists}
	got := wants(testValidator(t, WithPractices(both)).Validate(r, ValidateInput{Dataset: op}).Failures)
	if !slices.Equal(got, []want{e("CODE-031", "service_code")}) {
		t.Errorf("with practices that have service codes: %v", got)
	}
	got = wants(testValidator(t, WithPractices(both), WithServiceCodes(serviceCodeLists{"24/25": {"NCBPS22SA": true}})).Validate(r, ValidateInput{Dataset: op}).Failures)
	if len(got) != 0 {
		t.Errorf("WithServiceCodes does not win: %v", got)
	}
	got = wants(testValidator(t, WithPractices(practiceSet{"H85020": true})).Validate(r, ValidateInput{Dataset: op}).Failures)
	if len(got) != 0 {
		t.Errorf("practices without service codes check them: %v", got)
	}
}

type practicesAndCodes struct {
	practiceSet
	serviceCodeLists
}

// Any 123456789x is refused, whatever its last digit.
func TestNHSCheckDigitEveryLastDigit(t *testing.T) {
	v := testValidator(t)
	for x := 0; x <= 9; x++ {
		r := clean(t, apc)
		r.Patient.NhsNumber = fmt.Sprintf("123456789%d", x)
		got := wants(v.Validate(r, ValidateInput{Dataset: apc}).Failures)
		if !slices.Equal(got, []want{e("NHS-002", "nhs_number")}) {
			t.Errorf("123456789%d: %v", x, got)
		}
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
