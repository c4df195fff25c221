package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one value", []float64{7}, 99, 7},
		{"median of odd count", []float64{1, 2, 3, 4, 5}, 50, 3},
		{"median of even count is the lower (nearest rank)", []float64{1, 2, 3, 4}, 50, 2},
		{"p95 of 1..100", hundred, 95, 95},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 is the max", hundred, 100, 100},
		{"tiny p is the min", hundred, 0.001, 1},
		{"p99 of 10 values is the max", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestLatencyRecords(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	subs := []*submissionSeen{
		{ack: ack{At: t0}, lines: 2, seenAt: t0.Add(1500 * time.Millisecond)},
		{ack: ack{At: t0}, lines: 1, seenAt: t0.Add(250 * time.Millisecond)},
		{ack: ack{At: t0}, lines: 4}, // never seen
	}
	got, unseen := latencyRecords(subs)
	if want := []float64{250, 1500, 1500}; !slices.Equal(got, want) {
		t.Errorf("latencies = %v, want %v (one per record, sorted, in ms)", got, want)
	}
	if unseen != 4 {
		t.Errorf("unseen = %d, want 4", unseen)
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	rest := " S 1 2 3 4 5 6 7 8 9 10 %s %s 0 0 20 0 1 0 100 1000 10"
	for _, tc := range []struct {
		name    string
		stat    string
		want    int64
		wantErr bool
	}{
		{"plain", "42 (load)" + fmt.Sprintf(rest, "150", "30"), 180, false},
		{"command with spaces and parentheses", "42 (a (b) c)" + fmt.Sprintf(rest, "7", "5"), 12, false},
		{"no command", "42 load S 1", 0, true},
		{"truncated", "42 (load) S 1 2 3", 0, true},
		{"not a number", "42 (load)" + fmt.Sprintf(rest, "x", "5"), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("ticks = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tload\nVmPeak:\t  123456 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"
	for _, tc := range []struct {
		name, key string
		want      int64
		wantErr   bool
	}{
		{"peak RSS", "VmHWM", 20480, false},
		{"current RSS", "VmRSS", 10240, false},
		{"prefix of another key does not match", "Vm", 0, true},
		{"missing", "VmSwap", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatusKB([]byte(status), tc.key)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("%s = %d, want %d", tc.key, got, tc.want)
			}
		})
	}
}

// TestProcReaderSelf reads the test process's own /proc entries: CPU time
// grows while it burns CPU, and the peak RSS covers a buffer it touched.
func TestProcReaderSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	r := newProcReader()
	if r.ticks <= 0 {
		t.Fatalf("clock ticks = %d", r.ticks)
	}
	pid := os.Getpid()
	before, err := r.cpuSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel's own account (getrusage, read independently of
	// /proc) says this process used 0.3 s more CPU, however busy the machine
	// is: a fixed wall-clock spin got too little CPU on a loaded machine.
	// The wall-clock cap only stops a broken getrusage from spinning forever.
	used := func() float64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	x := uint64(1)
	for start, ru0 := time.Now(), used(); used()-ru0 < 0.3 && time.Since(start) < time.Minute; {
		for i := 0; i < 1e5; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	after, err := r.cpuSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in clock ticks (10 ms): allow for them at both ends.
	if d := after - before; d < 0.25 || d > 5 {
		t.Errorf("CPU seconds went from %.2f to %.2f after 0.3 CPU-s of spinning by getrusage (x=%d)", before, after, x)
	}
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	rss, err := r.peakRSSMB(pid)
	if err != nil {
		t.Fatal(err)
	}
	if rss < 64 {
		t.Errorf("peak RSS %.1f MB after touching 64 MB", rss)
	}
	if _, err := r.cpuSeconds(1 << 30); err == nil {
		t.Error("cpuSeconds of a pid that does not exist: want an error")
	}
}

func TestFindProcess(t *testing.T) {
	root := t.TempDir()
	write := func(pid, cmdline string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "cmdline"), []byte(cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10", "/usr/sbin/clickhouse-server\x00--config-file=/var/other/clickhouse/config.xml\x00")
	write("11", "bin/load\x00-clickhouse-addr\x00127.0.0.1:9000\x00")
	write("12", "/usr/sbin/clickhouse-server\x00--config-file=/tmp/dmic-bench-1/clickhouse/config.xml\x00")
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := procReader{root: root, ticks: 100}
	for _, tc := range []struct {
		name  string
		parts []string
		want  int
	}{
		{"the server under our var directory", []string{"clickhouse", "/tmp/dmic-bench-1"}, 12},
		{"no match", []string{"clickhouse", "/tmp/dmic-bench-2"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.findProcess(tc.parts...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("pid = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBusyRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := func(sec float64, n int64) counterSample {
		return counterSample{at: t0.Add(time.Duration(sec * float64(time.Second))), n: n}
	}
	for _, tc := range []struct {
		name    string
		samples []counterSample
		want    StageRate
	}{
		{"no samples", nil, StageRate{}},
		{"never moved", []counterSample{s(0, 5), s(1, 5), s(2, 5)}, StageRate{}},
		{
			"idle, busy, idle: from the last idle sample before to the first at the final value",
			[]counterSample{s(0, 100), s(1, 100), s(2, 1100), s(3, 2100), s(4, 3100), s(5, 3100), s(6, 3100)},
			StageRate{Records: 3000, Seconds: 3, RecordsPerSec: 1000},
		},
		{
			"a pause in the middle counts as busy time",
			[]counterSample{s(0, 0), s(1, 500), s(2, 500), s(3, 500), s(4, 1000)},
			StageRate{Records: 1000, Seconds: 4, RecordsPerSec: 250},
		},
		{
			"still moving at the last sample",
			[]counterSample{s(0, 0), s(2, 400), s(4, 800)},
			StageRate{Records: 800, Seconds: 4, RecordsPerSec: 200},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := busyRate(tc.samples); got != tc.want {
				t.Errorf("busyRate = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	a := subKey{dmicv1.Source_SOURCE_PROVIDER, "RVR", dmicv1.Dataset_DATASET_APC}
	b := subKey{dmicv1.Source_SOURCE_NATIONAL, "X26", dmicv1.Dataset_DATASET_APC}
	c := subKey{dmicv1.Source_SOURCE_PROVIDER, "RP4", dmicv1.Dataset_DATASET_OUTPATIENT}
	w := &workload{keys: []subKey{a, b, c}}
	// a b a a c a b a a a a; line 7 revises line 5's record, which is still
	// in an open submission, so that submission closes first. Lines 9 and 10
	// have no record id: never a repeat.
	for i, k := range []uint16{0, 1, 0, 0, 2, 0, 1, 0, 0, 0, 0} {
		w.keyOf = append(w.keyOf, k)
		w.lines = append(w.lines, []byte("{}"))
		id := uint64(100 + i)
		switch i {
		case 7:
			id = 105
		case 9, 10:
			id = 0
		}
		w.idOf = append(w.idOf, id)
	}
	got := plan(w, 3)
	want := []chunk{
		{a, []int32{0, 2, 3}},
		{b, []int32{1, 6}},
		{c, []int32{4}},
		{a, []int32{5}},
		{a, []int32{7, 8, 9}},
		{a, []int32{10}},
	}
	if len(got) != len(want) {
		t.Fatalf("plan = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].key != want[i].key || !slices.Equal(got[i].lines, want[i].lines) {
			t.Errorf("submission %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// requiredKeys are the keys issue 3 asks latest.json to hold, with the keys
// of the nested objects that must be there whatever the run measured.
var requiredKeys = []string{
	"records", "e2e_records_per_s", "stage_records_per_s", "transport_floor_records_per_s",
	"compute_floor_records_per_s", "ratio_e2e_to_transport_floor", "ratio_e2e_to_compute_floor",
	"latency_ms.p50", "latency_ms.p95", "latency_ms.p99", "latency_ms.rate",
	"cpu_s_per_1k", "peak_rss_mb", "per_process_per_1k", "clickhouse_inserts",
	"machine.cores", "machine.memory_mb", "machine.go_version", "machine.clickhouse_version", "git_commit",
}

// lookup finds a dotted key in decoded JSON.
func lookup(m map[string]any, key string) (any, bool) {
	var cur any = m
	for _, part := range strings.Split(key, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func TestResultJSONKeys(t *testing.T) {
	r := &Result{StartedAt: time.Date(2026, 11, 22, 19, 5, 7, 0, time.UTC),
		StageRecordsPerS: map[string]float64{"validate": 1}, CPUSecondsPer1k: map[string]float64{"validate": 1},
		PeakRSSMB: map[string]float64{"validate": 1}}
	dir := t.TempDir()
	dated, err := r.write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dated) != "2026-11-22T190507Z.json" {
		t.Errorf("dated copy %s, want 2026-11-22T190507Z.json", filepath.Base(dated))
	}
	for _, p := range []string{dated, filepath.Join(dir, "latest.json")} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, k := range requiredKeys {
			if _, ok := lookup(m, k); !ok {
				t.Errorf("%s lacks %s", filepath.Base(p), k)
			}
		}
	}
	md := r.Markdown()
	for _, want := range []string{"| end to end |", "| transport floor", "| stage |", "| process |", "| validate |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
