package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Result is one run of the harness; its JSON is bench/results/latest.json.
type Result struct {
	// Records is the number of records submitted in the throughput run
	// (provider and national copies, good and bad).
	Records             int                  `json:"records"`
	ExpectedActivities  int                  `json:"expected_activities"`
	ExpectedRejected    int                  `json:"expected_rejected"`
	E2ESeconds          float64              `json:"e2e_seconds"`
	SubmitSeconds       float64              `json:"submit_seconds"`
	E2ERecordsPerS      float64              `json:"e2e_records_per_s"`
	SubmitRecordsPerS   float64              `json:"submit_records_per_s"`
	StageRecordsPerS    map[string]float64   `json:"stage_records_per_s"`
	Stages              map[string]StageRate `json:"stages"`
	TransportFloorPerS  float64              `json:"transport_floor_records_per_s"`
	ComputeFloorPerS    float64              `json:"compute_floor_records_per_s"`
	TransportFloorSecs  float64              `json:"transport_floor_seconds"`
	ComputeFloorSecs    float64              `json:"compute_floor_seconds"`
	RatioE2EToTransport float64              `json:"ratio_e2e_to_transport_floor"`
	RatioE2EToCompute   float64              `json:"ratio_e2e_to_compute_floor"`
	Latency             LatencyResult        `json:"latency_ms"`
	CPUSecondsPer1k     map[string]float64   `json:"cpu_s_per_1k"`
	CPUSeconds          map[string]float64   `json:"cpu_s"`
	PeakRSSMB           map[string]float64   `json:"peak_rss_mb"`
	// Processes holds each process's counts per 1,000 records of the
	// throughput run: user and system CPU, context switches, system calls,
	// Kafka requests (issue 15).
	Processes map[string]ProcessFigures `json:"per_process_per_1k"`
	// ClickHouseInserts is load's INSERTs per table during the throughput run.
	ClickHouseInserts map[string]InsertFigures `json:"clickhouse_inserts"`
	// The floors' own CPU (user + system) per 1,000 records: the broker and
	// ClickHouse during the transport floor, the benchmark process during the
	// compute floor.
	TransportFloorCPUPer1k float64 `json:"transport_floor_cpu_s_per_1k"`
	ComputeFloorCPUPer1k   float64 `json:"compute_floor_cpu_s_per_1k"`
	// CPUCeilingPerS is cores × 1000 / the pipeline's CPU seconds per 1,000
	// records: the end-to-end rate if every core were busy with the pipeline
	// for the whole run at the measured cost per record.
	CPUCeilingPerS float64 `json:"cpu_ceiling_records_per_s"`
	// Timeline holds the throughput run's samples, [seconds since the first
	// submission, value]: each stage's processed counter, and the activity
	// table's row count (clickhouse_activity_rows).
	Timeline  map[string][][2]float64 `json:"timeline"`
	Machine   Machine                 `json:"machine"`
	GitCommit string                  `json:"git_commit"`
	GitDirty  bool                    `json:"git_dirty"`
	StartedAt time.Time               `json:"started_at"`
	Settings  Settings                `json:"settings"`
	// Warnings say what makes a number less trustworthy (a process restarted,
	// a submission resent, a phase skipped).
	Warnings []string `json:"warnings"`
}

// Settings are the knobs of the run, so that a result can be reproduced.
type Settings struct {
	Workers        int    `json:"workers"`
	SubmissionSize int    `json:"submission_size"`
	Seed           int64  `json:"seed"`
	LatencySeed    int64  `json:"latency_seed"`
	LatencySeconds int    `json:"latency_seconds"`
	Partitions     int    `json:"partitions,omitempty"`
	Database       string `json:"database"`
	SkipLatency    bool   `json:"skip_latency"`
	SkipFloors     bool   `json:"skip_floors"`
}

// Machine describes where the run happened.
type Machine struct {
	Cores             int    `json:"cores"`
	MemoryMB          int64  `json:"memory_mb"`
	CPUModel          string `json:"cpu_model"`
	Kernel            string `json:"kernel"`
	GoVersion         string `json:"go_version"`
	ClickHouseVersion string `json:"clickhouse_version"`
}

// processOrder lists processes in pipeline order for the table.
var processOrder = []string{"ingest", "validate", "deidentify", "assign", "reconcile", "load", "broker", "clickhouse", "bench-client"}

