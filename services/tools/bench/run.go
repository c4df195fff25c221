// Package bench is the `make bench` harness: it starts a fresh dmic stack
// (embedded broker, a private ClickHouse, the six services), measures
// end-to-end and per-stage throughput, latency under a steady feed, CPU and
// memory per process, and runs the transport and compute floors on the same
// records, then writes bench/results/latest.json and a markdown table.
//
// See docs/performance.md for what each number means.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

// Config of one run.
type Config struct {
	// Records submitted in the throughput run (provider and national copies together).
	Records int
	// LatencyRate (records/s) and LatencySeconds of the steady feed.
	LatencyRate    int
	LatencySeconds int
	SkipLatency    bool
	SkipFloors     bool
	// OutDir receives latest.json, the dated copy and services.log.
	OutDir string
	// BinDir holds the built binaries.
	BinDir       string
	ReferenceDir string
	PortBase     int
	// Keep leaves the stack's var directory (broker data, ClickHouse data and logs) in place.
	Keep bool
	// Workers submitting concurrently, and records per submission (at most).
	Workers        int
	SubmissionSize int
	// Log receives progress; Stdout the markdown table.
	Log    *slog.Logger
	Stdout io.Writer
}

const (
	database        = "dmic_bench"
	throughputSeed  = 1
	warmupSeed      = 2
	latencySeed     = 3
	warmupRecords   = 300
	samplePeriod    = time.Second
	visiblePoll     = 250 * time.Millisecond
	exactCheckEvery = 2 * time.Second
	// exactCheckFallback: the exact check runs at least this often.
	exactCheckFallback = 15 * time.Second
)

// The steady feed's activities fall before the throughput run's (synth's
// default is the 12 months before 2026-10-01), in another calendar year
// (activity is partitioned by activity year), so its polls prune every
// partition the throughput run filled. The months are the start of the
// same financial year as before (2024-25), whose reference data the
// synthetic records are valid under.
var (
	latencyStart = time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	latencyEnd   = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

func (c *Config) defaults() error {
	if c.Records <= 0 {
		return fmt.Errorf("records must be positive, got %d", c.Records)
	}
	if !c.SkipLatency && (c.LatencyRate <= 0 || c.LatencySeconds <= 0) {
		return fmt.Errorf("latency rate and seconds must be positive (or skip latency), got %d and %d", c.LatencyRate, c.LatencySeconds)
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.SubmissionSize <= 0 {
		c.SubmissionSize = 5000
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	for _, d := range []*string{&c.OutDir, &c.BinDir, &c.ReferenceDir} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return fmt.Errorf("path %q: %w", *d, err)
		}
		*d = abs
	}
	return nil
}

// Run performs one benchmark run and writes its results.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &Result{StartedAt: time.Now().UTC(), Records: cfg.Records,
		Settings: Settings{Workers: cfg.Workers, SubmissionSize: cfg.SubmissionSize,
			Seed: throughputSeed, LatencySeed: latencySeed, LatencySeconds: cfg.LatencySeconds, Database: database,
			SkipLatency: cfg.SkipLatency, SkipFloors: cfg.SkipFloors},
		Warnings: []string{}}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("results folder: %w", err)
	}
	// 1. Records, generated before anything is timed.
	loads, err := generateWorkloads(cfg)
	if err != nil {
		return nil, err
	}
	res.ExpectedActivities, res.ExpectedRejected = loads.work.expect.Activities, loads.work.expect.Rejected
	// 2. A fresh stack of its own: own var directory, own ClickHouse.
	st, err := startStack(ctx, cfg, res)
	if err != nil {
		return nil, err
	}
	defer st.close()
	if err := st.warmUp(ctx, cfg, loads.warm); err != nil {
		return nil, err
	}
	// 3. Throughput, with CPU read at both ends.
	if err := st.throughput(ctx, cfg, loads, res); err != nil {
		return nil, err
	}
	// 4. Latency under a steady feed, on the same stack.
	if loads.steady != nil {
		if err := st.latency(ctx, cfg, loads.steady, res); err != nil {
			return nil, err
		}
	}
	// 5. Peak memory of every process over the throughput and latency runs.
	res.PeakRSSMB = map[string]float64{}
	for n, pid := range st.pids {
		if v, err := st.procs.peakRSSMB(pid); err == nil {
			res.PeakRSSMB[n] = v
		}
	}
	res.Warnings = append(res.Warnings, overMemoryAim(res.PeakRSSMB)...)
	// 6. The floors, on the same broker, the same ClickHouse and the same
	// records. A floor that fails does not throw away what was measured: the
	// results are written with a warning, and Run returns the error.
	var floorErr error
	if !cfg.SkipFloors {
		floorErr = st.floors(ctx, cfg, loads.work, res)
	}
	res.Machine = describeMachine(ctx, st.conn)
	res.GitCommit, res.GitDirty = gitCommit(ctx, cfg.BinDir)
	path, err := res.write(cfg.OutDir)
	if err != nil {
		return nil, err
	}
	res.printTable(cfg.Stdout)
	cfg.Log.Info("results written", "path", path)
	return res, floorErr
}

