package assign_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/assign"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/audit/audittest"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// assignmentServer is the assign service's AssignmentService as its main
// wires it: over a real ClickHouse read as dmic_reader, a re-run's rows to
// the broker as assign's principal, behind the access guard (TLS, the
// authorisation table, the audit trail on dmic.audit).
type assignmentServer struct {
	db       string
	writer   *chstore.Writer
	migrator chstore.Config
	pki      *devpkitest.PKI
	addr     string
	operator kafkaconn.Cluster // the operators' principal, to read topics
	stage    *assign.Stage
}

func startAssignmentServer(t *testing.T) *assignmentServer {
	t.Helper()
	conn, cfg := chstoretest.Database(t, "dmic_assign")
	b := topicstest.Broker(t, 1)
	kc := brokertest.As(t, b, assign.Access().Principal)
	ref, err := refdata.LoadDir("../../reference/sample")
	if err != nil {
		t.Fatal(err)
	}
	a := cam.NewAssigner(ref)
	store := chstore.NewActivityReader(chstoretest.As(t, cfg, chaccess.Reader))
	t.Cleanup(func() { store.Close() })
	w := kafkapipe.NewWriter(kc)
	t.Cleanup(func() { w.Close() })
	clk := clock.Fixed(time.Date(2026, 2, 10, 9, 0, 0, 0, time.UTC))
	svc := assign.NewService(a, store, kafkapipe.Sink{W: w}, clk, slog.New(slog.DiscardHandler))
	p := devpkitest.New(t, time.Now())
	g, _ := p.Guard(kc, clock.System())
	addr := p.ServeGRPC(g, func(s *grpc.Server) { assignmentv1.RegisterAssignmentServiceServer(s, svc) })
	return &assignmentServer{db: cfg.Database, writer: chstore.NewWriter(conn, cfg.Database), migrator: cfg, pki: p, addr: addr,
		operator: brokertest.As(t, b, topics.Operator), stage: assign.New(a)}
}

// as is the service's client presenting a certificate of role.
func (s *assignmentServer) as(t *testing.T, role identity.Role) assignmentv1.AssignmentServiceClient {
	t.Helper()
	c, err := grpc.NewClient(s.addr, s.pki.DialOption(s.pki.Client(role, "0DC", "test "+string(role))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return assignmentv1.NewAssignmentServiceClient(c)
}

// load assigns recs through the assign stage, as dmic.assigned carries
// them, and writes them to the activity table, as load does.
func (s *assignmentServer) load(t *testing.T, recs ...*dmicv1.DeidentifiedRecord) []*dmicv1.DeidentifiedRecord {
	t.Helper()
	var out []*dmicv1.DeidentifiedRecord
	for _, in := range recs {
		v, err := proto.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		outs, err := s.stage.Process(context.Background(), pipeline.Message{Topic: topics.Deidentified, Key: []byte(in.Header.RecordKey), Value: v})
		if err != nil {
			t.Fatal(err)
		}
		var rec dmicv1.DeidentifiedRecord
		if err := proto.Unmarshal(outs[0].Value, &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, &rec)
	}
	if err := s.writer.WriteActivity(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The sample's residences, as deidentify derives them.
var (
	sutton  = &dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "36L", Icb: "QWE", LocalAuthority: "E09000029", HealthArea: "E38000245", Region: "E40000003"}
	borders = &dmicv1.Residence{Country: refdata.CountryScotland, LocalAuthority: "S12000026", HealthArea: "S03000004"}
)

// activity is a de-identified record of ds at date for a patient of
// practice gp living at res, with the pseudonym a real one would have.
func activity(uid string, ds dmicv1.Dataset, date, gp string, res *dmicv1.Residence, o ...func(*dmicv1.DeidentifiedActivity)) *dmicv1.DeidentifiedRecord {
	a := &dmicv1.DeidentifiedActivity{CdsUniqueIdentifier: uid, ProviderCode: "RVR", AdministrativeCategoryCode: "01",
		OverseasVisitorChargingCategory: "A", ActivityDate: date, PseudoNhsNumber: strings.Repeat("ab", 32),
		Demographics: &dmicv1.Demographics{GeneralMedicalPracticeCode: gp}, Residence: res}
	switch ds {
	case dmicv1.Dataset_DATASET_APC:
		a.Activity = &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{CdsType: "130", StartDateHospitalProviderSpell: date,
			DischargeDateHospitalProviderSpell: date, StartDateEpisode: date, EndDateEpisode: date, TreatmentFunctionCode: "300", SourceOfAdmissionCode: "19"}}
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		a.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AppointmentDate: date, TreatmentFunctionCode: "300"}}
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		a.OverseasVisitorChargingCategory = ""
		a.Activity = &dmicv1.DeidentifiedActivity_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{EcArrivalDate: date}}
	}
	for _, f := range o {
		f(a)
	}
	name := map[dmicv1.Dataset]string{dmicv1.Dataset_DATASET_APC: "apc", dmicv1.Dataset_DATASET_OUTPATIENT: "outpatient",
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: "emergency_care"}[ds]
	return &dmicv1.DeidentifiedRecord{
		Header:   &dmicv1.EnvelopeHeader{RecordKey: "RVR|" + name + "|" + uid, Dataset: ds, Source: dmicv1.Source_SOURCE_PROVIDER, SubmitterOrgCode: "RVR", Version: 10},
		Activity: a, MatchKey: name + "|RVR|" + uid,
	}
}

