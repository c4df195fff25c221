// Package reconcile matches local provider records with their national (SUS)
// counterparts by match key and reports matched / local only / national only /
// mismatched, with the fields that differ.
//
// The match key is made at de-identification (deid.MatchKey: data set,
// provider and CDS unique identifier), and the de-identified topics are keyed
// by it, so both copies of one activity reach the same partition and the same
// reconcile instance.
package reconcile

import (
	"slices"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Side is what reconcile remembers of one copy of an activity.
type Side struct {
	RecordKey string            `json:"record_key"`
	Version   uint64            `json:"version"`
	Deleted   bool              `json:"deleted,omitempty"`
	Fields    map[string]string `json:"fields"`
}

// Entry is the state of one match key.
type Entry struct {
	Dataset      dmicv1.Dataset `json:"dataset"`
	Provider     string         `json:"provider"`
	ActivityDate string         `json:"activity_date"`
	Local        *Side          `json:"local,omitempty"`
	National     *Side          `json:"national,omitempty"`
	Sequence     uint64         `json:"sequence"`
}

// ComparedFields are the fields whose disagreement makes a mismatch. They are
// what commissioners query in a discrepancy: when, who pays, what was done and
// how it groups for payment. None is patient-identifiable.
var comparedFields = []string{
	"activity_date", "pseudo_nhs_number", "commissioner_code", "submitted_commissioner_code",
	"hrg_code", "treatment_function_code", "primary_diagnosis_icd", "primary_procedure_opcs",
	"admission_method_code", "patient_classification_code", "end_date_episode",
	"attended_or_did_not_attend_code", "first_attendance_code", "ec_department_type",
	"point_of_delivery_code", "price_pence",
}

// Fields extracts the compared fields of a record.
func Fields(r *dmicv1.DeidentifiedRecord) map[string]string {
	a := r.GetActivity()
	f := map[string]string{
		"activity_date":               a.GetActivityDate(),
		"pseudo_nhs_number":           a.GetPseudoNhsNumber(),
		"commissioner_code":           r.GetAssignment().GetCommissionerCode(),
		"submitted_commissioner_code": a.GetSubmittedCommissionerCode(),
	}
	switch x := a.GetActivity().(type) {
	case *dmicv1.DeidentifiedActivity_Apc:
		f["hrg_code"] = x.Apc.GetHrgCode()
		f["treatment_function_code"] = x.Apc.GetTreatmentFunctionCode()
		f["primary_diagnosis_icd"] = x.Apc.GetPrimaryDiagnosisIcd()
		f["primary_procedure_opcs"] = x.Apc.GetPrimaryProcedureOpcs()
		f["admission_method_code"] = x.Apc.GetAdmissionMethodCode()
		f["patient_classification_code"] = x.Apc.GetPatientClassificationCode()
		f["end_date_episode"] = x.Apc.GetEndDateEpisode()
	case *dmicv1.DeidentifiedActivity_Outpatient:
		f["hrg_code"] = x.Outpatient.GetHrgCode()
		f["treatment_function_code"] = x.Outpatient.GetTreatmentFunctionCode()
		f["primary_procedure_opcs"] = x.Outpatient.GetPrimaryProcedureOpcs()
		f["attended_or_did_not_attend_code"] = x.Outpatient.GetAttendedOrDidNotAttendCode()
		f["first_attendance_code"] = x.Outpatient.GetFirstAttendanceCode()
	case *dmicv1.DeidentifiedActivity_EmergencyCare:
		f["hrg_code"] = x.EmergencyCare.GetHrgCode()
		f["ec_department_type"] = x.EmergencyCare.GetEcDepartmentType()
	case *dmicv1.DeidentifiedActivity_LocalFlow:
		f["hrg_code"] = x.LocalFlow.GetHrgCode()
		f["treatment_function_code"] = x.LocalFlow.GetTreatmentFunctionCode()
		f["point_of_delivery_code"] = x.LocalFlow.GetPointOfDeliveryCode()
	}
	for k, v := range f {
		if v == "" {
			delete(f, k)
		}
	}
	return f
}

// Outcome is what applying one record to an entry did.
type Outcome int

const (
	// Changed: the entry moved on; emit the new result.
	Changed Outcome = iota
	// Replayed: the same revision again (a redelivery); emit the current result again.
	Replayed
	// Stale: an older revision than the one held; emit nothing.
	Stale
)

// Apply folds a record into the entry of its match key.
func (e *Entry) Apply(r *dmicv1.DeidentifiedRecord) Outcome {
	h := r.GetHeader()
	side := &Side{
		RecordKey: h.GetRecordKey(),
		Version:   h.GetVersion(),
		Deleted:   r.GetActivity().GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_DELETE,
		Fields:    Fields(r),
	}
	slot := &e.Local
	if h.GetSource() == dmicv1.Source_SOURCE_NATIONAL {
		slot = &e.National
	}
	if cur := *slot; cur != nil {
		switch {
		case side.Version < cur.Version:
			return Stale
		case side.Version == cur.Version:
			return Replayed
		}
	}
	*slot = side
	e.Dataset = h.GetDataset()
	e.Provider = r.GetActivity().GetProviderCode()
	if d := r.GetActivity().GetActivityDate(); d != "" && !side.Deleted {
		e.ActivityDate = d
	}
	e.Sequence++
	return Changed
}

// Result is the entry's reconciliation result.
func (e *Entry) Result(matchKey string) *dmicv1.ReconciliationResult {
	res := &dmicv1.ReconciliationResult{
		MatchKey:     matchKey,
		Dataset:      e.Dataset,
		ProviderCode: e.Provider,
		Sequence:     e.Sequence,
		ActivityDate: e.ActivityDate,
	}
	local := e.Local != nil && !e.Local.Deleted
	national := e.National != nil && !e.National.Deleted
	if e.Local != nil {
		res.LocalRecordKey, res.LocalVersion = e.Local.RecordKey, e.Local.Version
	}
	if e.National != nil {
		res.NationalRecordKey, res.NationalVersion = e.National.RecordKey, e.National.Version
	}
	switch {
	case local && national:
		res.DifferingFields = Differences(e.Local.Fields, e.National.Fields)
		res.Status = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED
		if len(res.DifferingFields) > 0 {
			res.Status = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MISMATCHED
		}
	case local:
		res.Status = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_LOCAL_ONLY
	case national:
		res.Status = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_NATIONAL_ONLY
	default:
		// Both copies deleted: nothing left to reconcile.
		res.Status = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_UNSPECIFIED
	}
	return res
}

// Differences lists, sorted, the compared fields whose values differ.
func Differences(a, b map[string]string) []string {
	var out []string
	for _, f := range comparedFields {
		if a[f] != b[f] {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}
