// Command devrun is `make run`: the whole pipeline on one machine with the
// embedded broker, a local ClickHouse and the sample generator feeding it.
// Ctrl-C stops everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/dmic-nhs/dmic/services/devstack"
)

func main() { os.Exit(run()) }

func run() int {
	chAddr := os.Getenv("CLICKHOUSE_ADDR")
	if chAddr == "" {
		chAddr = "localhost:9000"
	}
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	binDir := fs.String("bin", "bin", "Folder of the built binaries.")
	varDir := fs.String("var", "var", "Folder for broker data, ClickHouse data and the dev key.")
	refDir := fs.String("reference-dir", "reference/sample", "Reference data folder.")
	records := fs.Int("records", 2000, "Activities the generator sends first.")
	trickle := fs.Int("trickle", 200, "Activities sent again every -every (0: none).")
	every := fs.Duration("every", 30*time.Second, "Interval of the trickle feed.")
	fs.StringVar(&chAddr, "clickhouse-addr", chAddr, "ClickHouse address (default from CLICKHOUSE_ADDR); started here if nothing answers.")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := devstack.Start(ctx, devstack.Config{BinDir: *binDir, VarDir: *varDir, ReferenceDir: *refDir, ClickHouseAddr: chAddr, Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "make run: %v\n", err)
		return 1
	}
	defer st.Stop()
	if err := st.Run(ctx, "generate", "generate", "-records", strconv.Itoa(*records), "-seed", "1", "-ingest", st.IngestURL(), "-reference-dir", *refDir); err != nil {
		fmt.Fprintf(os.Stderr, "make run: generator: %v\n", err)
	}
	chHost, chPort := splitAddr(st.CHAddr)
	fmt.Printf(`
================================================================================
 dmic is running. Ctrl-C stops everything.

 Broker (Kafka protocol)  %[1]s     kcat -b %[1]s -L
 Ingest HTTP              %[2]s/v1/submissions?dataset=apc
 gRPC control             localhost:9101..9106   grpcurl -plaintext localhost:9102 list
 Status                   bin/dmicctl status
 Metrics                  http://localhost:9202/metrics (validate; 9201..9206, ingest on 8080)
 ClickHouse               %[3]s

 Try:
   clickhouse-client --host %[4]s --port %[5]s --query "SELECT dataset, source, count() FROM dmic.activity_current GROUP BY dataset, source ORDER BY dataset, source"
   clickhouse-client --host %[4]s --port %[5]s --query "SELECT rule_id, count() FROM dmic.rejections FINAL GROUP BY rule_id ORDER BY rule_id"
   clickhouse-client --host %[4]s --port %[5]s --query "SELECT status, count() FROM dmic.reconciliation FINAL GROUP BY status"
================================================================================
`, st.Brokers, st.IngestURL(), st.CHAddr, chHost, chPort)
	if *trickle > 0 {
		go func() {
			for seed := 2; ; seed++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(*every):
				}
				_ = st.Run(ctx, "generate", "generate", "-records", strconv.Itoa(*trickle), "-seed", strconv.Itoa(seed), "-ingest", st.IngestURL(), "-reference-dir", *refDir)
			}
		}()
	}
	<-ctx.Done()
	fmt.Println("\nstopping…")
	return 0
}

func splitAddr(a string) (string, string) {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == ':' {
			return a[:i], a[i+1:]
		}
	}
	return a, "9000"
}