// Explain through the public gRPC API, on records assigned by several
// steps and stored as load stores them: the trail derived again ends in
// the stored step and agrees with the stored decision; a decision the
// reference data no longer gives is shown as differing, field by field; an
// unknown or deleted record is NotFound, saying which. No identifier is in
// an answer.
func TestExplainAssignment(t *testing.T) {
	s := startAssignmentServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	apc, op, ec := dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_OUTPATIENT, dmicv1.Dataset_DATASET_EMERGENCY_CARE
	recs := s.load(t,
		// A (p.27): a private patient.
		activity("P1", apc, "2025-06-01", "H85030", sutton, func(a *dmicv1.DeidentifiedActivity) { a.AdministrativeCategoryCode = "02" }),
		// C-6 (p.45): a green specialised service, delegated in 2025/26.
		activity("S1", apc, "2025-06-01", "H85030", sutton, func(a *dmicv1.DeidentifiedActivity) { a.ServiceCode = "NCBPS01C" }),
		// C-0b (2024/25, amber): the same service a year before.
		activity("S0", apc, "2024-06-01", "B84019", sutton, func(a *dmicv1.DeidentifiedActivity) { a.ServiceCode = "NCBPS01S" }),
		// D (p.48): secondary dental.
		activity("D1", op, "2025-06-01", "H85030", sutton, func(a *dmicv1.DeidentifiedActivity) { a.GetOutpatient().TreatmentFunctionCode = "144" }),
		// A&E-1 (p.27): a Scottish resident at A&E.
		activity("E1", ec, "2025-06-01", "", borders),
		// C-5 (p.43): the responsible sub-ICB.
		activity("G1", apc, "2025-06-01", "H85030", sutton),
		// C-5 again, in 2026/27, which no version covers: the nearest
		// (2025/26) is applied and the trail says so.
		activity("G2", apc, "2026-09-09", "H85030", sutton),
	)
	steps := map[string]bool{}
	for _, operator := range []bool{true, false} {
		client := s.as(t, identity.Analyst)
		if operator {
			client = s.as(t, identity.Operator)
		}
		for _, rec := range recs {
			key := rec.GetHeader().GetRecordKey()
			got, err := client.ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: key})
			if err != nil {
				t.Fatalf("explain %s: %v", key, err)
			}
			stored := rec.GetAssignment()
			steps[stored.GetStep()] = true
			trail := got.GetDerived().GetTrail()
			if !got.GetAgrees() || len(got.GetDifferences()) != 0 || len(trail) == 0 || trail[len(trail)-1].GetStep() != stored.GetStep() {
				t.Errorf("%s: agrees %v, differences %v, trail ending %v; want agreement and a trail ending in step %s\n%s",
					key, got.GetAgrees(), got.GetDifferences(), trail[len(trail)-1], stored.GetStep(), cam.ExplainRecord(got))
			}
			if !proto.Equal(got.GetStored(), stored) || got.GetVersion() != 10 || got.GetDataset() == "" || got.GetProviderCode() != "RVR" {
				t.Errorf("%s: stored %v (version %d), want %v", key, got.GetStored(), got.GetVersion(), stored)
			}
			for _, d := range trail {
				if d.GetAnswer() == "" {
					t.Errorf("%s: a decision without an answer: %v", key, d)
				}
			}
			js, _ := protojson.Marshal(got)
			if strings.Contains(string(js), rec.GetActivity().GetPseudoNhsNumber()) {
				t.Errorf("%s: the answer holds the pseudonym: %s", key, js)
			}
		}
	}
	for _, step := range []string{"A", "C-6", "C-0b", "D", "A&E-1", "C-5"} {
		if !steps[step] {
			t.Errorf("no record was assigned by step %s (steps: %v)", step, steps)
		}
	}
	text := func(key string) string {
		got, err := s.as(t, identity.Operator).ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return cam.ExplainRecord(got)
	}
	if out := text("RVR|apc|G2"); !strings.Contains(out, "No CAM version covers the CAM date") || !strings.Contains(out, "CAM 2025/26 at 2026-09-09") {
		t.Errorf("explanation of a record no version covers does not say the nearest was applied:\n%s", out)
	}
	out := text("RVR|apc|S1")
	t.Logf("dmicctl explain RVR|apc|S1:\n%s", out)
	if !strings.Contains(out, "C-6") || !strings.Contains(out, "NCBPS01C GREEN in 25/26") || !strings.Contains(out, "agrees") {
		t.Errorf("explanation of a C-6 record:\n%s", out)
	}

	// Stored under reference data since changed: a later version of G1
	// stored as 00X with other vintages.
	stale := proto.Clone(recs[5]).(*dmicv1.DeidentifiedRecord)
	stale.Header.Version = 11
	stale.Assignment.CommissionerCode, stale.Assignment.ReasonCode = "00X", "00X_C_5_1"
	stale.Assignment.ReferenceVintages = []string{"epraccur.csv=2025-01"}
	if err := s.writer.WriteActivity(ctx, []*dmicv1.DeidentifiedRecord{stale}); err != nil {
		t.Fatal(err)
	}
	got, err := s.as(t, identity.Analyst).ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: "RVR|apc|G1"})
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, d := range got.GetDifferences() {
		fields = append(fields, d.GetField()+":"+d.GetStored()+">"+d.GetDerived())
	}
	if got.GetAgrees() || got.GetVersion() != 11 || !slices.Contains(fields, "commissioner_code:00X>36L") || !slices.Contains(fields, "reason_code:00X_C_5_1>36L_C_5_1") ||
		!slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, "reference_vintages:epraccur.csv=2025-01>") }) {
		t.Errorf("a stale decision: agrees %v, version %d, differences %v", got.GetAgrees(), got.GetVersion(), fields)
	}
	if out := cam.ExplainRecord(got); !strings.Contains(out, "DIFFERS") || !strings.Contains(out, "commissioner_code: stored 00X, derived 36L") {
		t.Errorf("the explanation does not say what differs:\n%s", out)
	}

	// A deleted record, an unknown one, none.
	del := proto.Clone(recs[4]).(*dmicv1.DeidentifiedRecord)
	del.Header.Version = 12
	del.Activity.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	if err := s.writer.WriteActivity(ctx, []*dmicv1.DeidentifiedRecord{del}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]struct {
		code codes.Code
		text string
	}{
		"RVR|emergency_care|E1": {codes.NotFound, "was deleted"},
		"RVR|apc|nope":          {codes.NotFound, `no record with key "RVR|apc|nope"`},
		"":                      {codes.InvalidArgument, "record_key: required"},
	} {
		_, err := s.as(t, identity.Analyst).ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: key})
		if status.Code(err) != want.code || !strings.Contains(status.Convert(err).Message(), want.text) {
			t.Errorf("explain %q: %v, want %v saying %q", key, err, want.code, want.text)
		}
	}
}