// workloads are the records of every phase, generated before anything is
// timed.
type workloads struct {
	work, warm *workload
	steady     *workload // nil with SkipLatency
}

func generateWorkloads(cfg Config) (workloads, error) {
	var w workloads
	ref, err := refdata.LoadDir(cfg.ReferenceDir)
	if err != nil {
		return w, fmt.Errorf("reference data: %w", err)
	}
	trusts := ref.TrustCodes()
	base := synth.Config{Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: trusts}
	t0 := time.Now()
	thr := base
	thr.Seed, thr.Records = throughputSeed, cfg.Records // more activities than needed: the stream is cut at Records items
	if w.work, err = generate(thr, cfg.Records); err != nil {
		return w, fmt.Errorf("generate records: %w", err)
	}
	cfg.Log.Info("generated records", "records", len(w.work.lines), "bytes", w.work.bytes(), "activities", w.work.expect.Activities,
		"rejected", w.work.expect.Rejected, "seconds", time.Since(t0).Round(time.Millisecond).Seconds())

	goodOnly := base
	goodOnly.Providers = trusts[:1]
	goodOnly.BadShare, goodOnly.NationalShare, goodOnly.NationalOnlyShare = -1, -1, -1
	goodOnly.RevisionShare, goodOnly.DeleteShare = -1, -1
	goodOnly.Start, goodOnly.End = latencyStart, latencyEnd
	warmCfg := goodOnly
	warmCfg.Seed, warmCfg.Records = warmupSeed, warmupRecords
	if w.warm, err = generate(warmCfg, warmupRecords); err != nil {
		return w, fmt.Errorf("generate warm-up records: %w", err)
	}
	if !cfg.SkipLatency {
		n := cfg.LatencyRate * cfg.LatencySeconds
		lc := goodOnly
		lc.Seed, lc.Records = latencySeed, n
		if w.steady, err = generate(lc, n); err != nil {
			return w, fmt.Errorf("generate steady-feed records: %w", err)
		}
	}
	return w, nil
}

// benchStack is the stack under measurement and the bench's handles on it.
type benchStack struct {
	st      *devstack.Stack
	varDir  string
	conn    driver.Conn
	status  *statusClients
	client  *ingestClient
	procs   procReader
	pids    map[string]int
	log     *slog.Logger
	cleanup []func()
}

func (b *benchStack) close() {
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
}

