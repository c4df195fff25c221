package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

const (
	instancesDatabase = "dmic_e2e_instances"
	// instancesRecords is enough for each stage to be part-way through when
	// the kills land, on a loaded 2-core machine.
	instancesRecords = 4000
)

// TestTwoInstancesOfEveryStage runs two instances of every consumer stage
// (validate, deidentify, assign, reconcile, load; ingest is one door), kills
// the busier instance of each with SIGKILL mid-stream (make run's
// supervisor restarts it a second later, into the rebalances of its group),
// and checks that ClickHouse ends with exactly the expected records, each
// once, and the reconciliation the records call for: reconcile's state moved
// between instances with its partitions (issue 15).
func TestTwoInstancesOfEveryStage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the whole stack, twice over")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := startStack(ctx, t, devstack.Config{Database: instancesDatabase, Instances: 2}, 200)
	st := s.Stack

	ref, err := refdata.LoadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	const seed = 21
	cfg := synth.Config{Seed: seed, Records: instancesRecords, BadShare: 0.05,
		Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: ref.TrustCodes()}
	items, err := synth.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := synth.Expect(items)

	genDone := make(chan error, 1)
	go func() {
		genDone <- st.Run(ctx, "generate", "generate", "-records", strconv.Itoa(instancesRecords), "-seed", strconv.Itoa(seed),
			"-ingest", st.IngestURL(), "-pki", st.PKI.Path, "-reference-dir", refDir, "-submission-size", "100")
	}()

	// Mid-stream: once every stage has processed something, and before
	// validate has seen half the records, kill the busier instance of each.
	s.waitFor("every stage to be processing", 3*time.Minute, func() bool {
		for _, name := range devstack.ConsumerStages {
			if p, _ := s.instanceProcessed(name); p == 0 {
				return false
			}
		}
		return true
	})
	progress := map[string]int64{}
	var killed []*devstack.Process
	for _, name := range devstack.ConsumerStages {
		total, busiest := s.instanceProcessed(name)
		progress[name] = total
		p := st.Instance(name, busiest)
		if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %s: %v", p.Name, err)
		}
		killed = append(killed, p)
	}
	t.Logf("killed %s with SIGKILL; processed by then (both instances): %v of about %d records",
		names(killed), progress, instancesRecords)
	if progress["validate"] >= instancesRecords {
		t.Logf("warning: validate had finished before the kill; the stream was too short for this machine")
	}
	for _, p := range killed {
		deadline := time.Now().Add(30 * time.Second)
		for p.Starts() < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not restarted", p.Name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := <-genDone; err != nil {
		t.Fatalf("generator: %v", err)
	}

	// Exact counts.
	db := instancesDatabase
	activity := func() int64 { return s.count("SELECT count() FROM " + db + ".activity_current") }
	rejected := func() int64 {
		return s.count("SELECT uniqExact(source_topic, source_partition, source_offset) FROM " + db + ".rejections FINAL")
	}
	deadline := time.Now().Add(5 * time.Minute)
	for activity() != int64(want.Activities) || rejected() != int64(want.Rejected) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d activities and %d rejected records in ClickHouse; now %d and %d",
				want.Activities, want.Rejected, activity(), rejected())
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Nothing twice in what analysts query, whatever was replayed.
	for _, q := range []struct{ what, all, distinct string }{
		{"activity_current", "SELECT count() FROM " + db + ".activity_current", "SELECT uniqExact(record_key) FROM " + db + ".activity_current"},
		{"reconciliation", "SELECT count() FROM " + db + ".reconciliation FINAL", "SELECT uniqExact(match_key) FROM " + db + ".reconciliation FINAL"},
		{"rejections", "SELECT count() FROM " + db + ".rejections FINAL",
			"SELECT uniqExact(submission_id, position, stage, rule_id, field, source_topic) FROM " + db + ".rejections FINAL"},
		{"validation_outcomes", "SELECT count() FROM " + db + ".validation_outcomes FINAL", "SELECT uniqExact(submission_id, position) FROM " + db + ".validation_outcomes FINAL"},
	} {
		if all, distinct := s.count(q.all), s.count(q.distinct); all != distinct || all <= 0 {
			t.Errorf("%s: %d rows, %d distinct keys: want one row per key", q.what, all, distinct)
		}
	}

	// The reconciliation the records call for (local flows have no national
	// copy; a key whose copies were all deleted has no status). It waits:
	// reconcile's results reach ClickHouse apart from the activity.
	wantStatus := map[string]int64{"matched": int64(want.Matched), "mismatched": int64(want.Mismatched),
		"local_only": int64(want.LocalOnly), "national_only": int64(want.NationalOnly)}
	statuses := func() map[string]int64 {
		got := map[string]int64{}
		rows, err := s.conn.Query(ctx, "SELECT status, count() FROM "+db+".reconciliation FINAL WHERE dataset != 'local_flow' AND status != 'unspecified' GROUP BY status")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var status string
			var n uint64
			if err := rows.Scan(&status, &n); err != nil {
				t.Fatal(err)
			}
			got[status] = int64(n)
		}
		return got
	}
	deadline = time.Now().Add(2 * time.Minute)
	got := statuses()
	for !mapsEqual(got, wantStatus) && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		got = statuses()
	}
	if !mapsEqual(got, wantStatus) {
		t.Errorf("reconciliation statuses = %v, want %v", got, wantStatus)
	}
	// Every live record's status in the analysts' view agrees with it.
	if n := s.count("SELECT count() FROM " + db + ".activity_current WHERE dataset != 'local_flow' AND reconciliation_status = ''"); n != 0 {
		t.Errorf("%d activities have no reconciliation status", n)
	}

	// What the run says about reconcile's state and every process's memory.
	var reads []string
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, "changelog partition read into the state store") {
			reads = append(reads, line)
		}
	}
	t.Logf("reconcile instances read a changelog partition %d times (a partition new to an instance, or written meanwhile by the other):\n%s",
		len(reads), strings.Join(reads, "\n"))
	t.Logf("peak RSS (VmHWM) by process, MB: %s", peakRSS(st))
}

