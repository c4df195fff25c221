package chstore

import (
	"strings"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/record"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Where activity_date came from (column activity_date_source).
const (
	// dateFromRecord: the record's activity date (DeidentifiedActivity.activity_date,
	// else the dataset's own date: APC end/start of episode, outpatient
	// appointment, EC arrival, local flow activity date).
	dateFromRecord = "record"
	// dateFromReceived: the record had no valid activity date; the UTC date its
	// submission was received stands in, so that the row still lands in a
	// plausible month instead of 1970-01.
	dateFromReceived = "received"
	// dateFromLoaded: neither an activity nor a received date; the load date.
	dateFromLoaded = "loaded"
)

// activityRow is one DeidentifiedRecord flattened for the activity table.
type activityRow struct {
	rec        *dmicv1.DeidentifiedRecord
	h          *dmicv1.EnvelopeHeader
	a          *dmicv1.DeidentifiedActivity
	d          detail
	date       time.Time
	dateSource string
	received   time.Time
	applicable *time.Time
	warnings   []string
}

// detail is whichever activity oneof is set, as the columns analysts use
// across datasets. Fields that do not apply to a dataset stay empty.
type detail struct {
	dataset                                           string
	cdsType, episodeNumber                            string
	admissionMethod, sourceOfAdmission                string
	dischargeMethod, dischargeDestination             string
	patientClassification, treatmentFunction          string
	primaryDiagnosis, primaryProcedure, hrg           string
	secondaryDiagnoses, secondaryProcedures           string
	attended, firstAttendance, priorityType           string
	ecDepartmentType, ecChiefComplaint, ecArrivalTime string
	pointOfDelivery                                   string
	pricePence, activityCount                         int64
	startDate, endDate, spellStartDate, dischargeDate *time.Time
	ownDate                                           string
}

func detailOf(a *dmicv1.DeidentifiedActivity) detail {
	switch {
	case a.GetApc() != nil:
		x := a.GetApc()
		own := x.GetEndDateEpisode()
		if _, ok := parseDate(own); !ok {
			own = x.GetStartDateEpisode()
		}
		return detail{
			dataset: "apc", cdsType: x.GetCdsType(), episodeNumber: x.GetEpisodeNumber(),
			admissionMethod: x.GetAdmissionMethodCode(), sourceOfAdmission: x.GetSourceOfAdmissionCode(),
			dischargeMethod: x.GetDischargeMethodCode(), dischargeDestination: x.GetDischargeDestinationCode(),
			patientClassification: x.GetPatientClassificationCode(), treatmentFunction: x.GetTreatmentFunctionCode(),
			primaryDiagnosis: x.GetPrimaryDiagnosisIcd(), primaryProcedure: x.GetPrimaryProcedureOpcs(), hrg: x.GetHrgCode(),
			secondaryDiagnoses: x.GetSecondaryDiagnosesIcd(), secondaryProcedures: x.GetSecondaryProceduresOpcs(),
			startDate: datePtr(x.GetStartDateEpisode()), endDate: datePtr(x.GetEndDateEpisode()),
			spellStartDate: datePtr(x.GetStartDateHospitalProviderSpell()),
			dischargeDate:  datePtr(x.GetDischargeDateHospitalProviderSpell()),
			ownDate:        own,
		}
	case a.GetOutpatient() != nil:
		x := a.GetOutpatient()
		return detail{
			dataset: "outpatient", cdsType: "020",
			attended: x.GetAttendedOrDidNotAttendCode(), firstAttendance: x.GetFirstAttendanceCode(),
			treatmentFunction: x.GetTreatmentFunctionCode(), priorityType: x.GetPriorityTypeCode(),
			primaryProcedure: x.GetPrimaryProcedureOpcs(), hrg: x.GetHrgCode(),
			primaryDiagnosis:   x.GetPrimaryDiagnosisIcd(),
			secondaryDiagnoses: x.GetSecondaryDiagnosesIcd(), secondaryProcedures: x.GetSecondaryProceduresOpcs(),
			startDate: datePtr(x.GetAppointmentDate()), ownDate: x.GetAppointmentDate(),
		}
	case a.GetEmergencyCare() != nil:
		x := a.GetEmergencyCare()
		return detail{
			dataset: "emergency_care", cdsType: "011",
			ecDepartmentType: x.GetEcDepartmentType(), ecChiefComplaint: x.GetEcChiefComplaintSnomedCt(),
			ecArrivalTime: x.GetEcArrivalTime(), hrg: x.GetHrgCode(),
			startDate: datePtr(x.GetEcArrivalDate()), endDate: datePtr(x.GetEcDepartureDate()),
			ownDate: x.GetEcArrivalDate(),
		}
	case a.GetLocalFlow() != nil:
		x := a.GetLocalFlow()
		return detail{
			dataset: "local_flow", pointOfDelivery: x.GetPointOfDeliveryCode(),
			treatmentFunction: x.GetTreatmentFunctionCode(), hrg: x.GetHrgCode(),
			pricePence: x.GetPricePence(), activityCount: x.GetActivityCount(),
			startDate: datePtr(x.GetActivityDate()), ownDate: x.GetActivityDate(),
		}
	}
	return detail{}
}

// newActivityRow flattens rec; now stands in for the activity date only when
// the record has neither an activity date nor a received time.
func newActivityRow(rec *dmicv1.DeidentifiedRecord, now time.Time) activityRow {
	h, a := rec.GetHeader(), rec.GetActivity()
	r := activityRow{rec: rec, h: h, a: a, d: detailOf(a)}
	if h.GetReceivedTime() != nil {
		r.received = clampDateTime(h.GetReceivedTime().AsTime())
	} else {
		r.received = clampDateTime(time.Time{})
	}
	if t, ok := parseDate(a.GetActivityDate()); ok {
		r.date, r.dateSource = t, dateFromRecord
	} else if t, ok := parseDate(r.d.ownDate); ok {
		r.date, r.dateSource = t, dateFromRecord
	} else if dateTimeOK(r.received) {
		r.date, r.dateSource = dayOf(r.received), dateFromReceived
	} else {
		r.date, r.dateSource = dayOf(now), dateFromLoaded
	}
	if s := a.GetApplicableDateTime(); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil && dateTimeOK(t) {
			t = clampDateTime(t)
			r.applicable = &t
		}
	}
	for _, w := range rec.GetWarnings() {
		r.warnings = append(r.warnings, failureName(w))
	}
	if r.warnings == nil {
		r.warnings = []string{}
	}
	return r
}