// Who may explain and re-run: operators and analysts explain; only
// operators re-run; a provider may do neither, and each refusal is on the
// audit trail with the caller and the reason.
func TestAssignmentServiceAccess(t *testing.T) {
	s := startAssignmentServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.load(t, activity("G1", dmicv1.Dataset_DATASET_APC, "2025-06-01", "H85030", sutton))
	explain := func(role identity.Role) error {
		_, err := s.as(t, role).ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: "RVR|apc|G1"})
		return err
	}
	rerun := func(role identity.Role) error {
		_, err := s.as(t, role).RerunAssignments(ctx, &assignmentv1.RerunAssignmentsRequest{From: "2025-04-01", To: "2025-04-30", CamVersion: "2024/25"})
		return err
	}
	for _, c := range []struct {
		name string
		call func(identity.Role) error
		role identity.Role
		want codes.Code
	}{
		{"operator explains", explain, identity.Operator, codes.OK},
		{"analyst explains", explain, identity.Analyst, codes.OK},
		{"provider explains", explain, identity.Provider, codes.PermissionDenied},
		{"operator re-runs", rerun, identity.Operator, codes.OK},
		{"analyst re-runs", rerun, identity.Analyst, codes.PermissionDenied},
		{"provider re-runs", rerun, identity.Provider, codes.PermissionDenied},
	} {
		if err := c.call(c.role); status.Code(err) != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Audited: the three refusals, and the operator's re-run (allowed,
	// then done); an explanation changes nothing and is not.
	entries := audittest.Trail(t, s.operator, 5)
	var got []string
	for _, e := range entries {
		role := ""
		if e.Caller != nil {
			role = string(e.Caller.Role)
		}
		got = append(got, e.Outcome+" "+role+" "+e.Action[strings.LastIndex(e.Action, "/")+1:]+" "+e.Reason)
	}
	slices.Sort(got)
	want := []string{
		"allowed operator RerunAssignments ",
		"done operator RerunAssignments ",
		"refused analyst RerunAssignments " + access.ReasonRole,
		"refused provider ExplainAssignment " + access.ReasonRole,
		"refused provider RerunAssignments " + access.ReasonRole,
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail:\n%q\nwant\n%q", got, want)
	}
}

