// Command reconcile matches local records with their national copies.
package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/reconcile"
)

func main() {
	var stateDir string
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&stateDir, "state-dir", filepath.Join(os.TempDir(), "dmic-reconcile-state"),
			"Folder of this instance's state store (one per instance; rebuilt from the changelog if lost or of another changelog). "+
				"On a persistent volume, a restart reads only what it missed.")
	}
	validate := func() error {
		if stateDir == "" {
			return errors.New("-state-dir: required")
		}
		return nil
	}
	os.Exit(service.Main("reconcile", os.Args[1:], register, validate, func(ctx context.Context, d *service.Daemon) (err error) {
		if err := d.WaitForTopics(ctx, reconcile.Access()); err != nil {
			return err
		}
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return err
		}
		st, err := reconcile.NewStage(reconcile.Config{Dir: stateDir, Changelog: kafkapipe.PartitionLog(d.Kafka), Log: d.Log, Metrics: d.Registry})
		if err != nil {
			return err
		}
		// After the runner has stopped: the store is the runner's alone.
		defer func() { err = errors.Join(err, st.Close()) }()
		d.Log.Info("state store open", "dir", stateDir)
		return d.RunStage(ctx, service.Stage{
			Access: reconcile.Access(),
			// Its changelog is an output too (status shows it).
			Outputs:  []string{topics.Reconciled, topics.NationalReturn, topics.ReconcileState, topics.Rejected},
			MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: st,
		})
	}))
}
