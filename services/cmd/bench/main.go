// Command bench is `make bench`: it starts a fresh dmic stack, measures
// end-to-end and per-stage throughput, latency under a steady feed, CPU and
// memory per process, and the transport and compute floors on the same
// records, and writes bench/results/latest.json plus a markdown table.
//
//	bin/bench                       # 1,000,000 records (BENCH_RECORDS to change)
//	bin/bench -records 100000 -latency-seconds 20
//
// See docs/performance.md.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/dmic-nhs/dmic/services/tools/bench"
)

func main() { os.Exit(run()) }

func run() int {
	records := 1_000_000
	if v := os.Getenv("BENCH_RECORDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			slog.Error("BENCH_RECORDS must be a positive integer", "value", v)
			return 2
		}
		records = n
	}
	var cfg bench.Config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&cfg.Records, "records", records, "Records to submit in the throughput run (default from BENCH_RECORDS).")
	fs.IntVar(&cfg.LatencyRate, "latency-rate", 2000, "Records/s of the steady feed.")
	fs.IntVar(&cfg.LatencySeconds, "latency-seconds", 60, "Duration of the steady feed.")
	fs.BoolVar(&cfg.SkipLatency, "skip-latency", false, "Skip the steady-feed latency run.")
	fs.BoolVar(&cfg.SkipFloors, "skip-floors", false, "Skip the transport and compute floors.")
	fs.StringVar(&cfg.OutDir, "out", "bench/results", "Folder for latest.json, the dated copy and services.log.")
	fs.StringVar(&cfg.BinDir, "bin", "bin", "Folder of the built binaries.")
	fs.StringVar(&cfg.ReferenceDir, "reference-dir", "reference/sample", "Reference data for the services and the generator.")
	fs.IntVar(&cfg.PortBase, "port-base", 2000, "Added to every default port, so the run does not clash with `make run`.")
	fs.BoolVar(&cfg.Keep, "keep", false, "Keep the stack's var directory (broker and ClickHouse data and logs).")
	fs.IntVar(&cfg.Workers, "workers", 4, "Concurrent submissions in the throughput run.")
	fs.IntVar(&cfg.SubmissionSize, "submission-size", 5000, "Most records per submission.")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", "bench")
	cfg.Stdout = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first Ctrl-C the harness stops the stack in order; a
		// second one kills the harness at once.
		<-ctx.Done()
		stop()
	}()
	if _, err := bench.Run(ctx, cfg); err != nil {
		cfg.Log.Error("benchmark failed", "err", err)
		return 1
	}
	return 0
}
