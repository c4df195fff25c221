// Command deidentify replaces patient identifiers with pseudonyms and derived
// items. It is the only service that holds the pseudonymisation keys, and it
// serves their rotation (dmic.deid.v1.KeyService) on its gRPC port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	deidv1 "github.com/dmic-nhs/dmic/proto/dmic/deid/v1"
	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

func main() {
	var keyDir, keyFile, refDir string
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&keyDir, "key-dir", "", "Pseudonymisation key directory: <dir>/<domain>/<version>.key for the domains analytics and national-return (mode 0700 folders, 0600 files; docs/deidentification.md). Required.")
		// Kept only to explain its removal to whoever still passes it.
		fs.StringVar(&keyFile, "key-file", "", "Removed: use -key-dir (a single key file held only the analytics domain).")
		fs.StringVar(&refDir, "reference-dir", "reference/sample", "Folder of reference data (ODS practices, ONS postcode directory, sub-ICB lookup).")
	}
	validateCfg := func() error {
		var errs []error
		if keyFile != "" {
			errs = append(errs, errors.New("-key-file: removed; put the key in a key directory, <dir>/analytics/<version>.key, add a national-return key, and pass -key-dir <dir> (docs/deidentification.md)"))
		}
		if keyDir == "" {
			errs = append(errs, errors.New("-key-dir: required"))
		}
		if refDir == "" {
			errs = append(errs, errors.New("-reference-dir: required"))
		}
		return errors.Join(errs...)
	}
	os.Exit(service.Main("deidentify", os.Args[1:], register, validateCfg, func(ctx context.Context, d *service.Daemon) error {
		ring, err := didi.LoadKeyDir(keyDir)
		if err != nil {
			return fmt.Errorf("pseudonymisation keys: %w", err)
		}
		ref, err := refdata.LoadDir(refDir)
		if err != nil {
			return fmt.Errorf("reference data: %w", err)
		}
		if err := d.WaitForTopics(ctx, deidentify.Access()); err != nil {
			return err
		}
		w := d.NewWriter()
		defer w.Close()
		keys := deidentify.NewKeyService(ring,
			kafkalog.New(d.Kafka, topics.KeyRotations, w),
			deidentify.NewReplayer(kafkapipe.RangeOpener(d.Kafka), kafkapipe.Sink{W: w}, ref, d.Log),
			d.Log, deidentify.WithClock(d.Clock))
		deidv1.RegisterKeyServiceServer(d.GRPC, keys)

		// Apply the rotations on the log before the first record, and stop
		// the stage if one cannot be applied later; retry a dropped reader.
		ctx, stop := context.WithCancelCause(ctx)
		defer stop(nil)
		if err := controllog.CatchUp(ctx, keys.FollowLog, func(err error) {
			if errors.Is(err, deidentify.ErrRotationNotApplied) {
				stop(err)
				return
			}
			d.Log.Error("following the key-rotation log; retrying", "err", err)
		}); err != nil {
			return err
		}
		for _, k := range keys.KeyRing().Keys() {
			d.Log.Info("pseudonymisation key loaded", "domain", k.Domain, "key_version", k.Version, "active", k.Active, "file", k.File)
		}
		err = d.RunStage(ctx, service.Stage{
			Access: deidentify.Access(), MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: deidentify.New(didi.NewDeidentifier(keys, ref)),
		})
		if cause := context.Cause(ctx); errors.Is(cause, deidentify.ErrRotationNotApplied) {
			return cause
		}
		return err
	}))
}