// PackedActivity is a record as its row of the activity table, packed
// (packed.go): what load keeps of an assigned record until it is written.
type PackedActivity struct{ b []byte }

// activityLayout is where each column sits in a PackedActivity.
var activityLayout = layoutOf(activityColumns)

// packedActivityHint is about the size of a packed activity row (700 to
// 900 bytes for make run's sample), to make its buffer once.
const packedActivityHint = 1024

// PackActivity is rec's row of the activity table; now stands in for the
// activity date only when the record has neither an activity date nor a
// received time. rec is not kept.
func PackActivity(rec *dmicv1.DeidentifiedRecord, now time.Time) PackedActivity {
	r := newActivityRow(rec, now)
	return PackedActivity{packRowSized(activityColumns, &r, packedActivityHint)}
}

// date is the row's activity date (zero if the row is malformed: its
// INSERT then fails with the reason).
func (p PackedActivity) date() time.Time {
	v, _, err := activityLayout.value(p.b, "activity_date")
	if err != nil {
		return time.Time{}
	}
	t, _, _ := unpackTime(v)
	return t
}

func (p PackedActivity) month() int { return monthOf(p.date()) }

// failureName names a failure by rule and field only: a message is written for
// people and the rejections table keeps it; a warning list on every activity
// row needs only what to count by.
func failureName(f *dmicv1.Failure) string {
	if f.GetField() == "" {
		return f.GetRuleId()
	}
	return f.GetRuleId() + ":" + f.GetField()
}