// instanceProcessed is the messages a stage's instances processed in all,
// and which instance (1 or 2) processed more. An instance that does not
// answer counts 0.
func (s *stackUnderTest) instanceProcessed(name string) (total int64, busiest int) {
	s.t.Helper()
	var most int64 = -1
	for i := 1; ; i++ {
		p := s.Instance(name, i)
		if p == nil {
			return total, busiest
		}
		n := s.processedBy(p.Flag("grpc-addr"))
		total += n
		if n > most {
			most, busiest = n, i
		}
	}
}

func (s *stackUnderTest) processedBy(addr string) int64 {
	creds, err := s.PKI.DialOption(devpki.OperatorFile)
	if err != nil {
		s.t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, creds)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := dmicv1.NewControlServiceClient(conn).GetStatus(ctx, &dmicv1.GetStatusRequest{})
	if err != nil {
		return 0
	}
	return st.Processed
}

func names(ps []*devstack.Process) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return strings.Join(out, ", ")
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// peakRSS is VmHWM of every running process of the stack (a restarted
// one: since its restart).
func peakRSS(st *devstack.Stack) string {
	var parts []string
	for _, name := range append([]string{"broker", "ingest"}, devstack.ConsumerStages...) {
		for i := 1; ; i++ {
			p := st.Instance(name, i)
			if p == nil {
				break
			}
			parts = append(parts, fmt.Sprintf("%s %s", p.Name, vmHWM(p.Pid())))
		}
	}
	return strings.Join(parts, ", ")
}

func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return "?"
			}
			return strconv.FormatInt(kb/1024, 10)
		}
	}
	return "?"
}
