package chstore

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var receivedAt = time.Date(2025, 4, 2, 10, 30, 15, 0, time.UTC)

// apcRecord returns a fully populated de-identified APC record, as the assign
// stage would emit it for a patient whose identifiers (before de-identification)
// were NHS number 943 476 5919 and postcode LS1 4AP.
func apcRecord(key string, version uint64) *dmicv1.DeidentifiedRecord {
	sum := sha256.Sum256([]byte("nhs:" + key))
	return &dmicv1.DeidentifiedRecord{
		Header: &dmicv1.EnvelopeHeader{
			RecordKey:        key,
			Dataset:          dmicv1.Dataset_DATASET_APC,
			Source:           dmicv1.Source_SOURCE_PROVIDER,
			SubmitterOrgCode: "RR8",
			SubmissionId:     "sub-20250402-0001",
			ReceivedTime:     timestamppb.New(receivedAt),
			SpecVersion:      "cds-6.3",
			Traceparent:      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			RawPartition:     3,
			RawOffset:        120034,
			LineNumber:       17,
			Version:          version,
		},
		Activity: &dmicv1.DeidentifiedActivity{
			CdsUniqueIdentifier:          "BRR8" + key,
			UpdateType:                   dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
			ApplicableDateTime:           "2025-04-01T09:00:00Z",
			ProviderCode:                 "RR8",
			SiteCode:                     "RR801",
			SubmittedCommissionerCode:    "15F",
			AdministrativeCategoryCode:   "01",
			OverseasVisitorStatusCode:    "8",
			PseudoNhsNumber:              hex.EncodeToString(sum[:]),
			PseudonymKeyVersion:          "k2025a",
			NhsNumberStatusIndicatorCode: "01",
			AgeAtActivityYears:           67,
			AgeBand:                      "65-69",
			ActivityDate:                 "2025-03-14",
			Demographics:                 &dmicv1.Demographics{PersonGenderCode: "2", EthnicCategory: "A", GeneralMedicalPracticeCode: "B86001"},
			Residence: &dmicv1.Residence{
				Lsoa_2011: "E01011365", Lsoa_2021: "E01033010", Msoa_2011: "E02002383", Msoa_2021: "E02006875",
				LocalAuthority: "E08000035", SubIcb: "15F", Icb: "QWO", Country: "E92000001", PostcodeSector: "LS1 4",
			},
			Activity: &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{
				CdsType:                            "130",
				HospitalProviderSpellNumber:        "SP" + key,
				EpisodeNumber:                      "01",
				StartDateHospitalProviderSpell:     "2025-03-10",
				AdmissionMethodCode:                "21",
				SourceOfAdmissionCode:              "19",
				StartDateEpisode:                   "2025-03-10",
				EndDateEpisode:                     "2025-03-14",
				DischargeDateHospitalProviderSpell: "2025-03-14",
				DischargeMethodCode:                "1",
				DischargeDestinationCode:           "19",
				PatientClassificationCode:          "1",
				TreatmentFunctionCode:              "300",
				PrimaryDiagnosisIcd:                "I21.9",
				PrimaryProcedureOpcs:               "K40.1",
				HrgCode:                            "EB10A",
			}},
		},
		MatchKey: "mk|" + key,
		Assignment: &dmicv1.Assignment{
			CommissionerCode: "15F", AssignmentMethod: "Sub-ICB (Practice Mapped)", CommissionerType: "Sub-ICB", RuleId: "POP_PRACTICE",
		},
		Warnings: []*dmicv1.Failure{{RuleId: "W_ETHNIC", Field: "ethnic_category", Severity: dmicv1.Severity_SEVERITY_WARNING, Message: "ethnic category not stated"}},
	}
}

