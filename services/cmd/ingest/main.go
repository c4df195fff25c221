// Command ingest takes submissions over HTTP and gRPC and writes them to the raw topic.
package main

import (
	"context"
	"os"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/control"
	"github.com/dmic-nhs/dmic/services/daemon"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/topics"
)

func main() {
	os.Exit(daemon.Main("ingest", 9101, 8080, os.Args[1:], nil, nil, func(ctx context.Context, d *daemon.Daemon) error {
		if err := d.WaitForTopics(ctx); err != nil {
			return err
		}
		w := d.NewWriter()
		defer w.Close()
		svc := ingest.New(w, d.Log, d.Registry)
		svc.RegisterHTTP(d.HTTP)
		dmicv1.RegisterIngestServiceServer(d.GRPC, svc)
		info := control.Info{OutputTopics: []string{topics.Raw, topics.Rejected}}
		return d.Serve(ctx, info, svc, nil, func(ctx context.Context) error { <-ctx.Done(); return nil })
	}))
}
