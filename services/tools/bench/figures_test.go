package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSampleSelf reads the test process's own counters: the read/write system
// calls grow by at least the writes it makes, and the context switches and
// CPU never go down.
func TestSampleSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/io"); err != nil {
		t.Skip("no /proc/<pid>/io on this system")
	}
	r := newProcReader()
	pid := os.Getpid()
	before, err := r.sample(pid)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	const writes = 500
	for range writes {
		if _, err := f.Write([]byte("x")); err != nil { // unbuffered: one write(2) each
			t.Fatal(err)
		}
	}
	f.Close()
	after, err := r.sample(pid)
	if err != nil {
		t.Fatal(err)
	}
	d := after.minus(before)
	if d.Syscalls < writes {
		t.Errorf("read/write syscalls grew by %d over %d writes", d.Syscalls, writes)
	}
	if d.UserS < 0 || d.SystemS < 0 || d.VoluntaryCS < 0 || d.InvoluntaryCS < 0 {
		t.Errorf("a counter went down: %+v", d)
	}
	if after.VoluntaryCS+after.InvoluntaryCS == 0 {
		t.Errorf("no context switch counted for a running Go process: %+v", after)
	}
}

func TestParseStatUserSystem(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 40; the name holds ") (".
	stat := "1234 (we) (ird) S 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 8 0 100 2000 300\n"
	u, s, err := parseStatUserSystem([]byte(stat))
	if err != nil || u != 250 || s != 40 {
		t.Errorf("parseStatUserSystem = %d, %d, %v; want 250, 40", u, s, err)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP dmic_kafka_produce_requests_total Produce requests.
# TYPE dmic_kafka_produce_requests_total counter
dmic_kafka_produce_requests_total 120
dmic_kafka_fetch_requests_total 3.5e+02
dmic_clickhouse_inserts_total{table="activity"} 7
dmic_clickhouse_inserts_total{table="outcomes"} 9
dmic_clickhouse_inserted_rows_total{table="activity"} 70000
go_goroutines 12
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := metricSample{mProduceRequests: 120, mFetchRequests: 350, mInserts + "/activity": 7, mInserts + "/outcomes": 9, mInsertedRows + "/activity": 70000}
	if len(m) != len(want) {
		t.Errorf("parsed %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func TestFigures(t *testing.T) {
	var res Result
	p0 := map[string]procSample{"load": {UserS: 1, SystemS: 1, VoluntaryCS: 100, InvoluntaryCS: 10, Syscalls: 1000}}
	p1 := map[string]procSample{"load": {UserS: 3, SystemS: 2, VoluntaryCS: 2100, InvoluntaryCS: 30, Syscalls: 5000}}
	m0 := map[string]metricSample{"load": {mFetchRequests: 10, mInserts + "/activity": 1, mInsertedRows + "/activity": 100}}
	m1 := map[string]metricSample{"load": {mFetchRequests: 30, mInserts + "/activity": 5, mInsertedRows + "/activity": 20100}}
	res.figures(p0, p1, m0, m1, 2000)
	got := res.Processes["load"]
	want := ProcessFigures{UserCPUS: 1, SystemCPUS: 0.5, VoluntaryCS: 1000, InvoluntaryCS: 10, Syscalls: 2000, FetchRequests: 10}
	if got != want {
		t.Errorf("figures = %+v, want %+v", got, want)
	}
	if ins := res.ClickHouseInserts["activity"]; ins != (InsertFigures{Inserts: 4, Rows: 20000, RowsPerInsert: 5000}) {
		t.Errorf("inserts = %+v", ins)
	}
	if md := res.Markdown(); !strings.Contains(md, "| activity | 4 | 20000 | 5000 |") || !strings.Contains(md, "| load | 1.000 | 0.500 | 1000 | 10 | 2000 | 0.0 | 10.0 |") {
		t.Errorf("markdown lacks the figures:\n%s", md)
	}
}

// A service above the memory aim is a warning of the run; the broker, the
// bench client and ClickHouse are not dmic services and are not held to it.
func TestOverMemoryAim(t *testing.T) {
	got := overMemoryAim(map[string]float64{"load": 954, "ingest": ServiceMemoryAimMB, "reconcile": 141, "broker": 457, "clickhouse": 816, "bench-client": 400})
	if len(got) != 1 || !strings.Contains(got[0], "load: peak RSS 954 MB") {
		t.Errorf("warnings %q, want one, for load", got)
	}
}
