package chstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
)

// camRecord is a record of each data set with every field the activity
// table keeps of it set (those it does not keep, such as the pseudonym and
// age, are left out: the rebuild does not return them).
func camRecord(ds dmicv1.Dataset, uid string, version uint64, camDate string) *dmicv1.DeidentifiedRecord {
	a := &dmicv1.DeidentifiedActivity{
		CdsUniqueIdentifier: uid, ProviderCode: "RCD", SiteCode: "RCD01", SubmittedCommissionerCode: "02T",
		AdministrativeCategoryCode: "01", OverseasVisitorStatusCode: "8", ActivityDate: camDate,
		Demographics: &dmicv1.Demographics{GeneralMedicalPracticeCode: "B82005"},
		Residence: &dmicv1.Residence{LocalAuthority: "E08000035", SubIcb: "15F", Icb: "QWO", Country: "E92000001",
			PostcodeSector: "LS1 4", PseudoPostcode: "", HealthArea: "E38000225", Region: "E40000012",
			JusticeFacilityCode: "LEP", JusticeHub: "14F"},
		OverseasVisitorChargingCategory: "A", ServiceCode: "NCBPS01C", CommissionedServiceCategoryCode: "21",
		PointOfDeliveryCode: "EL", LocalPublicHealthIndicator: "Y",
	}
	switch ds {
	case dmicv1.Dataset_DATASET_APC:
		a.Activity = &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{CdsType: "130", EpisodeNumber: "01",
			StartDateHospitalProviderSpell: "2025-05-01", AdmissionMethodCode: "11", SourceOfAdmissionCode: "39",
			StartDateEpisode: "2025-05-01", EndDateEpisode: camDate, DischargeDateHospitalProviderSpell: camDate,
			DischargeMethodCode: "1", DischargeDestinationCode: "19", PatientClassificationCode: "1", TreatmentFunctionCode: "100",
			PrimaryDiagnosisIcd: "N97.0", PrimaryProcedureOpcs: "Q13.1", HrgCode: "MC10A",
			SecondaryDiagnosesIcd: "Z31.1;;E11", SecondaryProceduresOpcs: "Y96.1"}}
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		a.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AppointmentDate: camDate,
			AttendedOrDidNotAttendCode: "5", FirstAttendanceCode: "1", TreatmentFunctionCode: "502", PriorityTypeCode: "2",
			PrimaryProcedureOpcs: "Q38.2", HrgCode: "WF01B", PrimaryDiagnosisIcd: "N46", SecondaryDiagnosesIcd: "Z350",
			SecondaryProceduresOpcs: "Q48.1;Q56.2"}}
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		a.Activity = &dmicv1.DeidentifiedActivity_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{EcArrivalDate: camDate,
			EcArrivalTime: "10:15", EcDepartmentType: "01", EcChiefComplaintSnomedCt: "21522001", EcDepartureDate: camDate, HrgCode: "VB09Z"}}
	case dmicv1.Dataset_DATASET_LOCAL_FLOW:
		a.Activity = &dmicv1.DeidentifiedActivity_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{ActivityDate: camDate,
			PointOfDeliveryCode: "DRUG", TreatmentFunctionCode: "300", HrgCode: "XD01Z", PricePence: 12345, ActivityCount: 3}}
	}
	return &dmicv1.DeidentifiedRecord{
		Header: &dmicv1.EnvelopeHeader{RecordKey: "RCD|" + uid, Version: version, Dataset: ds,
			Source: dmicv1.Source_SOURCE_PROVIDER, SubmitterOrgCode: "RCD"},
		Activity: a, MatchKey: "m-" + uid,
		Assignment: &dmicv1.Assignment{CommissionerCode: "15F", AssignmentMethod: "Sub-ICB (Practice Mapped)", CommissionerType: "Sub-ICB",
			RuleId: "CAM-C-5", CamVersion: "2025/26", Step: "C-5", ReasonCode: "15F_C_5_1", Reason: "C-5 - Responsible sub-ICB Location",
			ServiceCategory: "12", ReferenceVintages: []string{"epraccur.csv=2025-06", "onspd.csv=2025-05"}, CamDate: camDate},
	}
}

// The activity table keeps every CAM input: a record written by load and
// read back (ReadActivity, ScanActivity) is the record CAM was given, and
// the decision stored with it, for every data set; the latest version
// wins, a delete says so, and a scan takes the period by CAM date.
func TestCAMInputsRoundTrip(t *testing.T) {
	srv := chservertest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := Open(ctx, testConfig(t, srv, chaccess.Migrator, DefaultDatabase))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	db := fmt.Sprintf("dmic_caminputs_%d", time.Now().UnixNano()%1e6)
	if err := ApplySchema(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	w := NewWriter(conn, db)

	datasets := []dmicv1.Dataset{dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_OUTPATIENT,
		dmicv1.Dataset_DATASET_EMERGENCY_CARE, dmicv1.Dataset_DATASET_LOCAL_FLOW}
	var recs []*dmicv1.DeidentifiedRecord
	for i, ds := range datasets {
		recs = append(recs, camRecord(ds, fmt.Sprintf("U%d", i), 1, "2025-06-1"+fmt.Sprint(i)))
	}
	// A revision of U0 (later version, another CAM date still in the
	// period), a delete of U1, and one outside the period.
	rev := camRecord(dmicv1.Dataset_DATASET_APC, "U0", 2, "2025-07-01")
	rev.Assignment.CommissionerCode = "36L"
	del := camRecord(dmicv1.Dataset_DATASET_OUTPATIENT, "U1", 2, "2025-06-11")
	del.Activity.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	late := camRecord(dmicv1.Dataset_DATASET_APC, "U9", 1, "2026-01-05")
	if err := w.WriteActivity(ctx, append(recs, rev, del, late)); err != nil {
		t.Fatal(err)
	}

	for _, want := range []*dmicv1.DeidentifiedRecord{rev, recs[2], recs[3]} {
		got, err := ReadActivity(ctx, conn, db, want.Header.RecordKey)
		if err != nil {
			t.Fatal(err)
		}
		if got.Deleted || !proto.Equal(got.Record, want) {
			t.Errorf("%s read back (deleted %v):\n%s\nwant:\n%s", want.Header.RecordKey, got.Deleted,
				prototext.Format(got.Record), prototext.Format(want))
		}
	}
	if got, err := ReadActivity(ctx, conn, db, "RCD|U1"); err != nil || !got.Deleted || got.Record.Header.Version != 2 {
		t.Errorf("deleted record: %+v, %v; want its delete, version 2", got, err)
	}
	if _, err := ReadActivity(ctx, conn, db, "RCD|nope"); !errors.Is(err, ErrRecordNotFound) {
		t.Errorf("unknown key: %v, want ErrRecordNotFound", err)
	}

	var keys []string
	batches := 0
	err = ScanActivity(ctx, conn, db, "2025-06-01", "2025-12-31", 2, func(b []StoredActivity) error {
		batches++
		if len(b) > 2 {
			t.Errorf("batch of %d, want at most 2", len(b))
		}
		for _, s := range b {
			keys = append(keys, s.Record.Header.RecordKey+"@"+s.Record.Assignment.CommissionerCode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{"RCD|U0@36L", "RCD|U2@15F", "RCD|U3@15F"}; !slices.Equal(keys, want) || batches != 2 {
		t.Errorf("scan: %v in %d batches, want %v in 2", keys, batches, want)
	}
}
