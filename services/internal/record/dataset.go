// Package record reads and writes the provider record format: one flat JSON
// object per record (JSON lines), or CSV with a header row of the same field
// names. It turns those records into dmicv1.CommissioningRecord messages and
// back, and reports every record it cannot decode as a DecodeError that names
// the line, field and rule but never a field's value.
package record

import (
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// ParseDataset reads a dataset name as providers write it. It accepts the
// canonical names and the abbreviations used in submissions, in any case.
func ParseDataset(s string) (dmicv1.Dataset, error) {
	s = strings.TrimSpace(s)
	for _, a := range datasetAliases {
		if strings.EqualFold(s, a.name) {
			return a.d, nil
		}
	}
	return dmicv1.Dataset_DATASET_UNSPECIFIED, &DecodeError{
		Field:   fieldDataset,
		RuleID:  RuleValue,
		Message: "unknown dataset; expected apc, outpatient, emergency_care or local_flow",
	}
}

// DatasetName is the canonical name of a dataset, as written in the
// "dataset" field; "" for an unspecified or unknown dataset.
func DatasetName(d dmicv1.Dataset) string {
	switch d {
	case dmicv1.Dataset_DATASET_APC:
		return "apc"
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		return "outpatient"
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		return "emergency_care"
	case dmicv1.Dataset_DATASET_LOCAL_FLOW:
		return "local_flow"
	}
	return ""
}

var datasetAliases = [...]struct {
	name string
	d    dmicv1.Dataset
}{
	{"apc", dmicv1.Dataset_DATASET_APC},
	{"outpatient", dmicv1.Dataset_DATASET_OUTPATIENT},
	{"op", dmicv1.Dataset_DATASET_OUTPATIENT},
	{"emergency_care", dmicv1.Dataset_DATASET_EMERGENCY_CARE},
	{"ecds", dmicv1.Dataset_DATASET_EMERGENCY_CARE},
	{"ec", dmicv1.Dataset_DATASET_EMERGENCY_CARE},
	{"local_flow", dmicv1.Dataset_DATASET_LOCAL_FLOW},
	{"plcm", dmicv1.Dataset_DATASET_LOCAL_FLOW},
}

// knownDataset reports whether d is one of the four datasets.
func knownDataset(d dmicv1.Dataset) bool {
	return d >= dmicv1.Dataset_DATASET_APC && d <= dmicv1.Dataset_DATASET_LOCAL_FLOW
}

// DatasetOf is the dataset of a record's activity; unspecified when the
// record has none.
func DatasetOf(r *dmicv1.CommissioningRecord) dmicv1.Dataset {
	switch r.GetActivity().(type) {
	case *dmicv1.CommissioningRecord_Apc:
		return dmicv1.Dataset_DATASET_APC
	case *dmicv1.CommissioningRecord_Outpatient:
		return dmicv1.Dataset_DATASET_OUTPATIENT
	case *dmicv1.CommissioningRecord_EmergencyCare:
		return dmicv1.Dataset_DATASET_EMERGENCY_CARE
	case *dmicv1.CommissioningRecord_LocalFlow:
		return dmicv1.Dataset_DATASET_LOCAL_FLOW
	}
	return dmicv1.Dataset_DATASET_UNSPECIFIED
}

// RecordID is the record's identity within its submitter and dataset: the
// CDS unique identifier (or the local flow's own record id).
func RecordID(r *dmicv1.CommissioningRecord) string {
	return r.GetCdsUniqueIdentifier()
}

// ActivityDate is the date the record's activity happened, YYYY-MM-DD as
// submitted: apc end_date_episode (else start_date_episode), outpatient
// appointment_date, emergency_care ec_arrival_date, local_flow activity_date.
// It is "" when the record has no activity or the field is empty.
func ActivityDate(r *dmicv1.CommissioningRecord) string {
	switch a := r.GetActivity().(type) {
	case *dmicv1.CommissioningRecord_Apc:
		if d := a.Apc.GetEndDateEpisode(); d != "" {
			return d
		}
		return a.Apc.GetStartDateEpisode()
	case *dmicv1.CommissioningRecord_Outpatient:
		return a.Outpatient.GetAppointmentDate()
	case *dmicv1.CommissioningRecord_EmergencyCare:
		return a.EmergencyCare.GetEcArrivalDate()
	case *dmicv1.CommissioningRecord_LocalFlow:
		return a.LocalFlow.GetActivityDate()
	}
	return ""
}

// Activities is what a provider's record (CommissioningRecord) and a
// de-identified one (DeidentifiedActivity) both hold: one of the four
// activities, the others nil.
type Activities interface {
	GetApc() *dmicv1.ApcEpisode
	GetOutpatient() *dmicv1.OutpatientAttendance
	GetEmergencyCare() *dmicv1.EmergencyCareAttendance
	GetLocalFlow() *dmicv1.LocalFlowRecord
}

// CAMDate is the date the Commissioner Assignment Method is applied at, by
// data set (CAM 2025/26 guidance, "When to assign commissioner code", p.6):
// admitted care the spell's discharge date, or the spell's start date for
// unfinished episodes (CDS 180-200) and while there is no discharge date;
// outpatients the appointment date; emergency care the arrival date. A local
// flow uses its activity date. A record with none of these gets fallback,
// its activity date. Commissioner assignment decides by it, and validation
// checks the service code against the list of its financial year (CODE-031),
// so both read it here.
func CAMDate(a Activities, fallback string) string {
	d := ""
	switch {
	case a.GetApc() != nil:
		apc := a.GetApc()
		switch apc.GetCdsType() {
		case "180", "190", "200":
			d = apc.GetStartDateHospitalProviderSpell()
		default:
			if d = apc.GetDischargeDateHospitalProviderSpell(); d == "" {
				d = apc.GetStartDateHospitalProviderSpell()
			}
		}
	case a.GetOutpatient() != nil:
		d = a.GetOutpatient().GetAppointmentDate()
	case a.GetEmergencyCare() != nil:
		d = a.GetEmergencyCare().GetEcArrivalDate()
	case a.GetLocalFlow() != nil:
		d = a.GetLocalFlow().GetActivityDate()
	}
	if d == "" {
		d = fallback
	}
	return d
}

// ParseDate reads a date of the record format: strictly YYYY-MM-DD, a year
// 0001-9999 and a day that exists in its month (29 February only in leap
// years: divisible by 4, and by 400 for century years). It is the one
// calendar-date rule: validation's date format (rule DOB-001, DATE-001) and
// de-identification's age both read dates by it.
func ParseDate(s string) (y, m, d int, ok bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	for i := 0; i < len(s); i++ {
		if i == 4 || i == 7 {
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return 0, 0, 0, false
		}
		switch {
		case i < 4:
			y = y*10 + int(s[i]-'0')
		case i < 7:
			m = m*10 + int(s[i]-'0')
		default:
			d = d*10 + int(s[i]-'0')
		}
	}
	if y < 1 || m < 1 || m > 12 || d < 1 || d > DaysIn(y, m) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// LeapYear reports a Gregorian leap year.
func LeapYear(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// DaysIn is the number of days of month m (1-12) of year y.
func DaysIn(y, m int) int {
	switch m {
	case 2:
		if LeapYear(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
