// Command load writes activity, reconciliation results, rejections,
// validation outcomes and submission receipts to ClickHouse.
package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
)

func main() {
	// Load writes as dmic_writer, which may insert but not change the
	// schema: `dmicctl migrate` (the migrator) makes and migrates it.
	ch := chstore.Config{User: chaccess.Writer}
	register := func(fs *flag.FlagSet) { ch.RegisterFlags(fs) }
	os.Exit(service.Main("load", os.Args[1:], register, ch.Validate, func(ctx context.Context, d *service.Daemon) error {
		if err := d.WaitForTopics(ctx, load.Access()); err != nil {
			return err
		}
		w := d.NewWriter()
		defer w.Close()
		// ClickHouse may be down at start, or go down later, or hold a schema
		// older than this load (not migrated yet): either way load waits with
		// backoff and says so in its health, and commits nothing it has not
		// written.
		var conn driver.Conn
		inserted := load.InsertMetrics(d.Registry) // once: open may run again after an outage
		open := func(ctx context.Context) (pipeline.Sink, func(), error) {
			var err error
			conn, err = ch.Open(ctx)
			if err != nil {
				return nil, nil, err
			}
			if err := chstore.CheckSchema(ctx, conn, ch.Database); err != nil {
				conn.Close()
				return nil, nil, err
			}
			store := chstore.NewWriter(conn, ch.Database, chstore.WithClock(d.Clock), chstore.WithInsertObserver(inserted))
			return load.Sink{Store: store, Kafka: kafkapipe.Sink{W: w}}, func() { conn.Close() }, nil
		}
		return d.RunStage(ctx, service.Stage{
			Access: load.Access(), Outputs: []string{"clickhouse:" + ch.Database, topics.Rejected},
			// Few, large inserts: ClickHouse wants about one per second per table.
			MaxBatch: 50000, BatchWait: time.Second, Processor: load.Processor{},
			OpenSink: open, SinkName: "clickhouse " + ch.String(),
			Probe: func(ctx context.Context) error { return conn.Ping(ctx) },
		})
	}))
}
