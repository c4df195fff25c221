// Package match holds the rules of reconciliation, as plain Go: what is
// remembered of each copy of an activity (never a field value, only its
// hash), how a revision folds into the state of its match key, and what the
// result is: matched, local only, national only or mismatched, with the
// fields that differ. The reconcile stage keeps one Entry per match key and
// its changelog; this package knows nothing of either.
package match

import (
	"slices"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Side is what reconcile remembers of one copy of an activity.
type Side struct {
	RecordKey string `json:"record_key"`
	Version   uint64 `json:"version"`
	Deleted   bool   `json:"deleted,omitempty"`
	// Fields holds a 64-bit FNV-1a hash of each compared field's value, in
	// comparedFields order (0 for an empty value). Equality is all reconcile
	// needs, a fixed array costs the collector nothing to scan, and the
	// changelog then holds no field values at all.
	Fields [numCompared]uint64 `json:"fields"`
	// KeyVersion is the pseudonym's key version: pseudonyms made under two
	// versions of the key cannot be compared.
	KeyVersion string `json:"key_version,omitempty"`
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

// comparedFields are the fields whose disagreement makes a mismatch, sorted by
// name. They are what commissioners query in a discrepancy: when, who pays,
// what was done and how it groups for payment. None is patient-identifiable.
var comparedFields = [numCompared]string{
	fActivityDate:         "activity_date",
	fAdmissionMethod:      "admission_method_code",
	fAttended:             "attended_or_did_not_attend_code",
	fCommissioner:         "commissioner_code",
	fECDepartment:         "ec_department_type",
	fEndDateEpisode:       "end_date_episode",
	fFirstAttendance:      "first_attendance_code",
	fHRG:                  "hrg_code",
	fPatientClass:         "patient_classification_code",
	fPointOfDelivery:      "point_of_delivery_code",
	fPrice:                "price_pence",
	fPrimaryDiagnosis:     "primary_diagnosis_icd",
	fPrimaryProcedure:     "primary_procedure_opcs",
	fPseudoNHSNumber:      "pseudo_nhs_number",
	fSubmittedCommissoner: "submitted_commissioner_code",
	fTreatmentFunction:    "treatment_function_code",
}

const (
	fActivityDate = iota
	fAdmissionMethod
	fAttended
	fCommissioner
	fECDepartment
	fEndDateEpisode
	fFirstAttendance
	fHRG
	fPatientClass
	fPointOfDelivery
	fPrice
	fPrimaryDiagnosis
	fPrimaryProcedure
	fPseudoNHSNumber
	fSubmittedCommissoner
	fTreatmentFunction
	numCompared
)

// hash is FNV-1a 64 of a field's value; 0 for the empty value.
func hash(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
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

// Apply folds a copy's revision (Read) into the entry of its match key.
func (e *Entry) Apply(rv *Revision) Outcome {
	side := &Side{
		RecordKey:  rv.RecordKey,
		Version:    rv.Version,
		Deleted:    rv.Deleted,
		Fields:     rv.Fields,
		KeyVersion: rv.KeyVersion,
	}
	slot := &e.Local
	if rv.Source == dmicv1.Source_SOURCE_NATIONAL {
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
	e.Dataset = rv.Dataset
	e.Provider = rv.Provider
	if d := rv.ActivityDate; d != "" && !side.Deleted {
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
		if lv, nv := e.Local.KeyVersion, e.National.KeyVersion; lv != "" && nv != "" && lv != nv {
			// Both pseudonymised, under different key versions (a rotation
			// between the two copies): their pseudonyms say nothing.
			res.DifferingFields = slices.DeleteFunc(res.DifferingFields, func(f string) bool { return f == comparedFields[fPseudoNHSNumber] })
		}
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

// Differences lists, sorted by name, the compared fields whose values differ.
func Differences(a, b [numCompared]uint64) []string {
	var out []string
	for i, name := range comparedFields {
		if a[i] != b[i] {
			out = append(out, name)
		}
	}
	return out
}
