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
	var batch int
	var wait time.Duration
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&chAddr, "clickhouse-addr", chAddr, "ClickHouse native protocol address (default from CLICKHOUSE_ADDR).")
		fs.StringVar(&database, "clickhouse-database", "dmic", "ClickHouse database.")
		fs.IntVar(&batch, "batch", 50000, "Most rows per insert.")
		fs.DurationVar(&wait, "batch-wait", time.Second, "Longest wait for a batch to fill.")
	}
	validateCfg := func() error {
		if batch < 1 || wait <= 0 {
			return fmt.Errorf("-batch and -batch-wait must be positive")
		}
		return nil
	}
	os.Exit(daemon.Main("load", 9106, 9206, os.Args[1:], register, validateCfg, func(ctx context.Context, d *daemon.Daemon) error {
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
			MaxBatch: batch, BatchWait: wait, Processor: load.Processor{},
			Sink: load.Sink{Store: chstore.NewWriter(conn, database), Kafka: pipeline.KafkaSink{W: w}},
		})
	}))
}
