// Command load writes activity, reconciliation results and rejections to ClickHouse.
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
	chAddr := os.Getenv("CLICKHOUSE_ADDR")
	if chAddr == "" {
		chAddr = "localhost:9000"
	}
	var database string
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&chAddr, "clickhouse-addr", chAddr, "ClickHouse native protocol address (default from CLICKHOUSE_ADDR).")
		fs.StringVar(&database, "clickhouse-database", "dmic", "ClickHouse database.")
	}
	os.Exit(daemon.Main("load", 9106, 9206, os.Args[1:], register, nil, func(ctx context.Context, d *daemon.Daemon) error {
		var conn driver.Conn
		var err error
		for attempt := 1; ; attempt++ {
			conn, err = chstore.Open(ctx, chAddr, database)
			if err == nil {
				err = chstore.ApplySchema(ctx, conn, database)
			}
			if err == nil || attempt >= 30 || ctx.Err() != nil {
				break
			}
			d.Log.Info("waiting for ClickHouse", "addr", chAddr, "err", err)
			time.Sleep(2 * time.Second)
		}
		if err != nil {
			return fmt.Errorf("ClickHouse at %s: %w", chAddr, err)
		}
		defer conn.Close()
		w := d.NewWriter()
		defer w.Close()
		return d.RunStage(ctx, daemon.Stage{
			Group: "dmic-load", Inputs: load.Inputs, Outputs: []string{"clickhouse:" + database, topics.Rejected},
			// Few, large inserts: ClickHouse wants about one per second per table.
			MaxBatch: 50000, BatchWait: time.Second, Processor: load.Processor{},
			Sink: load.Sink{Store: chstore.NewWriter(conn, database), Kafka: pipeline.KafkaSink{W: w}},
		})
	}))
}
