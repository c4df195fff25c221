// Command devrun is `make run`: the whole pipeline on one machine with the
// embedded broker, a local ClickHouse and the sample generator feeding it.
// Ctrl-C stops everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/ports"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	binDir := fs.String("bin", "bin", "Folder of the built binaries.")
	varDir := fs.String("var", "var", "Folder for broker data, ClickHouse data, the dev keys and the dev certificates (pki/).")
	refDir := fs.String("reference-dir", "reference/sample", "Reference data folder.")
	records := fs.Int("records", 2000, "Activities the generator sends first (0: no sample feed at all, a quiet stack).")
	portBase := fs.Int("port-base", 0, "Shift every port by this much (broker 9092+N, ingest 8080+N, …), so that a second stack runs beside the first; see the port table in services/internal/ports.")
	database := fs.String("clickhouse-database", "dmic", "ClickHouse database (use another one for a second stack on the same server).")
	trickle := fs.Int("trickle", 200, "Activities sent again every -every (0: none).")
	every := fs.Duration("every", 30*time.Second, "Interval of the trickle feed.")
	chAddr := fs.String("clickhouse-addr", os.Getenv("CLICKHOUSE_ADDR"),
		"ClickHouse address (default from CLICKHOUSE_ADDR, else localhost:9000 shifted by -port-base); started here if nothing answers.")
	chSecrets := fs.String("clickhouse-secrets", os.Getenv("DMIC_CLICKHOUSE_SECRETS"),
		"Folder of the password files of dmic's ClickHouse users (one per user, named after it) on a server at -clickhouse-addr that was not started here (default from DMIC_CLICKHOUSE_SECRETS). A server started here keeps its own under -var.")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	var problems []string
	if *records < 0 || *trickle < 0 {
		problems = append(problems, "-records and -trickle: must not be negative")
	}
	if *portBase < 0 || *portBase > 50000 {
		problems = append(problems, "-port-base: must be 0 to 50000")
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "make run:", strings.Join(problems, "; "))
		return 2
	}
	if *chAddr == "" {
		// Each stack its own server (and so its own users' passwords): a second
		// stack beside the first does not need the first one's passwords.
		*chAddr = "localhost:" + strconv.Itoa(ports.For(*portBase).ClickHouse)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := devstack.Start(ctx, devstack.Config{BinDir: *binDir, VarDir: *varDir, ReferenceDir: *refDir, ClickHouseAddr: *chAddr,
		ClickHouseSecrets: *chSecrets, Database: *database, PortBase: *portBase, Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "make run: %v\n", err)
		if errors.Is(err, chserver.ErrNoSecrets) {
			fmt.Fprintf(os.Stderr, "make run: set DMIC_CLICKHOUSE_SECRETS (or -clickhouse-secrets) to the folder of its users' password files, "+
				"one per user named after it (another stack's var/clickhouse/secrets), or unset CLICKHOUSE_ADDR for a ClickHouse of this stack's own\n")
		}
		return 1
	}
	defer st.Stop()
	// Before the sample records: a recipient's data is kept current from
	// the records loaded after its agreement is in force.
	recipient := loadAgreements(ctx, st, *database)
	if *records > 0 {
		if err := st.Run(ctx, "generate", "generate", "-records", strconv.Itoa(*records), "-seed", "1", "-ingest", st.IngestURL(), "-pki", st.PKI.Path, "-reference-dir", *refDir); err != nil {
			fmt.Fprintf(os.Stderr, "make run: generator: %v\n", err)
		}
	}
	p := st.Ports
	analyst := relPath(st.ClientConfig(chaccess.Analyst))
	// dmicctl's ClickHouse flags, where they differ from its defaults.
	dq := "DMIC_CLICKHOUSE_PASSWORD_FILE=" + relPath(st.CH.PasswordFile(chaccess.Analyst)) + " bin/dmicctl dq"
	if st.CH.Addr != chstore.DefaultAddr {
		dq += " -clickhouse-addr " + st.CH.Addr
	}
	if *database != chstore.DefaultDatabase {
		dq += " -clickhouse-database " + *database
	}
	// The same reads, of the security audit trail.
	auditCmd := strings.Replace(dq, " bin/dmicctl dq", " bin/dmicctl audit", 1)
	ctl := ""
	if *portBase != 0 {
		ctl = " -services " + st.ControlAddrs()
	}
	// dmicctl finds var/pki by itself when run from the repository with
	// the default -var; otherwise it is told.
	if rel := relPath(st.PKI.Path); rel != "var/pki" {
		ctl += " -pki " + rel
	}
	pki := relPath(st.PKI.Path)
	provider := firstProvider(pki)
	fmt.Printf(`
================================================================================
 dmic is running. Ctrl-C stops everything. Every door is TLS with client
 certificates; development ones are in %[15]s (docs/security.md).

 Broker (Kafka protocol)  %[1]s     kcat -b %[1]s -F %[17]s -L
                          (SASL/SCRAM as dmic-operator; every principal's password is in %[18]s)
 Ingest HTTPS             %[2]s/v1/submissions?dataset=apc
 gRPC (TLS)               localhost:%[6]d..%[7]d
 Status                   bin/dmicctl%[9]s status
 Metrics, health, pprof   http://localhost:%[10]d/metrics (validate; %[11]d..%[12]d, ingest on %[13]d)
 ClickHouse               %[3]s, database %[14]s; no default user: passwords in %[4]s
                          (analyst reads; %[5]s is the administrator: %[19]s)

 Try:
   curl --cacert %[15]s/ca.crt --cert %[15]s/provider-%[16]s.crt --key %[15]s/provider-%[16]s.key \
        -H 'Content-Type: application/x-ndjson' --data-binary @episodes.ndjson '%[2]s/v1/submissions?dataset=apc'
   grpcurl -cacert %[15]s/ca.crt -cert %[15]s/operator.crt -key %[15]s/operator.key localhost:%[8]d dmic.v1.ControlService/GetStatus
 As the read-only analyst (the client config holds the password, so no command line shows it):
   clickhouse-client --config-file %[20]s --query "SELECT dataset, source, count() FROM %[14]s.activity_current GROUP BY dataset, source ORDER BY dataset, source"
   clickhouse-client --config-file %[20]s --query "SELECT rule_id, count() FROM %[14]s.rejections FINAL GROUP BY rule_id ORDER BY rule_id"
   clickhouse-client --config-file %[20]s --query "SELECT status, count() FROM %[14]s.reconciliation FINAL GROUP BY status"
   %[21]s
   %[23]s   # the audit trail: refusals and changes, and who
 Commissioner assignment (docs/commissioner-assignment.md):
   bin/dmicctl%[9]s explain "$(clickhouse-client --config-file %[20]s --query "SELECT any(record_key) FROM %[14]s.activity_current WHERE cam_step = 'C-6'")"
   bin/dmicctl%[9]s cam rerun -from 2025-04-01 -to 2026-03-31 -version 2024/25   # 2025/26 under 2024/25's rules, into %[14]s.cam_rerun
%[22]s================================================================================
`, st.Brokers, st.IngestURL(), st.CH.Addr, relPath(st.CH.Secrets), chaccess.Migrator, p.GRPC["ingest"], p.GRPC["load"], p.GRPC["validate"], ctl,
		p.Ops["validate"], p.Ops["validate"], p.Ops["load"], p.Ops["ingest"], *database, pki, provider,
		relPath(broker.KcatConfigFile(st.KafkaCredentials)), relPath(st.KafkaCredentials),
		"clickhouse-client --config-file "+relPath(st.ClientConfig(chaccess.Migrator)), analyst, dq, recipient, auditCmd)
	if *trickle > 0 && *records > 0 {
		go func() {
			for seed := 2; ; seed++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(*every):
				}
				_ = st.Run(ctx, "generate", "generate", "-records", strconv.Itoa(*trickle), "-seed", strconv.Itoa(seed), "-ingest", st.IngestURL(), "-pki", st.PKI.Path, "-reference-dir", *refDir)
			}
		}()
	}
	<-ctx.Done()
	fmt.Println("\nstopping…")
	return 0
}