// startStack starts a fresh stack (own var directory, own ClickHouse) and
// waits until its services answer and its schema exists.
func startStack(ctx context.Context, cfg Config, res *Result) (_ *benchStack, err error) {
	log := cfg.Log
	b := &benchStack{log: log}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.varDir, err = os.MkdirTemp("", "dmic-bench-"); err != nil {
		return nil, fmt.Errorf("var directory: %w", err)
	}
	if cfg.Keep {
		log.Info("keeping the var directory", "path", b.varDir)
	} else {
		dir := b.varDir
		b.cleanup = append(b.cleanup, func() { os.RemoveAll(dir) })
	}
	chPort, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("a free port for ClickHouse: %w", err)
	}
	logPath := filepath.Join(cfg.OutDir, "services.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("service log: %w", err)
	}
	b.cleanup = append(b.cleanup, func() { logFile.Close() })
	log.Info("starting the stack", "var", b.varDir, "service_log", logPath)
	b.st, err = devstack.Start(ctx, devstack.Config{BinDir: cfg.BinDir, VarDir: b.varDir, ReferenceDir: cfg.ReferenceDir,
		ClickHouseAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(chPort)), Database: database,
		PortBase: cfg.PortBase, Out: logFile, LogLevel: "warn"})
	if err != nil {
		return nil, fmt.Errorf("start the stack (see %s): %w", logPath, err)
	}
	b.cleanup = append(b.cleanup, func() {
		log.Info("stopping the stack")
		b.st.Stop()
	})
	// The bench only reads the stack's database: as the analyst.
	analyst, err := b.st.ClickHouseConfig(chaccess.Analyst)
	if err != nil {
		return nil, err
	}
	if b.conn, err = analyst.Open(ctx); err != nil {
		return nil, err
	}
	b.cleanup = append(b.cleanup, func() { b.conn.Close() })
	creds, err := b.st.PKI.DialOption(devpki.OperatorFile)
	if err != nil {
		return nil, err
	}
	if b.status, err = dialStatus(devstack.ServiceNames, b.st.Ports.GRPC, creds); err != nil {
		return nil, err
	}
	b.cleanup = append(b.cleanup, b.status.close)
	if err := b.status.ready(ctx, time.Minute); err != nil {
		return nil, fmt.Errorf("services not answering: %w", err)
	}
	if err := waitSchema(ctx, b.conn, time.Minute); err != nil {
		return nil, err
	}
	b.client = newIngestClient(b.st.IngestURL(), b.st.PKI, cfg.Workers+8)
	if n, err := rawPartitions(ctx, b.st); err == nil {
		res.Settings.Partitions = n
	}
	b.procs = newProcReader()
	b.pids = map[string]int{"broker": b.st.Procs["broker"].Pid(), "bench-client": os.Getpid()}
	for _, n := range devstack.ServiceNames {
		b.pids[n] = b.st.Procs[n].Pid()
	}
	// "clickhouse-server", not "clickhouse": ingest's and load's command
	// lines name -clickhouse-addr and files under the var directory too, and
	// whichever pid /proc listed first was taken (a run reported ingest's
	// figures as ClickHouse's).
	if pid, err := b.procs.findProcess("clickhouse-server", b.varDir); err == nil && pid > 0 {
		b.pids["clickhouse"] = pid
	} else {
		res.Warnings = append(res.Warnings, "clickhouse-server process not found: its CPU and memory are not reported")
	}
	return b, nil
}

// warmUp sends warm until it is visible: consumer groups joined, ClickHouse
// connections open, code paths hot.
func (b *benchStack) warmUp(ctx context.Context, cfg Config, warm *workload) error {
	if _, _, err := submitAll(ctx, b.client, warm, plan(warm, cfg.SubmissionSize), cfg.Workers); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := waitVisible(ctx, b.conn, visibleWant{rows: warm.rows, activities: warm.expect.Activities}, 2*time.Minute, b.log, nil); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	b.log.Info("warm-up visible", "records", warmupRecords)
	return nil
}

