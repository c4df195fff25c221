package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/assign"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
)

// dmicctl explain and cam rerun against a real assign AssignmentService
// (real ClickHouse read as dmic_reader, real broker, gRPC over TCP), on a
// 2025/26 record of a green specialised service whose sub-ICB was not yet
// delegated in 2024/25.
func TestCamCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, cfg := chstoretest.Database(t, "dmic_dmicctl_cam")
	kc := brokertest.As(t, topicstest.Broker(t, 1), assign.Access().Principal)
	ref, err := refdata.LoadDir("../../../reference/sample")
	if err != nil {
		t.Fatal(err)
	}
	a := cam.NewAssigner(ref)
	act := &dmicv1.DeidentifiedActivity{CdsUniqueIdentifier: "S1", ProviderCode: "RVR", AdministrativeCategoryCode: "01",
		OverseasVisitorChargingCategory: "A", ActivityDate: "2025-06-01", ServiceCode: "NCBPS01C",
		Demographics: &dmicv1.Demographics{GeneralMedicalPracticeCode: "H85030"},
		Residence:    &dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "36L", Icb: "QWE", LocalAuthority: "E09000029"},
		Activity: &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{CdsType: "130", StartDateHospitalProviderSpell: "2025-06-01",
			DischargeDateHospitalProviderSpell: "2025-06-01", TreatmentFunctionCode: "300"}}}
	rec := &dmicv1.DeidentifiedRecord{Header: &dmicv1.EnvelopeHeader{RecordKey: "RVR|apc|S1", Version: 1, Dataset: dmicv1.Dataset_DATASET_APC},
		Activity: act, Assignment: a.Assign(act)}
	if err := chstore.NewWriter(conn, cfg.Database).WriteActivity(ctx, []*dmicv1.DeidentifiedRecord{rec}); err != nil {
		t.Fatal(err)
	}
	store := chstore.NewActivityReader(chstoretest.As(t, cfg, chaccess.Reader))
	defer store.Close()
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	svc := assign.NewService(a, store, kafkapipe.Sink{W: w}, clock.System(), slog.New(slog.DiscardHandler))
	addr, as := serveGRPC(t, kc, func(s *grpc.Server) { assignmentv1.RegisterAssignmentServiceServer(s, svc) })
	svcs := []endpoint{{"assign", addr}}

	code, out, errOut := runner(ctx, explain, svcs, as)("RVR|apc|S1")
	if code != 0 || !strings.Contains(out, "stored:  36L by step C-6, reason 36L_C_6_1") ||
		!strings.Contains(out, "C-6  Is there a signed delegation agreement") || !strings.Contains(out, "agrees with the stored one") {
		t.Errorf("explain: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runner(ctx, explain, svcs, as)("RVR|apc|nope"); code != 1 || !strings.Contains(errOut, "NotFound") {
		t.Errorf("explain of an unknown record: %d %q", code, errOut)
	}
	rerun := runner(ctx, camCommand, svcs, as)
	code, out, errOut = rerun("rerun", "-from", "2025-04-01", "-to", "2025-06-30", "-version", "2024/25")
	if code != 0 || !strings.Contains(out, "1 records read, 1 move commissioner (1 activities, £0.00), 0 change step only") ||
		!strings.Contains(out, "36L   C-6   13R  C-6   1") || !strings.Contains(out, "FROM dmic.cam_rerun FINAL WHERE run_id = '") {
		t.Errorf("cam rerun: %d %q %q", code, out, errOut)
	}
	for _, args := range [][]string{{"rerun", "-from", "2025-04-01"}, {"rerun", "-from", "x", "-to", "y", "-version", "2024/25", "extra"}, {"undo"}} {
		if code, _, errOut := rerun(args...); code != 2 || !strings.Contains(errOut, "usage: dmicctl cam rerun") {
			t.Errorf("cam %q: %d %q, want the usage", args, code, errOut)
		}
	}
	if code, _, errOut := rerun("rerun", "-from", "2025-04-01", "-to", "2025-06-30", "-version", "1999/00"); code != 1 || !strings.Contains(errOut, "not a CAM version") {
		t.Errorf("cam rerun of an unknown version: %d %q", code, errOut)
	}
}
