// Command validate checks raw records against the data specification.
package main

import (
	"context"
	"os"
	"time"

	"github.com/dmic-nhs/dmic/services/daemon"
	"github.com/dmic-nhs/dmic/services/topics"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validation"
)

func main() {
	os.Exit(daemon.Main("validate", 9102, 9202, os.Args[1:], nil, nil, func(ctx context.Context, d *daemon.Daemon) error {
		return d.RunStage(ctx, daemon.Stage{
			Group: "dmic-validate", Inputs: []string{topics.Raw}, Outputs: []string{topics.Validated, topics.Rejected},
			MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: validate.New(validation.New()),
		})
	}))
}
