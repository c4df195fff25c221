package record

import (
	"strconv"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Field names with a meaning of their own to the decoder.
const (
	fieldDataset    = "dataset"
	fieldUID        = "cds_unique_identifier"
	fieldUpdateType = "cds_update_type"
)

type kind uint8

const (
	kindString kind = iota
	kindInt
	kindUpdateType
	kindDataset
)

const numDatasets = int(dmicv1.Dataset_DATASET_LOCAL_FLOW) + 1

// slab holds a decoded record and the messages it points to in one
// allocation: decoding is on the ingest hot path, and a record with its
// patient and demographics is otherwise three separate allocations.
type slab struct {
	rec dmicv1.CommissioningRecord
	pat dmicv1.Patient
	dem dmicv1.Demographics
	apc *dmicv1.ApcEpisode
	op  *dmicv1.OutpatientAttendance
	ec  *dmicv1.EmergencyCareAttendance
	lf  *dmicv1.LocalFlowRecord
}

// patient attaches the patient message only once a patient field has a
// value, so a record without one (a delete) decodes with no Patient.
func (s *slab) patient() *dmicv1.Patient {
	if s.rec.Patient == nil {
		s.rec.Patient = &s.pat
	}
	return &s.pat
}

func (s *slab) demographics() *dmicv1.Demographics {
	if s.rec.Demographics == nil {
		s.rec.Demographics = &s.dem
	}
	return &s.dem
}

// field is one provider field: its name, its Data Dictionary item and, per
// dataset that has it, how to set and get it. A nil setter means the field
// does not belong to that dataset.
type field struct {
	name string
	item string
	kind kind
	// key is `,"name":`, ready to append when encoding.
	key    string
	setStr [numDatasets]func(*slab, string)
	getStr [numDatasets]func(*dmicv1.CommissioningRecord) string
	setInt [numDatasets]func(*slab, int64)
	getInt [numDatasets]func(*dmicv1.CommissioningRecord) int64
	in     [numDatasets]bool
}

func (f *field) allowed(d dmicv1.Dataset) bool {
	return f.kind == kindDataset || f.in[d]
}

// table is the immutable field table built once from fieldSpecs.
type table struct {
	byName map[string]*field
	// order lists each dataset's fields in canonical (encoding) order; the
	// unspecified dataset's entry lists every field once.
	order [numDatasets][]*field
	// kept lists each dataset's text fields other than the patient's own,
	// in canonical order: the fields that outlive de-identification, which
	// IdentifierField searches.
	kept [numDatasets][]*field
}

var fields = buildTable()

type spec struct {
	name string
	item string
	kind kind
	// ds is the dataset the spec applies to; unspecified means all four.
	ds   dmicv1.Dataset
	setS func(*slab, string)
	getS func(*dmicv1.CommissioningRecord) string
	setI func(*slab, int64)
	getI func(*dmicv1.CommissioningRecord) int64
}

const (
	apc = dmicv1.Dataset_DATASET_APC
	op  = dmicv1.Dataset_DATASET_OUTPATIENT
	ec  = dmicv1.Dataset_DATASET_EMERGENCY_CARE
	lf  = dmicv1.Dataset_DATASET_LOCAL_FLOW
	all = dmicv1.Dataset_DATASET_UNSPECIFIED
)

type rec = dmicv1.CommissioningRecord

// fieldSpecs is the provider format. Its order is the canonical field order.
// Fields shared by several datasets (treatment_function_code, hrg_code,
// primary_procedure_opcs) have one spec per dataset.
var fieldSpecs = []spec{
	{name: fieldDataset, item: "(dmic) dataset of the record", kind: kindDataset},
	{name: fieldUID, item: "CDS UNIQUE IDENTIFIER", setS: func(s *slab, v string) { s.rec.CdsUniqueIdentifier = v }, getS: (*rec).GetCdsUniqueIdentifier},
	{name: fieldUpdateType, item: "CDS UPDATE TYPE", kind: kindUpdateType},
	{name: "cds_applicable_date_time", item: "CDS APPLICABLE DATE and CDS APPLICABLE TIME", setS: func(s *slab, v string) { s.rec.ApplicableDateTime = v }, getS: (*rec).GetApplicableDateTime},
	{name: "provider_code", item: "ORGANISATION CODE (CODE OF PROVIDER)", setS: func(s *slab, v string) { s.rec.ProviderCode = v }, getS: (*rec).GetProviderCode},
	{name: "site_code", item: "SITE CODE (OF TREATMENT)", setS: func(s *slab, v string) { s.rec.SiteCode = v }, getS: (*rec).GetSiteCode},
	{name: "commissioner_code", item: "ORGANISATION CODE (CODE OF COMMISSIONER)", setS: func(s *slab, v string) { s.rec.CommissionerCode = v }, getS: (*rec).GetCommissionerCode},
	{name: "administrative_category_code", item: "ADMINISTRATIVE CATEGORY CODE", setS: func(s *slab, v string) { s.rec.AdministrativeCategoryCode = v }, getS: (*rec).GetAdministrativeCategoryCode},
	{name: "overseas_visitor_status_code", item: "OVERSEAS VISITOR STATUS CLASSIFICATION", setS: func(s *slab, v string) { s.rec.OverseasVisitorStatusCode = v }, getS: (*rec).GetOverseasVisitorStatusCode},
	{name: "overseas_visitor_charging_category", item: "OVERSEAS VISITOR CHARGING CATEGORY", setS: func(s *slab, v string) { s.rec.OverseasVisitorChargingCategory = v }, getS: (*rec).GetOverseasVisitorChargingCategory},
	{name: "service_code", item: "SERVICE CODE (NHS SERVICE AGREEMENT LINE NUMBER in CDS v6.2)", setS: func(s *slab, v string) { s.rec.ServiceCode = v }, getS: (*rec).GetServiceCode},
	{name: "commissioned_service_category_code", item: "COMMISSIONED SERVICE CATEGORY CODE", setS: func(s *slab, v string) { s.rec.CommissionedServiceCategoryCode = v }, getS: (*rec).GetCommissionedServiceCategoryCode},
	{name: "local_public_health_indicator", item: "(local) LOCAL AUTHORITY PUBLIC HEALTH SERVICE INDICATOR", setS: func(s *slab, v string) { s.rec.LocalPublicHealthIndicator = v }, getS: (*rec).GetLocalPublicHealthIndicator},
	{name: "nhs_number", item: "NHS NUMBER", setS: func(s *slab, v string) { s.patient().NhsNumber = v }, getS: func(r *rec) string { return r.GetPatient().GetNhsNumber() }},
	{name: "nhs_number_status_indicator_code", item: "NHS NUMBER STATUS INDICATOR CODE", setS: func(s *slab, v string) { s.patient().NhsNumberStatusIndicatorCode = v }, getS: func(r *rec) string { return r.GetPatient().GetNhsNumberStatusIndicatorCode() }},
	{name: "local_patient_identifier", item: "LOCAL PATIENT IDENTIFIER (EXTENDED)", setS: func(s *slab, v string) { s.patient().LocalPatientIdentifier = v }, getS: func(r *rec) string { return r.GetPatient().GetLocalPatientIdentifier() }},
	{name: "person_birth_date", item: "PERSON BIRTH DATE", setS: func(s *slab, v string) { s.patient().PersonBirthDate = v }, getS: func(r *rec) string { return r.GetPatient().GetPersonBirthDate() }},
	{name: "postcode_of_usual_address", item: "POSTCODE OF USUAL ADDRESS", setS: func(s *slab, v string) { s.patient().PostcodeOfUsualAddress = v }, getS: func(r *rec) string { return r.GetPatient().GetPostcodeOfUsualAddress() }},
	{name: "person_gender_code", item: "PERSON GENDER CODE CURRENT (or PERSON STATED GENDER CODE)", setS: func(s *slab, v string) { s.demographics().PersonGenderCode = v }, getS: func(r *rec) string { return r.GetDemographics().GetPersonGenderCode() }},
	{name: "ethnic_category", item: "ETHNIC CATEGORY", setS: func(s *slab, v string) { s.demographics().EthnicCategory = v }, getS: func(r *rec) string { return r.GetDemographics().GetEthnicCategory() }},
	{name: "general_medical_practice_code", item: "GENERAL MEDICAL PRACTICE CODE (PATIENT REGISTRATION)", setS: func(s *slab, v string) { s.demographics().GeneralMedicalPracticeCode = v }, getS: func(r *rec) string { return r.GetDemographics().GetGeneralMedicalPracticeCode() }},

	// Admitted patient care.
	{name: "cds_type", item: "CDS TYPE", ds: apc, setS: func(s *slab, v string) { s.apc.CdsType = v }, getS: func(r *rec) string { return r.GetApc().GetCdsType() }},
	{name: "hospital_provider_spell_number", item: "HOSPITAL PROVIDER SPELL NUMBER", ds: apc, setS: func(s *slab, v string) { s.apc.HospitalProviderSpellNumber = v }, getS: func(r *rec) string { return r.GetApc().GetHospitalProviderSpellNumber() }},
	{name: "episode_number", item: "EPISODE NUMBER", ds: apc, setS: func(s *slab, v string) { s.apc.EpisodeNumber = v }, getS: func(r *rec) string { return r.GetApc().GetEpisodeNumber() }},
	{name: "start_date_hospital_provider_spell", item: "START DATE (HOSPITAL PROVIDER SPELL)", ds: apc, setS: func(s *slab, v string) { s.apc.StartDateHospitalProviderSpell = v }, getS: func(r *rec) string { return r.GetApc().GetStartDateHospitalProviderSpell() }},
	{name: "admission_method_code", item: "ADMISSION METHOD CODE (HOSPITAL PROVIDER SPELL)", ds: apc, setS: func(s *slab, v string) { s.apc.AdmissionMethodCode = v }, getS: func(r *rec) string { return r.GetApc().GetAdmissionMethodCode() }},
	{name: "source_of_admission_code", item: "SOURCE OF ADMISSION CODE (HOSPITAL PROVIDER SPELL)", ds: apc, setS: func(s *slab, v string) { s.apc.SourceOfAdmissionCode = v }, getS: func(r *rec) string { return r.GetApc().GetSourceOfAdmissionCode() }},
	{name: "start_date_episode", item: "START DATE (EPISODE)", ds: apc, setS: func(s *slab, v string) { s.apc.StartDateEpisode = v }, getS: func(r *rec) string { return r.GetApc().GetStartDateEpisode() }},
	{name: "end_date_episode", item: "END DATE (EPISODE)", ds: apc, setS: func(s *slab, v string) { s.apc.EndDateEpisode = v }, getS: func(r *rec) string { return r.GetApc().GetEndDateEpisode() }},
	{name: "discharge_date_hospital_provider_spell", item: "DISCHARGE DATE (HOSPITAL PROVIDER SPELL)", ds: apc, setS: func(s *slab, v string) { s.apc.DischargeDateHospitalProviderSpell = v }, getS: func(r *rec) string { return r.GetApc().GetDischargeDateHospitalProviderSpell() }},
	{name: "discharge_method_code", item: "DISCHARGE METHOD CODE (HOSPITAL PROVIDER SPELL)", ds: apc, setS: func(s *slab, v string) { s.apc.DischargeMethodCode = v }, getS: func(r *rec) string { return r.GetApc().GetDischargeMethodCode() }},
	{name: "discharge_destination_code", item: "DISCHARGE DESTINATION CODE (HOSPITAL PROVIDER SPELL)", ds: apc, setS: func(s *slab, v string) { s.apc.DischargeDestinationCode = v }, getS: func(r *rec) string { return r.GetApc().GetDischargeDestinationCode() }},
	{name: "patient_classification_code", item: "PATIENT CLASSIFICATION CODE", ds: apc, setS: func(s *slab, v string) { s.apc.PatientClassificationCode = v }, getS: func(r *rec) string { return r.GetApc().GetPatientClassificationCode() }},
	{name: "treatment_function_code", item: "ACTIVITY TREATMENT FUNCTION CODE", ds: apc, setS: func(s *slab, v string) { s.apc.TreatmentFunctionCode = v }, getS: func(r *rec) string { return r.GetApc().GetTreatmentFunctionCode() }},
	{name: "primary_diagnosis_icd", item: "PRIMARY DIAGNOSIS (ICD)", ds: apc, setS: func(s *slab, v string) { s.apc.PrimaryDiagnosisIcd = v }, getS: func(r *rec) string { return r.GetApc().GetPrimaryDiagnosisIcd() }},
	{name: "primary_procedure_opcs", item: "PRIMARY PROCEDURE (OPCS)", ds: apc, setS: func(s *slab, v string) { s.apc.PrimaryProcedureOpcs = v }, getS: func(r *rec) string { return r.GetApc().GetPrimaryProcedureOpcs() }},
	{name: "secondary_diagnoses_icd", item: "SECONDARY DIAGNOSIS (ICD), ';'-separated", ds: apc, setS: func(s *slab, v string) { s.apc.SecondaryDiagnosesIcd = v }, getS: func(r *rec) string { return r.GetApc().GetSecondaryDiagnosesIcd() }},
	{name: "secondary_procedures_opcs", item: "SECONDARY PROCEDURE (OPCS), ';'-separated", ds: apc, setS: func(s *slab, v string) { s.apc.SecondaryProceduresOpcs = v }, getS: func(r *rec) string { return r.GetApc().GetSecondaryProceduresOpcs() }},
	{name: "point_of_delivery_code", item: "POINT OF DELIVERY CODE", ds: apc, setS: func(s *slab, v string) { s.rec.PointOfDeliveryCode = v }, getS: (*rec).GetPointOfDeliveryCode},
	{name: "hrg_code", item: "HEALTHCARE RESOURCE GROUP CODE", ds: apc, setS: func(s *slab, v string) { s.apc.HrgCode = v }, getS: func(r *rec) string { return r.GetApc().GetHrgCode() }},

	// Outpatient attendance.
	{name: "attendance_identifier", item: "ATTENDANCE IDENTIFIER", ds: op, setS: func(s *slab, v string) { s.op.AttendanceIdentifier = v }, getS: func(r *rec) string { return r.GetOutpatient().GetAttendanceIdentifier() }},
	{name: "appointment_date", item: "APPOINTMENT DATE", ds: op, setS: func(s *slab, v string) { s.op.AppointmentDate = v }, getS: func(r *rec) string { return r.GetOutpatient().GetAppointmentDate() }},
	{name: "attended_or_did_not_attend_code", item: "ATTENDED OR DID NOT ATTEND CODE", ds: op, setS: func(s *slab, v string) { s.op.AttendedOrDidNotAttendCode = v }, getS: func(r *rec) string { return r.GetOutpatient().GetAttendedOrDidNotAttendCode() }},
	{name: "first_attendance_code", item: "FIRST ATTENDANCE CODE", ds: op, setS: func(s *slab, v string) { s.op.FirstAttendanceCode = v }, getS: func(r *rec) string { return r.GetOutpatient().GetFirstAttendanceCode() }},
	{name: "treatment_function_code", ds: op, setS: func(s *slab, v string) { s.op.TreatmentFunctionCode = v }, getS: func(r *rec) string { return r.GetOutpatient().GetTreatmentFunctionCode() }},
	{name: "priority_type_code", item: "PRIORITY TYPE CODE", ds: op, setS: func(s *slab, v string) { s.op.PriorityTypeCode = v }, getS: func(r *rec) string { return r.GetOutpatient().GetPriorityTypeCode() }},
	{name: "primary_procedure_opcs", ds: op, setS: func(s *slab, v string) { s.op.PrimaryProcedureOpcs = v }, getS: func(r *rec) string { return r.GetOutpatient().GetPrimaryProcedureOpcs() }},
	{name: "hrg_code", ds: op, setS: func(s *slab, v string) { s.op.HrgCode = v }, getS: func(r *rec) string { return r.GetOutpatient().GetHrgCode() }},
	{name: "primary_diagnosis_icd", ds: op, setS: func(s *slab, v string) { s.op.PrimaryDiagnosisIcd = v }, getS: func(r *rec) string { return r.GetOutpatient().GetPrimaryDiagnosisIcd() }},
	{name: "secondary_diagnoses_icd", ds: op, setS: func(s *slab, v string) { s.op.SecondaryDiagnosesIcd = v }, getS: func(r *rec) string { return r.GetOutpatient().GetSecondaryDiagnosesIcd() }},
	{name: "secondary_procedures_opcs", ds: op, setS: func(s *slab, v string) { s.op.SecondaryProceduresOpcs = v }, getS: func(r *rec) string { return r.GetOutpatient().GetSecondaryProceduresOpcs() }},
	{name: "point_of_delivery_code", ds: op, setS: func(s *slab, v string) { s.rec.PointOfDeliveryCode = v }, getS: (*rec).GetPointOfDeliveryCode},

	// Emergency care attendance.
	{name: "ec_attendance_identifier", item: "EMERGENCY CARE ATTENDANCE IDENTIFIER", ds: ec, setS: func(s *slab, v string) { s.ec.EcAttendanceIdentifier = v }, getS: func(r *rec) string { return r.GetEmergencyCare().GetEcAttendanceIdentifier() }},
	{name: "ec_arrival_date", item: "EMERGENCY CARE ARRIVAL DATE", ds: ec, setS: func(s *slab, v string) { s.ec.EcArrivalDate = v }, getS: func(r *rec) string { return r.GetEmergencyCare().GetEcArrivalDate() }},
	{name: "ec_arrival_time", item: "EMERGENCY CARE ARRIVAL TIME", ds: ec, setS: func(s *slab, v string) { s.ec.EcArrivalTime = v }, getS: func(r *rec) string { return r.GetEmergencyCare().GetEcArrivalTime() }},
	{name: "ec_department_type", item: "EMERGENCY CARE DEPARTMENT TYPE", ds: ec, setS: func(s *slab, v string) { s.ec.EcDepartmentType = v }, getS: func(r *rec) string { return r.GetEmergencyCare().GetEcDepartmentType() }},
	{name: "ec_chief_complaint_snomed_ct", item: "EMERGENCY CARE CHIEF COMPLAINT (SNOMED CT)", ds: ec, setS: func(s *slab, v string) { s.ec.EcChiefComplaintSnomedCt = v }, getS: func(r *rec) string { return r.GetEmergencyCare().GetEcChiefComplaintSnomedCt() }},
	{name: "ec_departure_date", item: "EMERGENCY CARE DEPARTURE DATE", ds: ec, setS: func(s *slab, v string) { s.ec.EcDepartureDate = v }, getS: func(r *rec) string { return r.GetEmergencyCare().GetEcDepartureDate() }},
	{name: "hrg_code", ds: ec, setS: func(s *slab, v string) { s.ec.HrgCode = v }, getS: func(r *rec) string { return r.GetEmergencyCare().GetHrgCode() }},
	{name: "point_of_delivery_code", ds: ec, setS: func(s *slab, v string) { s.rec.PointOfDeliveryCode = v }, getS: (*rec).GetPointOfDeliveryCode},

	// Local patient-level contract monitoring flow.
	{name: "activity_date", item: "(local) ACTIVITY DATE", ds: lf, setS: func(s *slab, v string) { s.lf.ActivityDate = v }, getS: func(r *rec) string { return r.GetLocalFlow().GetActivityDate() }},
	{name: "point_of_delivery_code", item: "(local) POINT OF DELIVERY CODE", ds: lf, setS: func(s *slab, v string) { s.lf.PointOfDeliveryCode = v }, getS: func(r *rec) string { return r.GetLocalFlow().GetPointOfDeliveryCode() }},
	{name: "treatment_function_code", ds: lf, setS: func(s *slab, v string) { s.lf.TreatmentFunctionCode = v }, getS: func(r *rec) string { return r.GetLocalFlow().GetTreatmentFunctionCode() }},
	{name: "hrg_code", ds: lf, setS: func(s *slab, v string) { s.lf.HrgCode = v }, getS: func(r *rec) string { return r.GetLocalFlow().GetHrgCode() }},
	{name: "price_pence", item: "(local) PRICE, in pence", kind: kindInt, ds: lf, setI: func(s *slab, v int64) { s.lf.PricePence = v }, getI: func(r *rec) int64 { return r.GetLocalFlow().GetPricePence() }},
	{name: "activity_count", item: "(local) ACTIVITY COUNT", kind: kindInt, ds: lf, setI: func(s *slab, v int64) { s.lf.ActivityCount = v }, getI: func(r *rec) int64 { return r.GetLocalFlow().GetActivityCount() }},
}

func buildTable() *table {
	t := &table{byName: make(map[string]*field, len(fieldSpecs))}
	for _, sp := range fieldSpecs {
		f := t.byName[sp.name]
		if f == nil {
			f = &field{name: sp.name, item: sp.item, kind: sp.kind, key: `,"` + sp.name + `":`}
			t.byName[sp.name] = f
			t.order[all] = append(t.order[all], f)
		} else if f.kind != sp.kind {
			panic("record: field " + sp.name + " declared with two kinds")
		}
		for d := apc; d <= lf; d++ {
			if sp.ds != all && sp.ds != d {
				continue
			}
			if f.in[d] {
				panic("record: field " + sp.name + " declared twice for one dataset")
			}
			f.in[d] = true
			f.setStr[d], f.getStr[d] = sp.setS, sp.getS
			f.setInt[d], f.getInt[d] = sp.setI, sp.getI
			t.order[d] = append(t.order[d], f)
		}
	}
	for d := apc; d <= lf; d++ {
		for _, f := range t.order[d] {
			if f.getStr[d] != nil && !patientFields[f.name] {
				t.kept[d] = append(t.kept[d], f)
			}
		}
	}
	return t
}

// FieldNames lists the fields a record of dataset d may carry, in canonical
// order, "dataset" first. For the unspecified dataset it lists every field the
// decoder accepts, each once.
func FieldNames(d dmicv1.Dataset) []string {
	if d < 0 || int(d) >= numDatasets {
		return nil
	}
	return namesOf(fields.order[d])
}

// namesOf lists the fields' names, in their order.
func namesOf(fs []*field) []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

// DataDictionaryItem is the NHS Data Dictionary item (or, for local-flow
// fields, the local item) a field carries; "" for an unknown field.
func DataDictionaryItem(name string) string {
	if f := fields.byName[name]; f != nil {
		return f.item
	}
	return ""
}

// Getter returns how to read field name of a record of dataset d as text, and
// whether records of d have that field. An integer field reads in decimal ("0"
// when absent: the format cannot tell the two apart); cds_update_type reads
// "9", "1" or "" when unspecified. Validation rules written as data name
// fields this way.
func Getter(name string, d dmicv1.Dataset) (func(*dmicv1.CommissioningRecord) string, bool) {
	f := fields.byName[name]
	if f == nil || d <= all || int(d) >= numDatasets {
		return nil, false
	}
	switch f.kind {
	case kindDataset:
		return func(*dmicv1.CommissioningRecord) string { return DatasetName(d) }, true
	case kindUpdateType:
		return func(r *dmicv1.CommissioningRecord) string {
			if u := r.GetUpdateType(); u != dmicv1.UpdateType_UPDATE_TYPE_UNSPECIFIED {
				return strconv.Itoa(int(u))
			}
			return ""
		}, true
	}
	if !f.in[d] {
		return nil, false
	}
	if f.kind == kindInt {
		get := f.getInt[d]
		return func(r *dmicv1.CommissioningRecord) string { return strconv.FormatInt(get(r), 10) }, true
	}
	return f.getStr[d], true
}
