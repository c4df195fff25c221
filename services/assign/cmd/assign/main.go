// Command assign gives each record its responsible commissioner by the
// Commissioner Assignment Method.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/dmic-nhs/dmic/services/assign"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/service"
)

func main() {
	var refDir string
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&refDir, "reference-dir", "reference/sample", "Folder of reference data (ODS practices, trusts, postcodes, sub-ICBs).")
	}
	os.Exit(service.Main("assign", os.Args[1:], register, nil, func(ctx context.Context, d *service.Daemon) error {
		ref, err := refdata.LoadDir(refDir)
		if err != nil {
			return fmt.Errorf("reference data: %w", err)
		}
		return d.RunStage(ctx, service.Stage{
			Access: assign.Access(), MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: assign.New(cam.NewAssigner(ref)),
		})
	}))
}