func outpatientRecord(key string, version uint64) *dmicv1.DeidentifiedRecord {
	r := apcRecord(key, version)
	r.Header.Dataset = dmicv1.Dataset_DATASET_OUTPATIENT
	r.Activity.ActivityDate = "2025-02-03"
	r.Activity.AgeBand = "30-34"
	r.Activity.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{
		AttendanceIdentifier: "AT" + key, AppointmentDate: "2025-02-03", AttendedOrDidNotAttendCode: "5",
		FirstAttendanceCode: "1", TreatmentFunctionCode: "110", PriorityTypeCode: "1", PrimaryProcedureOpcs: "X62.1", HrgCode: "WF01B",
	}}
	r.Assignment = &dmicv1.Assignment{CommissionerCode: "15F", AssignmentMethod: "Sub-ICB (Postcode Mapped)", CommissionerType: "Sub-ICB", RuleId: "POP_POSTCODE"}
	return r
}

func emergencyRecord(key string, version uint64) *dmicv1.DeidentifiedRecord {
	r := apcRecord(key, version)
	r.Header.Dataset = dmicv1.Dataset_DATASET_EMERGENCY_CARE
	r.Activity.ActivityDate = "2025-01-20"
	r.Activity.AgeAtActivityYears = 0
	r.Activity.AgeAtActivityWeeks = 12
	r.Activity.AgeBand = "0"
	r.Activity.Activity = &dmicv1.DeidentifiedActivity_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{
		EcAttendanceIdentifier: "EC" + key, EcArrivalDate: "2025-01-20", EcArrivalTime: "23:41",
		EcDepartmentType: "01", EcChiefComplaintSnomedCt: "21522001", EcDepartureDate: "2025-01-21", HrgCode: "VB07Z",
	}}
	return r
}

func localFlowRecord(key string, version uint64) *dmicv1.DeidentifiedRecord {
	r := apcRecord(key, version)
	r.Header.Dataset = dmicv1.Dataset_DATASET_LOCAL_FLOW
	r.Activity.ActivityDate = "2024-12-05"
	r.Activity.Activity = &dmicv1.DeidentifiedActivity_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{
		ActivityDate: "2024-12-05", PointOfDeliveryCode: "OPFUP", TreatmentFunctionCode: "320", HrgCode: "WF01A",
		PricePence: 12345, ActivityCount: 2,
	}}
	return r
}

func deadLetter(offset int64, failures ...*dmicv1.Failure) *dmicv1.DeadLetter {
	return &dmicv1.DeadLetter{
		Stage:    "validate",
		Failures: failures,
		Header: &dmicv1.EnvelopeHeader{
			RecordKey: "RR8|apc|BRR8X1", Dataset: dmicv1.Dataset_DATASET_APC, Source: dmicv1.Source_SOURCE_PROVIDER,
			SubmitterOrgCode: "RR8", SubmissionId: "sub-20250402-0001", ReceivedTime: timestamppb.New(receivedAt), LineNumber: 40 + offset,
		},
		SourceTopic:     "dmic.raw",
		SourcePartition: 1,
		SourceOffset:    offset,
		// The payload holds the record as submitted, identifiers included: it must never be stored.
		Payload:      []byte(`{"nhs_number":"9434765919","postcode_of_usual_address":"LS1 4AP","person_birth_date":"1957-11-02"}`),
		RecordId:     "BRR8X1",
		ProviderCode: "RR8",
		RejectedTime: timestamppb.New(receivedAt.Add(3 * time.Second)),
	}
}

func failure(rule, field string) *dmicv1.Failure {
	return &dmicv1.Failure{RuleId: rule, Field: field, Severity: dmicv1.Severity_SEVERITY_ERROR, Message: "record BRR8X1: " + field + " fails " + rule}
}

func reconciliation(matchKey string, seq uint64, status dmicv1.ReconciliationStatus, differing ...string) *dmicv1.ReconciliationResult {
	return &dmicv1.ReconciliationResult{
		MatchKey: matchKey, Status: status, Dataset: dmicv1.Dataset_DATASET_APC, ProviderCode: "RR8",
		LocalRecordKey: "RR8|apc|L" + matchKey, NationalRecordKey: "SUS|apc|N" + matchKey,
		LocalVersion: 10, NationalVersion: 11, DifferingFields: differing, Sequence: seq, ActivityDate: "2025-03-14",
	}
}