func ordered[V any](m map[string]V) []string {
	var out []string
	for _, n := range processOrder {
		if _, ok := m[n]; ok {
			out = append(out, n)
		}
	}
	var rest []string
	for n := range m {
		if !slices.Contains(processOrder, n) {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// Markdown renders the result as the tables docs/performance.md shows.
func (r *Result) Markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("| measure | value |\n|---|---|\n")
	p("| records submitted | %d (%d activities live, %d rejected expected) |\n", r.Records, r.ExpectedActivities, r.ExpectedRejected)
	p("| end to end | **%.0f records/s** (%.1f s) |\n", r.E2ERecordsPerS, r.E2ESeconds)
	p("| submission (client → ingest acknowledged) | %.0f records/s (%.1f s) |\n", r.SubmitRecordsPerS, r.SubmitSeconds)
	floor := func(v, secs float64) string {
		if r.Settings.SkipFloors {
			return "skipped"
		}
		return fmt.Sprintf("%.0f records/s (%.1f s)", v, secs)
	}
	p("| transport floor (ClickHouse Kafka engine) | %s |\n", floor(r.TransportFloorPerS, r.TransportFloorSecs))
	p("| compute floor (validate → de-identify → assign, one process) | %s |\n", floor(r.ComputeFloorPerS, r.ComputeFloorSecs))
	if !r.Settings.SkipFloors {
		p("| end to end / transport floor | %.2f |\n", r.RatioE2EToTransport)
		p("| end to end / compute floor | %.2f |\n", r.RatioE2EToCompute)
	}
	if r.Settings.SkipLatency {
		p("| latency | skipped |\n")
	} else {
		l := r.Latency
		p("| latency at %.0f records/s (target %.0f) | p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, max %.0f ms |\n", l.Rate, l.TargetRate, l.P50, l.P95, l.P99, l.Max)
	}
	p("\n| stage | records | busy s | records/s |\n|---|---:|---:|---:|\n")
	for _, n := range ordered(r.Stages) {
		s := r.Stages[n]
		p("| %s | %d | %.1f | %.0f |\n", n, s.Records, s.Seconds, s.RecordsPerSec)
	}
	p("\n| process | CPU s | CPU s per 1,000 records | peak RSS MB |\n|---|---:|---:|---:|\n")
	names := ordered(r.PeakRSSMB)
	for _, n := range ordered(r.CPUSecondsPer1k) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var total, total1k float64
	for _, n := range names {
		p("| %s | %.1f | %.3f | %.0f |\n", n, r.CPUSeconds[n], r.CPUSecondsPer1k[n], r.PeakRSSMB[n])
		if n != "bench-client" {
			total += r.CPUSeconds[n]
			total1k += r.CPUSecondsPer1k[n]
		}
	}
	p("| pipeline total (without bench-client) | %.1f | %.3f | |\n", total, total1k)
	p("\nCPU ceiling: %d cores at %.3f CPU s per 1,000 records would carry %.0f records/s end to end.\n", r.Machine.Cores, total1k, r.CPUCeilingPerS)
	r.figuresMarkdown(p)
	m := r.Machine
	p("\nMachine: %d cores (%s), %d MB, %s, ClickHouse %s, kernel %s. Commit %s%s.\n",
		m.Cores, m.CPUModel, m.MemoryMB, m.GoVersion, m.ClickHouseVersion, m.Kernel, r.GitCommit, map[bool]string{true: " (with uncommitted changes)"}[r.GitDirty])
	for _, w := range r.Warnings {
		p("\nWarning: %s\n", w)
	}
	return b.String()
}

// write saves r as dir/latest.json and dir/<UTC yyyy-mm-ddThhmmssZ>.json and
// returns the dated path.
func (r *Result) write(dir string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode result: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results folder: %w", err)
	}
	dated := filepath.Join(dir, r.StartedAt.UTC().Format("2006-01-02T150405Z")+".json")
	for _, p := range []string{dated, filepath.Join(dir, "latest.json")} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", fmt.Errorf("write result: %w", err)
		}
	}
	return dated, nil
}

// printTable writes the markdown table to w.
func (r *Result) printTable(w io.Writer) {
	fmt.Fprint(w, r.Markdown())
}
