// Command deidentify replaces patient identifiers with pseudonyms and derived
// items. It is the only service that holds the pseudonymisation key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/dmic-nhs/dmic/services/daemon"
	"github.com/dmic-nhs/dmic/services/deid"
	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/refdata"
	"github.com/dmic-nhs/dmic/services/topics"
)

func main() {
	var keyFile, refDir string
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&keyFile, "key-file", "", "Pseudonymisation key file (\"<version>:<base64 secret>\", mode 0600). Empty: the DMIC_PSEUDONYM_KEY environment variable.")
		fs.StringVar(&refDir, "reference-dir", "reference/sample", "Folder of reference data (ODS practices, ONS postcode directory, sub-ICB lookup).")
	}
	validateCfg := func() error {
		if refDir == "" {
			return errors.New("-reference-dir: required")
		}
		return nil
	}
	os.Exit(daemon.Main("deidentify", 9103, 9203, os.Args[1:], register, validateCfg, func(ctx context.Context, d *daemon.Daemon) error {
		key, err := deid.LoadKey(keyFile)
		if err != nil {
			return fmt.Errorf("pseudonymisation key: %w", err)
		}
		ref, err := refdata.LoadDir(refDir)
		if err != nil {
			return fmt.Errorf("reference data: %w", err)
		}
		d.Log.Info("key loaded", "key_version", key.Version)
		return d.RunStage(ctx, daemon.Stage{
			Group: "dmic-deidentify", Inputs: []string{topics.Validated}, Outputs: []string{topics.Deidentified, topics.Rejected},
			MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: deidentify.New(deid.NewDeidentifier(key, ref)),
		})
	}))
}