func (r *activityRow) dataset() string {
	if s := record.DatasetName(r.h.GetDataset()); s != "" {
		return s
	}
	return r.d.dataset
}

// activityColumns is the activity table. The order is the table's column order.
var activityColumns = []column[activityRow]{
	strCol("record_key", func(r *activityRow) string { return r.h.GetRecordKey() }),
	u64Col("version", func(r *activityRow) uint64 { return r.h.GetVersion() }),
	u8Col("deleted", func(r *activityRow) uint8 {
		if r.a.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_DELETE {
			return 1
		}
		return 0
	}),
	strCol("dataset", (*activityRow).dataset),
	strCol("source", func(r *activityRow) string { return envelope.SourceName(r.h.GetSource()) }),
	strCol("submitter_org_code", func(r *activityRow) string { return r.h.GetSubmitterOrgCode() }),
	strCol("submission_id", func(r *activityRow) string { return r.h.GetSubmissionId() }),
	dateTimeCol("received_time", func(r *activityRow) time.Time { return r.received }),
	strCol("spec_version", func(r *activityRow) string { return r.h.GetSpecVersion() }),
	i32Col("raw_partition", func(r *activityRow) int32 { return r.h.GetRawPartition() }),
	i64Col("raw_offset", func(r *activityRow) int64 { return r.h.GetRawOffset() }),
	i64Col("line_number", func(r *activityRow) int64 { return r.h.GetLineNumber() }),
	strCol("cds_unique_identifier", func(r *activityRow) string { return r.a.GetCdsUniqueIdentifier() }),
	nullDateTimeCol("applicable_time", func(r *activityRow) *time.Time { return r.applicable }),
	strCol("provider_code", func(r *activityRow) string { return r.a.GetProviderCode() }),
	strCol("site_code", func(r *activityRow) string { return r.a.GetSiteCode() }),
	strCol("match_key", func(r *activityRow) string { return r.rec.GetMatchKey() }),
	dateCol("activity_date", func(r *activityRow) time.Time { return r.date }),
	strCol("activity_date_source", func(r *activityRow) string { return r.dateSource }),
	strCol("pseudo_nhs_number", func(r *activityRow) string { return r.a.GetPseudoNhsNumber() }),
	strCol("pseudonym_key_version", func(r *activityRow) string { return r.a.GetPseudonymKeyVersion() }),
	strCol("pseudonym_absent_reason", func(r *activityRow) string { return r.a.GetPseudonymAbsentReason() }),
	strCol("nhs_number_status_indicator_code", func(r *activityRow) string { return r.a.GetNhsNumberStatusIndicatorCode() }),
	i16Col("age_at_activity_years", func(r *activityRow) int16 { return clampInt16(r.a.GetAgeAtActivityYears()) }),
	i16Col("age_at_activity_weeks", func(r *activityRow) int16 { return clampInt16(r.a.GetAgeAtActivityWeeks()) }),
	strCol("age_band", func(r *activityRow) string { return r.a.GetAgeBand() }),
	strCol("person_gender_code", func(r *activityRow) string { return r.a.GetDemographics().GetPersonGenderCode() }),
	strCol("ethnic_category", func(r *activityRow) string { return r.a.GetDemographics().GetEthnicCategory() }),
	strCol("general_medical_practice_code", func(r *activityRow) string {
		return r.a.GetDemographics().GetGeneralMedicalPracticeCode()
	}),
	strCol("lsoa_2011", func(r *activityRow) string { return r.a.GetResidence().GetLsoa_2011() }),
	strCol("lsoa_2021", func(r *activityRow) string { return r.a.GetResidence().GetLsoa_2021() }),
	strCol("msoa_2011", func(r *activityRow) string { return r.a.GetResidence().GetMsoa_2011() }),
	strCol("msoa_2021", func(r *activityRow) string { return r.a.GetResidence().GetMsoa_2021() }),
	strCol("local_authority", func(r *activityRow) string { return r.a.GetResidence().GetLocalAuthority() }),
	strCol("residence_sub_icb", func(r *activityRow) string { return r.a.GetResidence().GetSubIcb() }),
	strCol("residence_icb", func(r *activityRow) string { return r.a.GetResidence().GetIcb() }),
	strCol("residence_country", func(r *activityRow) string { return r.a.GetResidence().GetCountry() }),
	strCol("residence_note", func(r *activityRow) string { return r.a.GetResidence().GetNote() }),
	strCol("postcode_sector", func(r *activityRow) string { return r.a.GetResidence().GetPostcodeSector() }),
	u8Col("imd_decile", func(r *activityRow) uint8 { return imdDecile(r.a.GetResidence().GetImdDecile()) }),
	strCol("submitted_commissioner_code", func(r *activityRow) string { return r.a.GetSubmittedCommissionerCode() }),
	strCol("administrative_category_code", func(r *activityRow) string { return r.a.GetAdministrativeCategoryCode() }),
	strCol("overseas_visitor_status_code", func(r *activityRow) string { return r.a.GetOverseasVisitorStatusCode() }),
	strCol("commissioner_code", func(r *activityRow) string { return r.rec.GetAssignment().GetCommissionerCode() }),
	strCol("assignment_method", func(r *activityRow) string { return r.rec.GetAssignment().GetAssignmentMethod() }),
	strCol("commissioner_type", func(r *activityRow) string { return r.rec.GetAssignment().GetCommissionerType() }),
	strCol("cam_rule_id", func(r *activityRow) string { return r.rec.GetAssignment().GetRuleId() }),
	// CAM result (issue 14): version, step, published reason, service category.
	strCol("cam_version", func(r *activityRow) string { return r.rec.GetAssignment().GetCamVersion() }),
	strCol("cam_step", func(r *activityRow) string { return r.rec.GetAssignment().GetStep() }),
	strCol("cam_reason_code", func(r *activityRow) string { return r.rec.GetAssignment().GetReasonCode() }),
	strCol("cam_reason", func(r *activityRow) string { return r.rec.GetAssignment().GetReason() }),
	strCol("cam_service_category", func(r *activityRow) string { return r.rec.GetAssignment().GetServiceCategory() }),
	strCol("cam_date", func(r *activityRow) string { return r.rec.GetAssignment().GetCamDate() }),
	strCol("overseas_visitor_charging_category", func(r *activityRow) string { return r.a.GetOverseasVisitorChargingCategory() }),
	strCol("service_code", func(r *activityRow) string { return r.a.GetServiceCode() }),
	strCol("point_of_delivery", func(r *activityRow) string { return r.a.GetPointOfDeliveryCode() }),
	strCol("cds_type", func(r *activityRow) string { return r.d.cdsType }),
	strCol("episode_number", func(r *activityRow) string { return r.d.episodeNumber }),
	strCol("admission_method_code", func(r *activityRow) string { return r.d.admissionMethod }),
	strCol("source_of_admission_code", func(r *activityRow) string { return r.d.sourceOfAdmission }),
	strCol("discharge_method_code", func(r *activityRow) string { return r.d.dischargeMethod }),
	strCol("discharge_destination_code", func(r *activityRow) string { return r.d.dischargeDestination }),
	strCol("patient_classification_code", func(r *activityRow) string { return r.d.patientClassification }),
	strCol("treatment_function_code", func(r *activityRow) string { return r.d.treatmentFunction }),
	strCol("primary_diagnosis_icd", func(r *activityRow) string { return r.d.primaryDiagnosis }),
	strCol("primary_procedure_opcs", func(r *activityRow) string { return r.d.primaryProcedure }),
	strCol("hrg_code", func(r *activityRow) string { return r.d.hrg }),
	strCol("attended_or_did_not_attend_code", func(r *activityRow) string { return r.d.attended }),
	strCol("first_attendance_code", func(r *activityRow) string { return r.d.firstAttendance }),
	strCol("priority_type_code", func(r *activityRow) string { return r.d.priorityType }),
	strCol("ec_department_type", func(r *activityRow) string { return r.d.ecDepartmentType }),
	strCol("ec_chief_complaint_snomed_ct", func(r *activityRow) string { return r.d.ecChiefComplaint }),
	strCol("ec_arrival_time", func(r *activityRow) string { return r.d.ecArrivalTime }),
	strCol("point_of_delivery_code", func(r *activityRow) string { return r.d.pointOfDelivery }),
	i64Col("price_pence", func(r *activityRow) int64 { return r.d.pricePence }),
	i64Col("activity_count", func(r *activityRow) int64 { return r.d.activityCount }),
	nullDateCol("start_date", func(r *activityRow) *time.Time { return r.d.startDate }),
	nullDateCol("end_date", func(r *activityRow) *time.Time { return r.d.endDate }),
	nullDateCol("spell_start_date", func(r *activityRow) *time.Time { return r.d.spellStartDate }),
	nullDateCol("discharge_date", func(r *activityRow) *time.Time { return r.d.dischargeDate }),
	strArrayCol("warnings", func(r *activityRow) []string { return r.warnings }),
	// The rest of what CAM reads (issue 14), so that a record's assignment
	// can be derived again from its row alone: explained, or re-run under
	// another version (camInputs rebuilds the activity from these). Code
	// lists are arrays of the record format's ";"-separated codes, which
	// splitting and joining on ";" gives back exactly (codeList).
	strArrayCol("secondary_diagnoses_icd", func(r *activityRow) []string { return codeList(r.d.secondaryDiagnoses) }),
	strArrayCol("secondary_procedures_opcs", func(r *activityRow) []string { return codeList(r.d.secondaryProcedures) }),
	strCol("commissioned_service_category_code", func(r *activityRow) string { return r.a.GetCommissionedServiceCategoryCode() }),
	strCol("local_public_health_indicator", func(r *activityRow) string { return r.a.GetLocalPublicHealthIndicator() }),
	strCol("residence_pseudo_postcode", func(r *activityRow) string { return r.a.GetResidence().GetPseudoPostcode() }),
	strCol("residence_health_area", func(r *activityRow) string { return r.a.GetResidence().GetHealthArea() }),
	strCol("residence_region", func(r *activityRow) string { return r.a.GetResidence().GetRegion() }),
	strCol("justice_facility_code", func(r *activityRow) string { return r.a.GetResidence().GetJusticeFacilityCode() }),
	strCol("justice_hub", func(r *activityRow) string { return r.a.GetResidence().GetJusticeHub() }),
	strCol("activity_date_submitted", func(r *activityRow) string { return r.a.GetActivityDate() }),
	strArrayCol("cam_reference_vintages", func(r *activityRow) []string {
		if v := r.rec.GetAssignment().GetReferenceVintages(); v != nil {
			return v
		}
		return []string{}
	}),
	loadedAt[activityRow](),
}

// codeList is a ";"-separated code list as an array; "" is no codes.
// strings.Join(codeList(s), ";") == s for every s.
func codeList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ";")
}

// imdDecile stores an IMD decile: 1 (most deprived) to 10, or 0 when unknown.
// Anything outside 1..10 is not a decile and is stored as unknown rather than
// wrapped into a plausible-looking one.
func imdDecile(v int32) uint8 {
	if v < 1 || v > 10 {
		return 0
	}
	return uint8(v)
}
