package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/bench"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
)

// loadMemoryRecords is how many assigned records TestLoadMemory feeds the
// stack: DMIC_LOAD_MEMORY_RECORDS, else 100,000.
func loadMemoryRecords(t *testing.T) int { return envRecords(t, "DMIC_LOAD_MEMORY_RECORDS", 100_000) }

// TestLoadMemory runs the stack as make run does and writes records of
// assign's size (with CAM's trail, about 1.6 KB each) straight to
// dmic.assigned, faster than load can write them, so that load's batches are
// as large as its bounds let them be; reconcile takes them too. It fails if
// load's or reconcile's peak RSS (VmHWM) goes above the aim every service
// keeps at any record count (bench.ServiceMemoryAimMB, issue 15). Before the
// memory limit and load's bounded batches, load took about 900 MB at
// 200,000 records. Never a timing assertion: it waits for the counts.
func TestLoadMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds load a hundred thousand records")
	}
	n := loadMemoryRecords(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := startStack(ctx, t, devstack.Config{Database: database}, 80)
	st := s.Stack
	admin, err := st.Kafka(topics.Admin)
	if err != nil {
		t.Fatal(err)
	}
	loadBefore, reconcileBefore := s.status("load").GetProcessed(), s.status("reconcile").GetProcessed()
	// CPU from here on is the records' (the stack's start is not).
	cpuBefore := map[string]float64{}
	for _, name := range []string{"load", "reconcile"} {
		cpuBefore[name] = cpuSeconds(t, st.Procs[name].Pid())
	}

	start := time.Now()
	w := kafkapipe.NewWriter(admin, kafkapipe.WithCompression(0))
	defer w.Close()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	const chunk = 2000
	msgs := make([]kafka.Message, 0, chunk)
	for i := range n {
		// Each key's provider copy, then (half the stream later) its
		// national copy: reconcile holds half the keys as state.
		k, src := i%(n/2), dmicv1.Source_SOURCE_PROVIDER
		if i >= n/2 {
			src = dmicv1.Source_SOURCE_NATIONAL
		}
		r := assignedRecord(run, k, src, "HN12A")
		r.Assignment.Trail = camTrail()
		v, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: topics.Assigned, Key: []byte(r.MatchKey), Value: v})
		if len(msgs) == chunk || i == n-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	t.Logf("produced %d assigned records in %v", n, time.Since(start).Round(time.Millisecond))

	// Load takes each record and reconcile's result for it.
	wantLoad, wantReconcile := loadBefore+2*int64(n), reconcileBefore+int64(n)
	deadline := time.Now().Add(8 * time.Minute)
	for s.status("load").GetProcessed() < wantLoad || s.status("reconcile").GetProcessed() < wantReconcile {
		if time.Now().After(deadline) {
			t.Fatalf("processed: load %d of %d, reconcile %d of %d", s.status("load").GetProcessed(), wantLoad,
				s.status("reconcile").GetProcessed(), wantReconcile)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("load and reconcile done %v after the first record", time.Since(start).Round(time.Millisecond))
	// How large load's inserts were with its batches full: the figure
	// that decides ClickHouse's CPU per row (docs/performance.md).
	opsAddr := "localhost:" + strconv.Itoa(st.Ports.Ops["load"])
	for _, table := range []string{"activity", "reconciliation"} {
		inserts := metricValue(opsAddr, `dmic_clickhouse_inserts_total{table="`+table+`"}`)
		rows := metricValue(opsAddr, `dmic_clickhouse_inserted_rows_total{table="`+table+`"}`)
		t.Logf("load: %s: %.0f inserts, %.0f rows per insert", table, inserts, rows/max(inserts, 1))
	}
	for _, name := range []string{"load", "reconcile"} {
		pid := st.Procs[name].Pid()
		rss := vmHWMMB(t, pid)
		cpu := cpuSeconds(t, pid) - cpuBefore[name]
		t.Logf("%s: peak RSS %d MB, CPU for the records %.1f s (%.3f s per 1,000 records); now %s", name, rss, cpu, cpu*1000/float64(n),
			statusFields(pid, "RssAnon", "RssFile"))
		if rss > bench.ServiceMemoryAimMB {
			t.Errorf("%s: peak RSS %d MB at %d records, above the aim of %d MB (docs/performance.md, Memory)", name, rss, n, bench.ServiceMemoryAimMB)
		}
	}
}

// camTrail is a trail through the CAM flow chart of the size assign writes
// (about 600 bytes): load must not keep it.
func camTrail() []*dmicv1.CamDecision {
	var trail []*dmicv1.CamDecision
	for _, step := range []string{"A-1", "A-2", "B-1", "B-4", "C-1", "C-3", "C-5"} {
		trail = append(trail, &dmicv1.CamDecision{Step: step,
			Question: "Is the activity within the scope of " + step + " of the commissioner assignment method? " + strings.Repeat("·", 20)})
	}
	return trail
}