// throughput submits the main workload as fast as the workers go and times
// it until every record is visible, reading each process's CPU at both ends.
func (b *benchStack) throughput(ctx context.Context, cfg Config, loads workloads, res *Result) error {
	work, warm := loads.work, loads.warm
	starts := map[string]int{}
	for n, p := range b.st.Procs {
		starts[n] = p.Starts()
	}
	cpu0 := readCPU(b.procs, b.pids)
	p0, _ := readSamples(b.procs, b.pids)
	m0 := b.scrape(ctx, res)
	chunks := plan(work, cfg.SubmissionSize)
	b.log.Info("throughput run", "records", cfg.Records, "submissions", len(chunks), "workers", cfg.Workers)
	smp := startSampler(ctx, b.status, samplePeriod)
	// A failed submission stops the wait at once.
	waitCtx, stopWait := context.WithCancelCause(ctx)
	defer stopWait(nil)
	var subStart, subEnd time.Time
	runStart := time.Now() // for the timeline; the clock itself starts at the first submission
	subDone := make(chan error, 1)
	go func() {
		var err error
		subStart, subEnd, err = submitAll(ctx, b.client, work, chunks, cfg.Workers)
		if err != nil {
			stopWait(fmt.Errorf("submitting: %w", err))
		}
		subDone <- err
	}()
	want := visibleWant{rows: warm.rows + work.rows, activities: warm.expect.Activities + work.expect.Activities,
		rejected: work.expect.Rejected, client: b.client}
	timeout := 10*time.Minute + time.Duration(cfg.Records)*time.Millisecond
	var rowsSeen [][2]float64
	observe := func(at time.Time, rows uint64) {
		if n := len(rowsSeen); n == 0 || at.Sub(runStart).Seconds()-rowsSeen[n-1][0] >= samplePeriod.Seconds() {
			rowsSeen = append(rowsSeen, [2]float64{roundTenth(at.Sub(runStart).Seconds()), float64(rows)})
		}
	}
	visibleAt, err := waitVisible(waitCtx, b.conn, want, timeout, b.log, observe)
	if err != nil {
		smp.finish(time.Now())
		if ctx.Err() != nil {
			return fmt.Errorf("throughput run interrupted: %w", ctx.Err())
		}
		if c := context.Cause(waitCtx); c != nil {
			err = c
		}
		return fmt.Errorf("throughput run: %w (service statuses: %s)", err, statusLine(ctx, b.status))
	}
	cpu1 := readCPU(b.procs, b.pids)
	p1, perrs := readSamples(b.procs, b.pids)
	for _, err := range perrs {
		res.Warnings = append(res.Warnings, "process counters: "+err.Error())
	}
	m1 := b.scrape(ctx, res)
	if err := <-subDone; err != nil {
		return fmt.Errorf("throughput run: %w", err)
	}
	stages, timeline := smp.finish(runStart)
	timeline["clickhouse_activity_rows"] = rowsSeen
	res.Timeline = timeline
	res.E2ESeconds = visibleAt.Sub(subStart).Seconds()
	res.E2ERecordsPerS = float64(cfg.Records) / res.E2ESeconds
	res.SubmitSeconds = subEnd.Sub(subStart).Seconds()
	res.SubmitRecordsPerS = float64(cfg.Records) / res.SubmitSeconds
	res.Stages, res.StageRecordsPerS = stages, map[string]float64{}
	for n, s := range stages {
		res.StageRecordsPerS[n] = s.RecordsPerSec
	}
	res.cpu(cpu0, cpu1, cfg.Records)
	res.figures(p0, p1, m0, m1, cfg.Records)
	for n, p := range b.st.Procs {
		if p.Starts() != starts[n] || (b.pids[n] != 0 && p.Pid() != b.pids[n]) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s restarted during the run: its CPU and memory numbers are incomplete", n))
		}
	}
	if r := b.client.retries.Load(); r > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d submissions were resent after a failure", r))
	}
	b.log.Info("throughput", "records_per_s", int(res.E2ERecordsPerS), "seconds", res.E2ESeconds)
	return nil
}

// cpu fills the CPU figures from the readings at both ends of the run.
func (res *Result) cpu(cpu0, cpu1 map[string]float64, records int) {
	res.CPUSeconds, res.CPUSecondsPer1k = map[string]float64{}, map[string]float64{}
	for n, c1 := range cpu1 {
		if c0, ok := cpu0[n]; ok {
			res.CPUSeconds[n] = c1 - c0
			res.CPUSecondsPer1k[n] = (c1 - c0) / (float64(records) / 1000)
		}
	}
	var perK float64
	for n, v := range res.CPUSecondsPer1k {
		if n != "bench-client" {
			perK += v
		}
	}
	if perK > 0 {
		res.CPUCeilingPerS = float64(runtime.NumCPU()) * 1000 / perK
	}
}

// latency feeds steady at the configured rate and measures each record's
// time from ingest's answer to queryable.
func (b *benchStack) latency(ctx context.Context, cfg Config, steady *workload, res *Result) error {
	b.log.Info("steady feed", "rate", cfg.LatencyRate, "seconds", cfg.LatencySeconds)
	lf := &latencyFeed{client: b.client, conn: b.conn, database: database, log: b.log, rate: float64(cfg.LatencyRate),
		tick: 50 * time.Millisecond, poll: 100 * time.Millisecond, drain: 2 * time.Minute,
		dateMin: steady.dateMin, dateMax: steady.dateMax}
	var err error
	if res.Latency, err = lf.run(ctx, steady); err != nil {
		return fmt.Errorf("latency run: %w", err)
	}
	if res.Latency.Unseen > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d records of the steady feed never became visible", res.Latency.Unseen))
	}
	b.log.Info("latency", "p50_ms", res.Latency.P50, "p95_ms", res.Latency.P95, "p99_ms", res.Latency.P99, "rate", int(res.Latency.Rate))
	return nil
}

