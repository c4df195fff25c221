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

// Memory (docs/performance.md, Memory). The state store's cache and
// memtables (24 MiB, outside the Go heap) are reserved from the service's
// memory limit (-memory-limit, default 96 MiB), which leaves the Go runtime
// 72 MiB; with the binary's own pages (about 26 MB), reconcile's resident
// memory stays near 140 MB at any size of state. maxBatch is half the other
// stages': the batch and its outputs are most of what is live, so the
// collector, working against the limit, runs half as often (a million
// records: 22 s of CPU rather than 30).
const maxBatch = 5000

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
		if err := d.ReserveMemory("the state store", reconcile.StoreMemoryBytes); err != nil {
			return err
		}
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
			MaxBatch: maxBatch, BatchWait: 100 * time.Millisecond, Processor: st,
		})
	}))
}
