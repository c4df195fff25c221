// Command ingest takes submissions over HTTP and gRPC and writes them to the
// raw topic, and answers each submission's validation report.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/control"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

func main() {
	// Reports are read from ClickHouse, as dmic_reader (read-only): ingest
	// faces the providers, so it holds no password that can write. Submissions
	// never need ClickHouse.
	ch := chstore.Config{User: chaccess.Reader}
	var spoolDir string
	var abandonAfter time.Duration
	lim := ingest.DefaultLimits()
	register := func(fs *flag.FlagSet) {
		ch.RegisterFlags(fs)
		lim.RegisterFlags(fs)
		fs.StringVar(&spoolDir, "spool-dir", os.TempDir(),
			"Folder where a submission larger than 16 MiB is kept while it is received (an unlinked file: it holds patient data and never outlives the process).")
		fs.DurationVar(&abandonAfter, "submission-abandon-after", ingest.DefaultAbandonAfter,
			"How long an attempt to store a submission may go without ending (ingest stopped mid-way) before it is abandoned.")
	}
	validate := func() error {
		errs := []error{ch.Validate(), lim.Validate()}
		if abandonAfter < time.Second {
			errs = append(errs, fmt.Errorf("-submission-abandon-after: %v is less than a second", abandonAfter))
		}
		if fi, err := os.Stat(spoolDir); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("-spool-dir: %q is not a folder", spoolDir))
		}
		return errors.Join(errs...)
	}
	os.Exit(service.Main("ingest", os.Args[1:], register, validate, func(ctx context.Context, d *service.Daemon) error {
		if err := d.WaitForTopics(ctx, ingest.Access()); err != nil {
			return err
		}
		w := d.NewWriter()
		defer w.Close()
		attempts := ingest.NewAttempts(kafkalog.New(d.Kafka, topics.SubmissionAttempts, w), d.Log)
		svc := ingest.New(w, attempts, d.Log, d.Registry, ingest.WithClock(d.Clock),
			ingest.WithSpool(spoolDir, ingest.DefaultSpoolMemory), ingest.WithAbandonAfter(abandonAfter), ingest.WithLimits(lim))
		svc.RegisterHTTP(d.HTTP)
		dmicv1.RegisterIngestServiceServer(d.GRPC, svc)

		src := chstore.NewReports(ch)
		defer src.Close()
		reports := ingest.NewReports(src, d.Log)
		reports.RegisterHTTP(d.HTTP)
		validationv1.RegisterSubmissionReportServiceServer(d.GRPC, reports)

		info := control.Info{OutputTopics: ingest.Access().Write()}
		// Run follows the attempt log, which every submission waits to read
		// its own start back from, and abandons attempts that never ended.
		return d.Serve(ctx, info, svc, nil, svc.Run)
	}))
}
