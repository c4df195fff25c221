package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/ports"
)

// ProcessFigures are a process's counts per 1,000 records of the throughput
// run: the figures that carry from one machine to another (issue 15).
type ProcessFigures struct {
	UserCPUS        float64 `json:"user_cpu_s"`
	SystemCPUS      float64 `json:"system_cpu_s"`
	VoluntaryCS     float64 `json:"voluntary_ctx_switches"`
	InvoluntaryCS   float64 `json:"involuntary_ctx_switches"`
	Syscalls        float64 `json:"read_write_syscalls"`
	ProduceRequests float64 `json:"produce_requests,omitempty"`
	FetchRequests   float64 `json:"fetch_requests,omitempty"`
}

// InsertFigures are the INSERTs load made into one table during the run.
type InsertFigures struct {
	Inserts       float64 `json:"inserts"`
	Rows          float64 `json:"rows"`
	RowsPerInsert float64 `json:"rows_per_insert"`
}

// metricSample is a service's counters, summed over their labels except the
// table of load's insert counters.
type metricSample map[string]float64

// The counters read from each service's /metrics.
const (
	mProduceRequests = "dmic_kafka_produce_requests_total"
	mFetchRequests   = "dmic_kafka_fetch_requests_total"
	mInserts         = "dmic_clickhouse_inserts_total"
	mInsertedRows    = "dmic_clickhouse_inserted_rows_total"
)

// scrapeMetrics reads the counters above from url (a service's /metrics).
func scrapeMetrics(ctx context.Context, url string) (metricSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format: of the counters above, the
// unlabelled ones by name, and the insert counters by name and table
// ("dmic_clickhouse_inserts_total/activity").
func parseMetrics(r io.Reader) (metricSample, error) {
	out := metricSample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, value := line[:i], line[i+1:]
		name, labels, _ := strings.Cut(series, "{")
		switch name {
		case mProduceRequests, mFetchRequests:
		case mInserts, mInsertedRows:
			table := labelValue(labels, "table")
			if table == "" {
				continue
			}
			name += "/" + table
		default:
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", series, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// labelValue is the value of label in `a="x",b="y"}`.
func labelValue(labels, label string) string {
	for _, part := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok && k == label {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// figures fills res.Processes and res.ClickHouseInserts from the samples at
// both ends of the throughput run.
func (res *Result) figures(p0, p1 map[string]procSample, m0, m1 map[string]metricSample, records int) {
	per1k := float64(records) / 1000
	res.Processes = map[string]ProcessFigures{}
	for n, s1 := range p1 {
		s0, ok := p0[n]
		if !ok {
			continue
		}
		d := s1.minus(s0)
		f := ProcessFigures{UserCPUS: d.UserS / per1k, SystemCPUS: d.SystemS / per1k,
			VoluntaryCS: float64(d.VoluntaryCS) / per1k, InvoluntaryCS: float64(d.InvoluntaryCS) / per1k, Syscalls: float64(d.Syscalls) / per1k}
		if a, b := m0[n], m1[n]; a != nil && b != nil {
			f.ProduceRequests = (b[mProduceRequests] - a[mProduceRequests]) / per1k
			f.FetchRequests = (b[mFetchRequests] - a[mFetchRequests]) / per1k
		}
		res.Processes[n] = f
	}
	res.ClickHouseInserts = map[string]InsertFigures{}
	a, b := m0["load"], m1["load"]
	for k, v := range b {
		table, ok := strings.CutPrefix(k, mInserts+"/")
		if !ok {
			continue
		}
		ins := v - a[k]
		rows := b[mInsertedRows+"/"+table] - a[mInsertedRows+"/"+table]
		f := InsertFigures{Inserts: ins, Rows: rows}
		if ins > 0 {
			f.RowsPerInsert = rows / ins
		}
		res.ClickHouseInserts[table] = f
	}
}

// figuresMarkdown renders the per-process figures and the inserts.
func (r *Result) figuresMarkdown(p func(string, ...any)) {
	if len(r.Processes) == 0 {
		return
	}
	p("\nPer 1,000 records (the figures that carry between machines; syscalls are reads and writes of /proc/<pid>/io):\n")
	p("\n| process | user CPU s | system CPU s | voluntary cs | involuntary cs | read/write syscalls | produce requests | fetch requests |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range ordered(r.Processes) {
		f := r.Processes[n]
		p("| %s | %.3f | %.3f | %.0f | %.0f | %.0f | %.1f | %.1f |\n", n, f.UserCPUS, f.SystemCPUS, f.VoluntaryCS, f.InvoluntaryCS, f.Syscalls, f.ProduceRequests, f.FetchRequests)
	}
	if r.TransportFloorCPUPer1k > 0 || r.ComputeFloorCPUPer1k > 0 {
		p("\nFloors' own CPU per 1,000 records: transport floor (broker + ClickHouse) %.3f s, compute floor %.3f s.\n", r.TransportFloorCPUPer1k, r.ComputeFloorCPUPer1k)
	}
	if len(r.ClickHouseInserts) > 0 {
		p("\n| ClickHouse table | inserts | rows | rows per insert |\n|---|---:|---:|---:|\n")
		for _, t := range ordered(r.ClickHouseInserts) {
			f := r.ClickHouseInserts[t]
			p("| %s | %.0f | %.0f | %.0f |\n", t, f.Inserts, f.Rows, f.RowsPerInsert)
		}
	}
}

// ServiceMemoryAimMB is issue 15's aim for every dmic service: at most this
// peak RSS at any number of records (1,000,000 in make bench). The services'
// memory limit (-memory-limit) is set to keep them under it
// (docs/performance.md, Memory). The broker and the bench client are not
// dmic services, and ClickHouse is a server of its own.
const ServiceMemoryAimMB = 150

// overMemoryAim warns of each service whose peak RSS is above
// ServiceMemoryAimMB.
func overMemoryAim(peakMB map[string]float64) []string {
	var out []string
	for _, n := range ports.Services {
		if v, ok := peakMB[n]; ok && v > ServiceMemoryAimMB {
			out = append(out, fmt.Sprintf("%s: peak RSS %.0f MB, above the aim of %d MB", n, v, ServiceMemoryAimMB))
		}
	}
	return out
}
