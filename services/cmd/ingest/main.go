// Command ingest takes submissions over HTTP and gRPC and writes them to the
// raw topic, and answers each submission's validation report.
package main

import (
	"context"
	"flag"
	"os"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/chstore"
	"github.com/dmic-nhs/dmic/services/control"
	"github.com/dmic-nhs/dmic/services/daemon"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/topics"
)

func main() {
	// Reports are read from ClickHouse; submissions never need it.
	var ch chstore.Config
	register := func(fs *flag.FlagSet) { ch.RegisterFlags(fs) }
	os.Exit(daemon.Main("ingest", 9101, 8080, os.Args[1:], register, nil, func(ctx context.Context, d *daemon.Daemon) error {
		if err := d.WaitForTopics(ctx); err != nil {
			return err
		}
		w := d.NewWriter()
		defer w.Close()
		svc := ingest.New(w, d.Log, d.Registry, ingest.WithClock(d.Clock))
		svc.RegisterHTTP(d.HTTP)
		dmicv1.RegisterIngestServiceServer(d.GRPC, svc)

		src := chstore.NewReports(ch)
		defer src.Close()
		reports := ingest.NewReports(src, d.Log)
		reports.RegisterHTTP(d.HTTP)
		validationv1.RegisterSubmissionReportServiceServer(d.GRPC, reports)

		info := control.Info{OutputTopics: []string{topics.Raw, topics.Rejected, topics.ValidationOutcomes, topics.Submissions}}
		return d.Serve(ctx, info, svc, nil, func(ctx context.Context) error { <-ctx.Done(); return nil })
	}))
}
