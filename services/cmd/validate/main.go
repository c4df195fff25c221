// Command validate checks raw records against the data specifications.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/controllog"
	"github.com/dmic-nhs/dmic/services/daemon"
	"github.com/dmic-nhs/dmic/services/refdata"
	"github.com/dmic-nhs/dmic/services/topics"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validation"
)

func main() {
	var refDir string
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&refDir, "reference-dir", "reference/sample",
			"Folder of reference data; its GP practices (epraccur.csv) back rule ORG-006. Empty: ORG-006 is not checked.")
	}
	os.Exit(daemon.Main("validate", os.Args[1:], register, nil, func(ctx context.Context, d *daemon.Daemon) error {
		reg, err := validation.BuiltIn()
		if err != nil {
			return fmt.Errorf("built-in specifications: %w", err)
		}
		var opts []validation.Option
		if refDir != "" {
			ref, err := refdata.LoadDir(refDir)
			if err != nil {
				return fmt.Errorf("-reference-dir: %w", err)
			}
			opts = append(opts, validation.WithPractices(ref))
		}
		v := validation.New(reg, append(opts, validation.WithClock(d.Clock))...)

		if err := d.WaitForTopics(ctx); err != nil {
			return err
		}
		w := d.NewWriter()
		defer w.Close()
		specs := validate.NewSpecifications(v, controllog.New(d.Config.BrokerList(), topics.Specifications, w), d.Log)
		validationv1.RegisterSpecificationServiceServer(d.GRPC, specs)
		if err := followSpecifications(ctx, d, specs); err != nil {
			return err
		}
		return d.RunStage(ctx, daemon.Stage{
			Group: "dmic-validate", Inputs: []string{topics.Raw},
			Outputs:  []string{topics.Validated, topics.Rejected, topics.ValidationOutcomes},
			MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: validate.New(v, validate.WithMetrics(d.Registry)),
		})
	}))
}

// followSpecifications applies the specifications loaded at run time before
// the first record is validated, and keeps following them in the background
// (restarting the follower if the broker drops it) until ctx ends.
func followSpecifications(ctx context.Context, d *daemon.Daemon, specs *validate.Specifications) error {
	caughtUp := controllog.Keep(ctx, specs.Follow, func(err error) {
		d.Log.Error("following the specification log; retrying", "err", err)
	})
	select {
	case <-caughtUp:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