// relPath is path relative to the working directory when it is below it
// (make run's var/...), so that the banner's commands are short.
func relPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// firstProvider is a provider with a certificate in the PKI, for the banner.
func firstProvider(pki string) string {
	certs, _ := filepath.Glob(filepath.Join(pki, "provider-*.crt"))
	if len(certs) == 0 {
		return "<ODS>"
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(certs[0]), "provider-"), ".crt")
}

// exampleAgreements are the data sharing agreements make run loads
// (docs/data-access.md), and the recipient whose credentials it prints.
var exampleAgreements = []string{"deploy/agreements/qwe.json", "deploy/agreements/qoq.json"}

// loadAgreements creates the example recipients' pseudonym keys (as the key
// custodian) and loads their agreements (as the operator), and returns the
// banner's lines for one recipient: its clickhouse-client configuration (the
// password is in the file, never on a command line) and a query to try.
func loadAgreements(ctx context.Context, st *devstack.Stack, database string) string {
	if st.CH.UsersDir == "" {
		return ""
	}
	dmicctl := []string{"-services", st.ControlAddrs(), "-pki", st.PKI.Path}
	for _, d := range []string{"recipient-qwe", "recipient-qoq"} {
		// Already there after the first run: dmicctl says so, and that is fine.
		_ = st.Run(ctx, "dmicctl", "dmicctl", append(slices.Clone(dmicctl), "dsa", "key", d, "dev-1")...)
	}
	if err := st.Run(ctx, "dmicctl", "dmicctl", append(append(slices.Clone(dmicctl), "dsa", "load"), exampleAgreements...)...); err != nil {
		fmt.Fprintf(os.Stderr, "make run: example agreements: %v\n", err)
		return ""
	}
	user := database + "_r_dsa_qwe_commissioning"
	cfgFile := relPath(filepath.Join(st.RecipientsDir(), user+".xml"))
	return fmt.Sprintf(` As QWE (NHS South West London ICB), under its data sharing agreement (docs/data-access.md):
   clickhouse-client --config-file %[1]s --query "SELECT dataset, commissioner_code, count(), uniqExact(pseudo_nhs_number) FROM activity GROUP BY dataset, commissioner_code ORDER BY dataset, commissioner_code"
   clickhouse-client --config-file %[1]s --query "SELECT * FROM activity_summary ORDER BY month, dataset, commissioner_code"
   bin/dmicctl dsa list && bin/dmicctl access report
`, cfgFile)
}