// A re-run applies the chosen version to the current records of the
// period, through the public API, and writes one row per record to
// dmic.cam-reruns, moved or not. The expectations come from the reference
// tables, not the engine: a green service (NCBPS01C) of a sub-ICB whose
// delegation began on 2025-04-01 goes, under 2024/25, to the specialised
// hub of that sub-ICB (C-6 No, guidance p.45); a service AMBER in the
// 2024/25 service list (NCBPS01S) goes to the hub of the GP practice's
// sub-ICB (C-0b, the 2025/26 guidance's "changes from 24/25", item 5); a
// record with no service code keeps its commissioner and step. A record
// outside the period, and a deleted one, are not read.
func TestRerunAssignments(t *testing.T) {
	s := startAssignmentServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref, err := refdata.LoadDir("../../reference/sample")
	if err != nil {
		t.Fatal(err)
	}
	apc := dmicv1.Dataset_DATASET_APC
	recs := s.load(t,
		activity("S1", apc, "2025-06-01", "H85030", sutton, func(a *dmicv1.DeidentifiedActivity) { a.ServiceCode = "NCBPS01C" }),
		activity("S2", apc, "2025-06-02", "B84019", sutton, func(a *dmicv1.DeidentifiedActivity) { a.ServiceCode = "NCBPS01S" }),
		activity("G1", apc, "2025-06-03", "H85030", sutton),
		activity("G2", apc, "2025-09-01", "H85030", sutton), // after the period
		activity("G3", apc, "2025-06-04", "H85030", sutton),
	)
	del := proto.Clone(recs[4]).(*dmicv1.DeidentifiedRecord)
	del.Header.Version = 11
	del.Activity.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	if err := s.writer.WriteActivity(ctx, []*dmicv1.DeidentifiedRecord{del}); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[:2] {
		if r.GetAssignment().GetStep() != "C-6" || r.GetAssignment().GetCamVersion() != "2025/26" {
			t.Fatalf("%s is assigned %v, want C-6 under 2025/26 (the premise of this test)", r.Header.RecordKey, r.GetAssignment())
		}
	}
	// What the reference tables say of 2024/25.
	if sc, ok := ref.ServiceCode("24/25", "NCBPS01S"); !ok || sc.Status != refdata.StatusAmber {
		t.Fatalf("NCBPS01S in 24/25: %+v, want AMBER", sc)
	}
	lastDay := "2025-03-31"
	d36L, _ := ref.DirectCommissioner(recs[0].GetAssignment().GetCommissionerCode(), lastDay)
	if d36L.Delegated || d36L.Hub == "" {
		t.Fatalf("%s on %s: %+v, want not yet delegated, with a hub", recs[0].GetAssignment().GetCommissionerCode(), lastDay, d36L)
	}
	p, _ := ref.Practice("B84019")
	d02T, _ := ref.DirectCommissioner(p.Commissioner, lastDay)
	want := map[string][2]string{ // record key -> to step, to commissioner
		"RVR|apc|S1": {"C-6", d36L.Hub},
		"RVR|apc|S2": {"C-0b", d02T.Hub},
		"RVR|apc|G1": {recs[2].GetAssignment().GetStep(), recs[2].GetAssignment().GetCommissionerCode()},
	}

	resp, err := s.as(t, identity.Operator).RerunAssignments(ctx, &assignmentv1.RerunAssignmentsRequest{
		From: "2025-04-01", To: "2025-08-31", CamVersion: "2024/25", Label: "what 2024/25 would do"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRecords() != 3 || resp.GetMoved() != 2 || resp.GetMovedActivity() != 2 || resp.GetStepChanged() != 0 || resp.GetCamVersion() != "2024/25" || len(resp.GetRunId()) != 16 {
		t.Errorf("summary: %v; want 3 records read, 2 moved (2 activities), under 2024/25", resp)
	}
	var movedRecords int64
	for _, m := range resp.GetMoves() {
		movedRecords += m.GetRecords()
		if m.GetFromStep() != "C-6" || (m.GetToCommissioner() != d36L.Hub && m.GetToCommissioner() != d02T.Hub) {
			t.Errorf("move %v: want C-6 to a hub", m)
		}
	}
	if movedRecords != 2 {
		t.Errorf("moves %v: want 2 records in all", resp.GetMoves())
	}

	rows := rerunRows(t, s.operator, resp.GetRunId(), 3)
	for key, w := range want {
		r, ok := rows[key]
		if !ok {
			t.Errorf("no re-run row for %s", key)
			continue
		}
		if r.GetToStep() != w[0] || r.GetToCommissioner() != w[1] {
			t.Errorf("%s under 2024/25: %s by %s; want %s by %s", key, r.GetToCommissioner(), r.GetToStep(), w[1], w[0])
		}
		stored := map[string]*dmicv1.DeidentifiedRecord{"RVR|apc|S1": recs[0], "RVR|apc|S2": recs[1], "RVR|apc|G1": recs[2]}[key].GetAssignment()
		if r.GetFromCommissioner() != stored.GetCommissionerCode() || r.GetFromStep() != stored.GetStep() || r.GetFromCamVersion() != "2025/26" ||
			r.GetCamVersion() != "2024/25" || r.GetLabel() != "what 2024/25 would do" || r.GetPeriodFrom() != "2025-04-01" || r.GetActivityCount() != 1 {
			t.Errorf("%s: row %v; want its stored decision, the run's version, label and period", key, r)
		}
	}
	for key := range rows {
		if _, ok := want[key]; !ok {
			t.Errorf("a re-run row for %s, which is outside the period or deleted", key)
		}
	}

	for _, bad := range []*assignmentv1.RerunAssignmentsRequest{
		{From: "2025-04-01", To: "2025-03-01", CamVersion: "2024/25"},
		{From: "April", To: "2025-03-01", CamVersion: "2024/25"},
		{From: "2025-04-01", To: "2025-05-01", CamVersion: "2019/20"},
	} {
		if _, err := s.as(t, identity.Operator).RerunAssignments(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("re-run %v: %v, want InvalidArgument", bad, err)
		}
	}
}

// rerunRows reads dmic.cam-reruns until the run's want rows are there, by
// record key.
func rerunRows(t *testing.T, c kafkaconn.Cluster, runID string, want int) map[string]*assignmentv1.CamRerunRow {
	t.Helper()
	out := map[string]*assignmentv1.CamRerunRow{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for p := range topics.DefaultPartitions {
		if len(out) == want {
			break
		}
		r := c.NewReader(kafka.ReaderConfig{Topic: topics.CamReruns, Partition: p, MaxWait: 100 * time.Millisecond})
		end, err := r.ReadLag(ctx)
		for i := int64(0); err == nil && i < end; i++ {
			var m kafka.Message
			if m, err = r.ReadMessage(ctx); err == nil {
				var row assignmentv1.CamRerunRow
				if err = proto.Unmarshal(m.Value, &row); err == nil && row.GetRunId() == runID {
					if string(m.Key) != runID+"|"+row.GetRecordKey() {
						t.Errorf("row key %q, want run id|record key", m.Key)
					}
					out[row.GetRecordKey()] = &row
				}
			}
		}
		r.Close()
		if err != nil {
			t.Fatalf("reading %s/%d: %v", topics.CamReruns, p, err)
		}
	}
	if len(out) != want {
		t.Fatalf("%d rows of run %s on %s, want %d", len(out), runID, topics.CamReruns, want)
	}
	return out
}
