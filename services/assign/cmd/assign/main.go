// Command assign gives each record its responsible commissioner by the
// Commissioner Assignment Method, and explains and re-runs assignments of
// stored activity (dmic.assignment.v1.AssignmentService on its gRPC port).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	"github.com/dmic-nhs/dmic/services/assign"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/service"
)

func main() {
	var refDir string
	// Explanations and re-runs read the activity table as dmic_reader
	// (read-only): assign never writes ClickHouse; a re-run's rows go to
	// Kafka and load writes them. Assigning records needs no ClickHouse: the
	// connection is made on the first call.
	ch := chstore.Config{User: chaccess.Reader}
	register := func(fs *flag.FlagSet) {
		fs.StringVar(&refDir, "reference-dir", "reference/sample", "Folder of reference data (ODS practices, trusts, postcodes, sub-ICBs).")
		ch.RegisterFlags(fs)
	}
	os.Exit(service.Main("assign", os.Args[1:], register, ch.Validate, func(ctx context.Context, d *service.Daemon) error {
		ref, err := refdata.LoadDir(refDir)
		if err != nil {
			return fmt.Errorf("reference data: %w", err)
		}
		a := cam.NewAssigner(ref)
		store := chstore.NewActivityReader(ch)
		defer store.Close()
		w := d.NewWriter()
		defer w.Close()
		assignmentv1.RegisterAssignmentServiceServer(d.GRPC, assign.NewService(a, store, kafkapipe.Sink{W: w}, d.Clock, d.Log))
		return d.RunStage(ctx, service.Stage{
			Access: assign.Access(), MaxBatch: 10000, BatchWait: 100 * time.Millisecond, Processor: assign.New(a),
		})
	}))
}
