// Command load writes activity, reconciliation results, rejections,
// validation outcomes and submission receipts to ClickHouse.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/chstore"
	"github.com/dmic-nhs/dmic/services/daemon"
	"github.com/dmic-nhs/dmic/services/load"
	"github.com/dmic-nhs/dmic/services/pipeline"
	"github.com/dmic-nhs/dmic/services/topics"
)

func main() {
	var ch chstore.Config
	register := func(fs *flag.FlagSet) { ch.RegisterFlags(fs) }
	os.Exit(daemon.Main("load", 9106, 9206, os.Args[1:], register, nil, func(ctx context.Context, d *daemon.Daemon) error {
		var conn driver.Conn
		var err error
		for attempt := 1; ; attempt++ {
			conn, err = ch.Open(ctx)
			if err == nil {
				if err = chstore.ApplySchema(ctx, conn, ch.Database); err != nil {
					conn.Close()
				}
			}
			if err == nil || attempt >= 30 || ctx.Err() != nil {
				break
			}
			d.Log.Info("waiting for ClickHouse", "clickhouse", ch.String(), "err", err)
			time.Sleep(2 * time.Second)
		}
		if err != nil {
			return fmt.Errorf("ClickHouse %s: %w", ch, err)
		}
		defer conn.Close()
		w := d.NewWriter()
		defer w.Close()
		return d.RunStage(ctx, daemon.Stage{
			Group: "dmic-load", Inputs: load.Inputs, Outputs: []string{"clickhouse:" + ch.Database, topics.Rejected},
			// Few, large inserts: ClickHouse wants about one per second per table.
			MaxBatch: 50000, BatchWait: time.Second, Processor: load.Processor{},
			Sink: load.Sink{Store: chstore.NewWriter(conn, ch.Database, chstore.WithClock(d.Clock)), Kafka: pipeline.KafkaSink{W: w}},
		})
	}))
}
