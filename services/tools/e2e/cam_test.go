package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
	"github.com/dmic-nhs/dmic/services/tools/leakguard"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

// flowChartSteps are the questions of the CAM flow chart (2025/26, with
// 2024/25's C-0b) and dmic's drug and device exclusion: every one is asked
// of some record of a normal run.
var flowChartSteps = []string{"EXCL", "A&E-1", "A", "B", "B-1", "B-2", "B-3", "B-4", "WB-1", "WB-2", "WB-3",
	"C", "C-1", "WB-10", "C-3", "C-0", "C-0a", "C-0b", "C-2", "D", "E", "F", "H", "I", "I-1", "J", "C-5", "C-6"}

// assignedSteps are the steps that decide a commissioner (or decide there is
// none): each decides some record of a normal run of the default data sets.
var assignedSteps = []string{"EXCL", "A&E-1", "A", "B-2", "B-3", "B-4", "C", "C-1", "WB-10", "C-3", "C-0b", "C-2",
	"D", "E", "F", "H", "I-1", "J", "C-5", "C-6"}

type recordID struct {
	source        dmicv1.Source
	provider, uid string
}

// checkCAM checks commissioner assignment end to end: every CAM scenario the
// generator made is assigned in ClickHouse as the generator expects (step,
// reason code, commissioner, CAM version), every deciding step is stored on
// some activity row, and every record explained (assign's
// ExplainAssignment, as an analyst calls it) agrees with its stored
// decision by a trail that ends in its step, each scenario's in the order
// expected, every question of the flow chart asked on the way. The trail
// itself is not on dmic.assigned: explain derives it again.
func checkCAM(t *testing.T, s *stackUnderTest, st *devstack.Stack, items []synth.Item, want synth.Expectation) {
	t.Helper()
	scenarios := map[recordID]*synth.CAMExpectation{}
	for _, it := range items {
		if it.CAM != nil {
			scenarios[recordID{it.Source, it.Provider, it.RecordID}] = it.CAM
		}
	}
	if len(scenarios) == 0 {
		t.Fatal("the generator made no CAM scenario")
	}

	// 1. ClickHouse: each scenario's row (a provider's record; the
	// independent provider's comes from the national exchange).
	rows, err := s.conn.Query(context.Background(), "SELECT record_key, source, provider_code, cds_unique_identifier, cam_step, cam_reason_code, commissioner_code, cam_version FROM "+
		database+".activity_current")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	steps := map[string]int{}
	stored := map[string]string{} // record key -> step
	keyOf := map[recordID]string{}
	for rows.Next() {
		var key, source, provider, uid, step, reason, comm, version string
		if err := rows.Scan(&key, &source, &provider, &uid, &step, &reason, &comm, &version); err != nil {
			t.Fatal(err)
		}
		steps[step]++
		stored[key] = step
		src, err := record.ParseSource(source)
		if err != nil {
			t.Fatal(err)
		}
		id := recordID{src, provider, uid}
		e, ok := scenarios[id]
		if !ok {
			continue
		}
		found++
		keyOf[id] = key
		if step != e.Step || reason != e.ReasonCode || comm != e.Commissioner || version != e.Version {
			t.Errorf("CAM scenario %q (%s): ClickHouse has step %s, reason %s, commissioner %q, CAM %s; want step %s, %s, %q, CAM %s",
				e.Scenario, e.Section, step, reason, comm, version, e.Step, e.ReasonCode, e.Commissioner, e.Version)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if found != len(scenarios) {
		t.Errorf("%d of %d CAM scenario records are in activity_current", found, len(scenarios))
	}
	for step := range want.CAMSteps {
		if steps[step] == 0 {
			t.Errorf("no activity row in ClickHouse was assigned by step %s", step)
		}
	}
	for _, step := range assignedSteps {
		if steps[step] == 0 {
			t.Errorf("step %s decided no activity in ClickHouse (steps stored: %v)", step, keys(steps))
		}
	}

	// 2. Explain every record, as an analyst: the derived decision agrees
	// with the stored one by a trail ending in its step; every question
	// is asked of some record, and each scenario's path is the expected.
	client := s.assignment(devpki.AnalystFile)
	asked := map[string]bool{}
	paths := map[string]string{}
	disagreeing := 0
	for key, step := range stored {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := client.ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: key})
		cancel()
		if err != nil {
			t.Fatalf("explain %s: %v", key, err)
		}
		trail := got.GetDerived().GetTrail()
		if !got.GetAgrees() || decidingStep(trail) != step {
			if disagreeing++; disagreeing <= 5 {
				t.Errorf("explain %s (stored step %s): agrees %v, differences %v\n%s", key, step, got.GetAgrees(), got.GetDifferences(), cam.ExplainRecord(got))
			}
		}
		for _, d := range trail {
			asked[d.GetStep()] = true
		}
		paths[key] = trailPath(trail)
	}
	if disagreeing > 0 {
		t.Errorf("%d of %d records explained do not agree with their stored decision", disagreeing, len(stored))
	}
	for _, q := range flowChartSteps {
		if !asked[q] {
			t.Errorf("no explained record asks %s", q)
		}
	}
	for id, e := range scenarios {
		got, ok := paths[keyOf[id]]
		if !ok {
			t.Errorf("CAM scenario %q: no explanation for %s", e.Scenario, id.uid)
			continue
		}
		if got != e.Path {
			t.Errorf("CAM scenario %q (%s): path\n got %s\nwant %s", e.Scenario, e.Section, got, e.Path)
		}
	}

	// 3. The trail is not on the wire: dmic.assigned carries the decision
	// (version, step, reason, service category, vintages, CAM date) only.
	n := 0
	_, err = leakguard.ReadTopic(context.Background(), operator(t, st), topics.Assigned, func(m kafka.Message) {
		var rec dmicv1.DeidentifiedRecord
		if err := proto.Unmarshal(m.Value, &rec); err != nil {
			t.Errorf("assigned message at offset %d: %v", m.Offset, err)
			return
		}
		a := rec.GetAssignment()
		if len(a.GetTrail()) != 0 || a.GetCamVersion() == "" || a.GetStep() == "" || a.GetReasonCode() == "" || a.GetCamDate() == "" || len(a.GetReferenceVintages()) == 0 {
			if n++; n <= 3 {
				t.Errorf("assigned record %s: %v; want the decision without a trail", rec.GetHeader().GetRecordKey(), a)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// decidingStep is the step a trail ends in: the last question, before the
// note "X: no commissioner" that follows a step which found none.
func decidingStep(trail []*dmicv1.CamDecision) string {
	n := len(trail)
	switch {
	case n == 0:
		return ""
	case n > 1 && trail[n-1].GetStep() == "X":
		return trail[n-2].GetStep()
	}
	return trail[n-1].GetStep()
}

// assignment is assign's AssignmentService, called with the certificate in
// file of the stack's PKI.
func (s *stackUnderTest) assignment(file string) assignmentv1.AssignmentServiceClient {
	creds, err := s.PKI.DialOption(file)
	if err != nil {
		s.t.Fatal(err)
	}
	conn, err := grpc.NewClient("localhost:"+strconv.Itoa(s.Ports.GRPC["assign"]), creds)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	return assignmentv1.NewAssignmentServiceClient(conn)
}

// trailPath writes a trail as synth.CAMExpectation.Path does: each question
// with + or -, a question asked twice running once, notes left out.
func trailPath(trail []*dmicv1.CamDecision) string {
	var out []string
	last := ""
	for _, d := range trail {
		sign := ""
		switch d.GetAnswer() {
		case "Yes":
			sign = "+"
		case "No":
			sign = "-"
		default:
			continue
		}
		if d.GetStep() == last {
			continue
		}
		last = d.GetStep()
		out = append(out, d.GetStep()+sign)
	}
	return strings.Join(out, " ")
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unassignedExpected counts the live activity rows (provider and national
// copies) of the CAM scenarios that must end without a commissioner: the
// national copy of a record carries the same CAM inputs.
func unassignedExpected(items []synth.Item) int64 {
	type key struct{ provider, uid string }
	none := map[key]bool{}
	for _, it := range items {
		if it.CAM != nil && it.CAM.Commissioner == "" {
			none[key{it.Provider, it.RecordID}] = true
		}
	}
	var n int64
	for _, it := range items {
		if len(it.Bad) == 0 && !it.Delete && !it.Revision && none[key{it.Provider, it.RecordID}] {
			n++
		}
	}
	return n
}

// rerunRow is a row of cam_rerun with the record's service code.
type rerunRow struct {
	key, fromComm, toComm, fromStep, toStep, fromReason, service string
	moved                                                        uint8
}

// rerun re-runs the CAM dates from..to under version as the operator, and
// returns the summary and the run's rows once load has written them all.
func (s *stackUnderTest) rerun(ctx context.Context, from, to, version string) (*assignmentv1.RerunAssignmentsResponse, []rerunRow) {
	s.t.Helper()
	resp, err := s.assignment(devpki.OperatorFile).RerunAssignments(ctx, &assignmentv1.RerunAssignmentsRequest{From: from, To: to, CamVersion: version, Label: "e2e"})
	if err != nil {
		s.t.Fatalf("re-run %s to %s under %s: %v", from, to, version, err)
	}
	if want := s.count(fmt.Sprintf("SELECT count() FROM %s.activity_current WHERE cam_date >= '%s' AND cam_date <= '%s'", database, from, to)); resp.GetRecords() != want || want == 0 {
		s.t.Errorf("re-run %s read %d records, want the %d current records of the period", resp.GetRunId(), resp.GetRecords(), want)
	}
	q := fmt.Sprintf("SELECT count() FROM %s.cam_rerun FINAL WHERE run_id = '%s'", database, resp.GetRunId())
	s.waitFor("the re-run's rows in cam_rerun", time.Minute, func() bool { return s.count(q) == resp.GetRecords() })
	if moved := s.count(q + " AND moved = 1"); moved != resp.GetMoved() {
		s.t.Errorf("re-run %s: %d rows moved in cam_rerun, the summary says %d", resp.GetRunId(), moved, resp.GetMoved())
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(`SELECT record_key, from_commissioner, to_commissioner, from_step, to_step, from_reason_code, moved, service_code
FROM (SELECT * FROM %[1]s.cam_rerun FINAL WHERE run_id = '%[2]s') AS r
ANY LEFT JOIN (SELECT record_key, service_code FROM %[1]s.activity_current) AS a USING (record_key)`, database, resp.GetRunId()))
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var out []rerunRow
	for rows.Next() {
		var r rerunRow
		if err := rows.Scan(&r.key, &r.fromComm, &r.toComm, &r.fromStep, &r.toStep, &r.fromReason, &r.moved, &r.service); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, r)
	}
	return resp, out
}

// checkRerun re-runs each year's activity under the other year's CAM
// version and checks the diff table against what the reference tables and
// the guidance say differs between 2024/25 and 2025/26 (the 2025/26
// guidance's "changes from 24/25": no amber services; every ICB delegated
// from April 2025, where 46 sub-ICBs had no agreement in 2024/25), not
// against the engine's own answers:
//   - activity with no service code keeps its commissioner and step;
//   - 2025/26 activity under 2024/25: a service AMBER in 24/25 assigned by
//     C-6 goes to C-0b; a green one of a sub-ICB not delegated on
//     2025-03-31 goes to that sub-ICB's specialised hub (C-6 No);
//   - 2024/25 activity under 2025/26: what was C-0b (amber) becomes C-6,
//     and what went to a hub for want of an agreement (C_6_4) goes to a
//     delegated sub-ICB.
func checkRerun(ctx context.Context, t *testing.T, s *stackUnderTest, ref *refdata.Reference) {
	t.Helper()
	status := func(year, code string) string {
		sc, _ := ref.ServiceCode(year, code)
		return sc.Status
	}
	unchanged := func(r rerunRow) {
		if r.service == "" && (r.moved != 0 || r.fromStep != r.toStep || r.fromComm != r.toComm) {
			t.Errorf("%s has no service code but moves %s by %s -> %s by %s", r.key, r.fromComm, r.fromStep, r.toComm, r.toStep)
		}
	}
	seen := map[string]int{}

	resp, rows := s.rerun(ctx, "2025-04-01", "2026-09-30", "2024/25")
	if resp.GetMoved() == 0 {
		t.Errorf("nothing of 2025/26 moves under 2024/25: %v", resp)
	}
	for _, r := range rows {
		unchanged(r)
		if r.fromStep != "C-6" {
			continue
		}
		switch status("24/25", r.service) {
		case refdata.StatusAmber:
			seen["amber"]++
			if r.toStep != "C-0b" {
				t.Errorf("%s: %s is AMBER in 24/25, so C-0b, not %s by %s", r.key, r.service, r.toComm, r.toStep)
			}
		case refdata.StatusGreen:
			if d, ok := ref.DirectCommissioner(r.fromComm, "2025-03-31"); ok && !d.Delegated {
				seen["not delegated in 2024/25"]++
				if r.toStep != "C-6" || r.toComm != d.Hub {
					t.Errorf("%s: %s had no delegation on 2025-03-31, so its hub %s by C-6, not %s by %s", r.key, r.fromComm, d.Hub, r.toComm, r.toStep)
				}
			}
		}
	}
	t.Logf("re-run of 2025/26 under 2024/25: %d records, %d move, %d change step only; moves %v", resp.GetRecords(), resp.GetMoved(), resp.GetStepChanged(), resp.GetMoves())

	resp, rows = s.rerun(ctx, "2024-04-01", "2025-03-31", "2025/26")
	if resp.GetMoved() == 0 {
		t.Errorf("nothing of 2024/25 moves under 2025/26: %v", resp)
	}
	for _, r := range rows {
		unchanged(r)
		switch {
		case r.fromStep == "C-0b":
			seen["amber became green"]++
			if status("25/26", r.service) != refdata.StatusGreen || r.toStep != "C-6" || r.moved != 1 {
				t.Errorf("%s: C-0b (amber %s) in 2024/25; under 2025/26 (%s) %s by %s, want C-6 to the delegated sub-ICB",
					r.key, r.service, status("25/26", r.service), r.toComm, r.toStep)
			}
		case r.fromStep == "C-6" && strings.HasSuffix(r.fromReason, "_C_6_4"):
			seen["hub became delegated"]++
			if d, ok := ref.DirectCommissioner(r.toComm, "2025-04-01"); r.toStep != "C-6" || !ok || !d.Delegated {
				t.Errorf("%s: went to the hub %s in 2024/25; under 2025/26 %s by %s, want a delegated sub-ICB by C-6", r.key, r.fromComm, r.toComm, r.toStep)
			}
		}
	}
	t.Logf("re-run of 2024/25 under 2025/26: %d records, %d move, %d change step only; moves %v", resp.GetRecords(), resp.GetMoved(), resp.GetStepChanged(), resp.GetMoves())
	for _, c := range []string{"not delegated in 2024/25", "amber became green", "hub became delegated"} {
		if seen[c] == 0 {
			t.Errorf("no re-run row of the kind %q: the data does not test it", c)
		}
	}
}