// floors measures the transport and compute floors on the same broker,
// ClickHouse and records; a floor that fails is a warning and the error.
func (b *benchStack) floors(ctx context.Context, cfg Config, work *workload, res *Result) error {
	var floorErr error
	b.log.Info("transport floor")
	// On a broker of its own without authentication: ClickHouse 18.16's
	// Kafka engine has no SASL settings per table, and the stack's broker
	// refuses anonymous clients (TransportFloor). It listens on 127.0.0.1,
	// the address librdkafka inside ClickHouse is given rather than
	// "localhost", which it may resolve to ::1 first and then never consume.
	// Its CPU is the broker's (in this process) and ClickHouse's.
	// Its tables go in the database default: the migrator, the
	// development server's administrator, may make them.
	migrator, err := b.st.ClickHouseConfig(chaccess.Migrator)
	if err != nil {
		return err
	}
	floorPids := map[string]int{"bench-client": os.Getpid(), "clickhouse": b.pids["clickhouse"]}
	t0, _ := readSamples(b.procs, floorPids)
	var tf FloorResult
	fb, err := broker.Start(broker.WithoutAuth(), broker.WithoutTopics())
	if err == nil {
		var fc kafkaconn.Cluster
		if fc, err = fb.Admin(); err == nil {
			tf, err = TransportFloor(ctx, fc, migrator, work.lines, b.log)
		}
		fb.Close()
	}
	if t1, _ := readSamples(b.procs, floorPids); tf.Records > 0 {
		res.TransportFloorCPUPer1k = cpuPer1k(t0, t1, tf.Records)
	}
	if err != nil {
		floorErr = fmt.Errorf("transport floor: %w", err)
		res.Warnings = append(res.Warnings, floorErr.Error())
	}
	b.log.Info("compute floor")
	self := map[string]int{"bench-client": os.Getpid()}
	c0, _ := readSamples(b.procs, self)
	cf, err := ComputeFloor(ctx, work.lines, cfg.ReferenceDir)
	c1, _ := readSamples(b.procs, self)
	if cf.Records > 0 {
		res.ComputeFloorCPUPer1k = cpuPer1k(c0, c1, cf.Records)
	}
	if err != nil {
		err = fmt.Errorf("compute floor: %w", err)
		floorErr = errors.Join(floorErr, err)
		res.Warnings = append(res.Warnings, err.Error())
	}
	res.TransportFloorPerS, res.TransportFloorSecs = tf.RecordsPerSec, tf.Seconds
	res.ComputeFloorPerS, res.ComputeFloorSecs = cf.RecordsPerSec, cf.Seconds
	if tf.RecordsPerSec > 0 {
		res.RatioE2EToTransport = res.E2ERecordsPerS / tf.RecordsPerSec
	}
	if cf.RecordsPerSec > 0 {
		res.RatioE2EToCompute = res.E2ERecordsPerS / cf.RecordsPerSec
	}
	return floorErr
}

// cpuPer1k is the user + system CPU of the processes in s0 and s1 between the
// two readings, per 1,000 of records.
func cpuPer1k(s0, s1 map[string]procSample, records int) float64 {
	var cpu float64
	for n, b := range s1 {
		if a, ok := s0[n]; ok {
			d := b.minus(a)
			cpu += d.UserS + d.SystemS
		}
	}
	return cpu / (float64(records) / 1000)
}

// scrape reads the counters of every service's /metrics, on its operational
// listener (plain HTTP on localhost); a service that does not answer is a
// warning, and its request counts are left out.
func (b *benchStack) scrape(ctx context.Context, res *Result) map[string]metricSample {
	out := map[string]metricSample{}
	for _, n := range devstack.ServiceNames {
		m, err := scrapeMetrics(ctx, fmt.Sprintf("http://localhost:%d/metrics", b.st.Ports.Ops[n]))
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("metrics of %s: %v", n, err))
			continue
		}
		out[n] = m
	}
	return out
}

func readCPU(r procReader, pids map[string]int) map[string]float64 {
	out := map[string]float64{}
	for n, pid := range pids {
		if pid == 0 {
			continue
		}
		if v, err := r.cpuSeconds(pid); err == nil {
			out[n] = v
		}
	}
	return out
}

