// Command reconcile matches local records with their national copies.
package main

import (
	"context"
	"os"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/reconcile"
)

func main() {
	os.Exit(service.Main("reconcile", os.Args[1:], nil, nil, func(ctx context.Context, d *service.Daemon) error {
		if err := d.WaitForTopics(ctx, reconcile.Access()); err != nil {
			return err
		}
		st := reconcile.NewStage()
		if err := st.Restore(ctx, kafkapipe.AllReader(d.Kafka), d.Log); err != nil {
			return err
		}
		return d.RunStage(ctx, service.Stage{
			Access: reconcile.Access(),
			// Its changelog is an output too (status shows it).
			Outputs:  []string{topics.Reconciled, topics.NationalReturn, topics.ReconcileState, topics.Rejected},
			MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: st,
		})
	}))
}
