// Command validate checks raw records against the data specifications.
package main

import (
	"context"
	"flag"
	"os"
	"time"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/validate"
)

func main() {
	var refDir string
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&refDir, "reference-dir", "reference/sample",
			"Folder of reference data; its GP practices (epraccur.csv) back rule ORG-006. Empty: ORG-006 is not checked.")
	}
	os.Exit(service.Main("validate", os.Args[1:], register, nil, func(ctx context.Context, d *service.Daemon) error {
		v, err := validate.NewValidator(validate.ValidatorConfig{ReferenceDir: refDir, Clock: d.Clock})
		if err != nil {
			return err
		}
		if err := d.WaitForTopics(ctx, validate.Access()); err != nil {
			return err
		}
		w := d.NewWriter()
		defer w.Close()
		specs := validate.NewSpecifications(v, kafkalog.New(d.Kafka, topics.Specifications, w), d.Log)
		validationv1.RegisterSpecificationServiceServer(d.GRPC, specs)
		// Apply the specifications loaded at run time before the first
		// record is validated, and keep following them.
		if err := controllog.CatchUp(ctx, specs.Follow, func(err error) {
			d.Log.Error("following the specification log; retrying", "err", err)
		}); err != nil {
			return err
		}
		return d.RunStage(ctx, service.Stage{
			Access: validate.Access(), MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: validate.New(v, validate.WithMetrics(d.Registry)),
		})
	}))
}