// rawPartitions is the partition count of the raw topic (every dmic topic has
// the same), which bounds how many consumers of a group can work at once.
func rawPartitions(ctx context.Context, st *devstack.Stack) (int, error) {
	c, err := st.Kafka(topics.Operator)
	if err != nil {
		return 0, err
	}
	conn, err := c.Dial(ctx)
	if err != nil {
		return 0, fmt.Errorf("dial broker: %w", err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topics.Raw)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topics.Raw, err)
	}
	return len(parts), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitSchema waits until load has created the tables and views.
func waitSchema(ctx context.Context, conn driver.Conn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('activity', 'rejections', 'activity_current')", database).Scan(&n)
		if err == nil && n == 3 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ClickHouse schema not created within %s (err %v)", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// visibleWant is what ClickHouse holds when every submitted record is in.
type visibleWant struct {
	rows       int // rows of activity when each good record was loaded once
	activities int // rows of activity_current
	rejected   int // distinct rejected records
	client     *ingestClient
}

// waitVisible polls ClickHouse until every record is visible and returns
// when it was first seen so. Plain count() of the tables is cheap but counts
// replayed rows, so it only says when to run the exact (FINAL) check; the
// time reported is that of the cheap poll the exact check confirmed.
// observe, if not nil, sees every cheap poll's activity row count.
func waitVisible(ctx context.Context, conn driver.Conn, want visibleWant, timeout time.Duration, log *slog.Logger,
	observe func(time.Time, uint64)) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	started := time.Now()
	var lastExact, lastLog time.Time
	for {
		var rows, rejRows uint64
		err := conn.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT count() FROM %[1]s.activity), (SELECT count() FROM %[1]s.rejections)", database)).Scan(&rows, &rejRows)
		seen := time.Now()
		if err != nil && ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		if err == nil && observe != nil {
			observe(seen, rows)
		}
		cheapOK := err == nil && int(rows) >= want.rows && int(rejRows) >= want.rejected
		// The exact check also runs now and then without the cheap one, in
		// case the cheap lower bound is ever wrong.
		fallback := time.Since(started) >= exactCheckFallback && time.Since(lastExact) >= exactCheckFallback
		if (cheapOK && time.Since(lastExact) >= exactCheckEvery) || fallback {
			lastExact = time.Now()
			act, rej, err := exactCounts(ctx, conn)
			if err != nil {
				return time.Time{}, err
			}
			rejOK := rej == want.rejected || (want.client != nil && want.client.retries.Load() > 0 && rej > want.rejected)
			if act == want.activities && rejOK {
				if !cheapOK {
					log.Warn("every record visible although the cheap counts said not yet; the end time is late by up to the fallback period",
						"activity_rows", rows, "want_rows", want.rows, "fallback", exactCheckFallback)
				}
				return seen, nil
			}
			log.Debug("cheap counts reached, exact not yet", "activities", act, "rejected", rej)
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			log.Info("waiting for ClickHouse", "activity_rows", rows, "want_rows", want.rows, "rejection_rows", rejRows, "want_rejected", want.rejected)
		}
		if time.Now().After(deadline) {
			act, rej, _ := exactCounts(ctx, conn)
			return time.Time{}, fmt.Errorf("not every record visible after %s: activity_current %d of %d, rejected records %d of %d",
				timeout, act, want.activities, rej, want.rejected)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(visiblePoll):
		}
	}
}

func exactCounts(ctx context.Context, conn driver.Conn) (activities, rejected int, err error) {
	var a, r uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.activity_current", database)).Scan(&a); err != nil {
		return 0, 0, fmt.Errorf("count activity_current: %w", err)
	}
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT uniqExact(source_topic, source_partition, source_offset) FROM %s.rejections FINAL", database)).Scan(&r); err != nil {
		return 0, 0, fmt.Errorf("count rejected records: %w", err)
	}
	return int(a), int(r), nil
}

// statusLine summarises every service's counters for an error message.
func statusLine(ctx context.Context, c *statusClients) string {
	out := ""
	for i, n := range c.names {
		st, err := c.status(ctx, i)
		if err != nil {
			out += fmt.Sprintf("%s: %v; ", n, err)
			continue
		}
		out += fmt.Sprintf("%s processed=%d rejected=%d lag=%d; ", n, st.GetProcessed(), st.GetRejected(), st.GetConsumerLag())
	}
	return out
}
