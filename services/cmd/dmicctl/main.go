// Command dmicctl shows the status of every dmic service and pauses or
// resumes one, over each service's gRPC control API; manages the data
// specifications on validate and the pseudonymisation keys on deidentify;
// explains a record's commissioner assignment and re-runs a period under
// another CAM version on assign;
// shows the data-quality summary, the small-numbers check and the security
// audit trail from ClickHouse; and creates or migrates the ClickHouse schema.
//
//	dmicctl status
//	dmicctl pause validate
//	dmicctl resume validate
//	dmicctl dq [-provider RJ7] [-dataset apc] [-source provider] [-months 3] [-rules]
//	dmicctl small-numbers [-k 5] [-provider RJ7] [-dataset apc] [-source provider] [-months 3]
//	dmicctl audit [-since 24h] [-outcome refused|allowed|done|failed] [-org 0DC] [-action Pause] [-limit 50]
//	dmicctl migrate [-clickhouse-addr ADDR] [-clickhouse-database DB]
//	dmicctl spec list | spec show ID [VERSION] | spec get ID [VERSION] | spec load [--allow-backdated --reason TEXT] FILE
//	dmicctl key list | key rotate DOMAIN VERSION [-generate] | key repseudonymise FROM TO
//	dmicctl explain RECORD_KEY
//	dmicctl cam rerun -from YYYY-MM-DD -to YYYY-MM-DD -version 2024/25 [-label TEXT]
//	dmicctl skip SERVICE TOPIC/PARTITION@OFFSET -reason TEXT
//	dmicctl replay SERVICE TOPIC/PARTITION@OFFSET -reason TEXT
//	dmicctl kafka-setup [-brokers ADDRS] [-passwords-dir DIR] [-kafka-sasl-password-file F] [-kafka-tls-ca F] | kafka-setup -print
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/ports"
)

// defaultServices are the control addresses `make run` uses (the port
// table's defaults).
var defaultServices = ports.For(0).ControlAddrs("localhost")

type endpoint struct{ name, addr string }

func main() { os.Exit(run(os.Args[1:])) }

func usage(fs *flag.FlagSet) {
	fmt.Fprintf(os.Stderr, "usage: dmicctl [-services name=addr,...] [-timeout d] status | pause SERVICE | resume SERVICE\n"+
		"       dmicctl [-services ...] spec list | spec show ID [VERSION] | spec get ID [VERSION] | spec load [--allow-backdated --reason TEXT] FILE\n"+
		"       dmicctl [-services ...] key list | key rotate DOMAIN VERSION [-generate] | key repseudonymise FROM TO\n"+
		"       dmicctl [-services ...] dsa list | dsa show ID [VERSION] | dsa load FILE... | dsa revoke ID -reason TEXT | dsa key DOMAIN [VERSION] | access report\n"+
		"       dmicctl [-services ...] explain RECORD_KEY | cam rerun -from YYYY-MM-DD -to YYYY-MM-DD -version 2024/25 [-label TEXT]\n"+
		"       dmicctl [-services ...] skip | replay SERVICE TOPIC/PARTITION@OFFSET -reason TEXT\n"+
		"       dmicctl [-timeout d] dq [-provider CODE] [-dataset NAME] [-source provider|national] [-months N] [-rules] [-clickhouse-addr ADDR] [-clickhouse-database DB]\n"+
		"       dmicctl [-timeout d] small-numbers [-k 5] [-provider CODE] [-dataset NAME] [-source provider|national] [-months N] [-clickhouse-addr ADDR] [-clickhouse-database DB]\n"+
		"       dmicctl [-timeout d] audit [-since 24h|7d|DATE] [-outcome refused|allowed|done|failed] [-org CODE] [-action TEXT] [-limit N] [-clickhouse-addr ADDR] [-clickhouse-database DB]\n"+
		"       dmicctl [-timeout d] migrate [-clickhouse-addr ADDR] [-clickhouse-database DB]\n"+
		"       dmicctl [-timeout d] kafka-setup [-brokers ADDRS] [-passwords-dir DIR] [-kafka-sasl-password-file F] [-kafka-tls-ca F] [-partitions N] | kafka-setup -print\n"+
		"       (ClickHouse commands also take -clickhouse-user and -clickhouse-password-file, or DMIC_CLICKHOUSE_PASSWORD; docs/security.md)\n"+
		"       (the gRPC commands present a client certificate: -pki DIR, the development one, or -tls-cert F -tls-key F -tls-ca F; docs/security.md)\n")
	fs.PrintDefaults()
}

func run(args []string) int {
	fs := flag.NewFlagSet("dmicctl", flag.ContinueOnError)
	env := os.Getenv("DMICCTL_SERVICES")
	if env == "" {
		env = defaultServices
	}
	list := fs.String("services", env, "Services and their gRPC control addresses (default from DMICCTL_SERVICES).")
	timeout := fs.Duration("timeout", 5*time.Second, "Timeout per call.")
	tf := registerTLS(fs)
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx := context.Background()
	if cmd := fs.Arg(0); cmd == "dq" || cmd == "small-numbers" || cmd == "audit" || cmd == "migrate" {
		// Talks to ClickHouse, not the services: -services does not matter. The
		// views read their tables whole (FINAL), which takes longer than a
		// control call: unless -timeout was given, allow a minute.
		t := time.Minute
		if flagSet(fs, "timeout") {
			t = *timeout
		}
		switch cmd {
		case "small-numbers":
			return smallNumbers(ctx, fs.Args()[1:], os.Stdout, os.Stderr, t, time.Now())
		case "audit":
			return auditCommand(ctx, fs.Args()[1:], os.Stdout, os.Stderr, t, time.Now())
		case "migrate":
			// A layout migration copies a table's rows: allow it time.
			if !flagSet(fs, "timeout") {
				t = time.Hour
			}
			return migrate(ctx, fs.Args()[1:], os.Stdout, os.Stderr, t)
		}
		return dq(ctx, fs.Args()[1:], os.Stdout, os.Stderr, t, time.Now())
	}
	if fs.Arg(0) == "kafka-setup" {
		// Talks to Kafka as its administrator, not to the services.
		t := time.Minute
		if flagSet(fs, "timeout") {
			t = *timeout
		}
		return kafkaSetup(ctx, fs.Args()[1:], os.Stdout, os.Stderr, t)
	}
	svcs, err := parseServices(*list)
	w, werr := tf.load()
	if err := errors.Join(err, werr); err != nil {
		fmt.Fprintln(os.Stderr, "dmicctl:", err)
		return 2
	}
	switch cmd := fs.Arg(0); cmd {
	case "status":
		return status(ctx, os.Stdout, svcs, w, *timeout)
	case "spec":
		return specCommand(ctx, fs.Args()[1:], svcs, w, os.Stdout, os.Stderr, *timeout)
	case "key":
		return key(ctx, fs.Args()[1:], svcs, w, os.Stdout, os.Stderr, *timeout)
	case "dsa", "access":
		return dsaCommand(ctx, cmd, fs.Args()[1:], svcs, w, os.Stdout, os.Stderr, *timeout)
	case "explain":
		return explain(ctx, fs.Args()[1:], svcs, w, os.Stdout, os.Stderr, *timeout)
	case "cam":
		// A re-run reads and assigns a whole period: allow it time.
		t := *timeout
		if !flagSet(fs, "timeout") {
			t = time.Hour
		}
		return camCommand(ctx, fs.Args()[1:], svcs, w, os.Stdout, os.Stderr, t)
	case "skip", "replay":
		// A replay waits for the stage to process the message: allow more
		// than a status call unless -timeout was given.
		t := *timeout
		if cmd == "replay" && !flagSet(fs, "timeout") {
			t = time.Minute
		}
		return message(ctx, cmd, fs.Args()[1:], svcs, w, os.Stdout, os.Stderr, t)
	case "pause", "resume":
		name := fs.Arg(1)
		if s, ok := find(svcs, name); ok {
			return pauseResume(ctx, s, w, cmd, *timeout)
		}
		fmt.Fprintf(os.Stderr, "dmicctl: unknown service %q (known: %s)\n", name, names(svcs))
		return 2
	default:
		usage(fs)
		return 2
	}
}

func parseServices(s string) ([]endpoint, error) {
	var out []endpoint
	var errs []error
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		if !ok || name == "" || addr == "" {
			errs = append(errs, fmt.Errorf("-services: %q is not name=host:port", part))
			continue
		}
		out = append(out, endpoint{name, addr})
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("-services: empty"))
	}
	return out, errors.Join(errs...)
}

// find is the service of that name.
func find(svcs []endpoint, name string) (endpoint, bool) {
	for _, s := range svcs {
		if s.name == name {
			return s, true
		}
	}
	return endpoint{}, false
}

func names(svcs []endpoint) string {
	var n []string
	for _, s := range svcs {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

func dial(s endpoint, w who) (dmicv1.ControlServiceClient, func(), error) {
	conn, err := w.dial(s.addr, false)
	if err != nil {
		return nil, nil, err
	}
	return dmicv1.NewControlServiceClient(conn), func() { conn.Close() }, nil
}

func status(ctx context.Context, out *os.File, svcs []endpoint, w who, timeout time.Duration) int {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tADDRESS\tSTATE\tPROCESSED\tREJECTED\tLAG\tINPUT\tVERSION\tUPTIME\tLAST PROGRESS")
	code := 0
	var reasons []string
	for _, s := range svcs {
		c, closeFn, err := dial(s, w)
		if err != nil {
			fmt.Fprintf(tw, "%s\t%s\tDOWN\t-\t-\t-\t-\t-\t%v\n", s.name, s.addr, err)
			code = 1
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		st, err := c.GetStatus(cctx, &dmicv1.GetStatusRequest{})
		cancel()
		closeFn()
		if err != nil {
			state := "DOWN"
			if c := grpcstatus.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
				// Up, but not for this certificate: say why.
				state = "REFUSED"
				reasons = append(reasons, s.name+": "+grpcstatus.Convert(err).Message())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\n", s.name, s.addr, state)
			code = 1
			continue
		}
		state := "running"
		if st.GetPaused() {
			state = "PAUSED"
		}
		if !st.GetServing() {
			// A stage that cannot make progress: the reason says what it
			// is waiting for (docs/operations.md, Runbook).
			state = "NOT SERVING"
			reasons = append(reasons, s.name+": "+st.GetHealthReason())
			code = 1
		}
		lag := "-"
		if st.GetConsumerLag() >= 0 && st.GetInputTopic() != "" {
			lag = fmt.Sprint(st.GetConsumerLag())
		}
		in := st.GetInputTopic()
		if in == "" {
			in = "(http/grpc)"
		}
		progress := "-"
		if t := st.GetLastProgressTime(); t != nil {
			progress = t.AsTime().UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", st.GetService(), s.addr, state, st.GetProcessed(), st.GetRejected(),
			lag, in, st.GetVersion(), (time.Duration(st.GetUptimeSeconds()) * time.Second).String(), progress)
	}
	tw.Flush()
	for _, r := range reasons {
		fmt.Fprintln(out, "not serving or refused:", r)
	}
	return code
}

// flagSet says whether the flag was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func pauseResume(ctx context.Context, s endpoint, w who, cmd string, timeout time.Duration) int {
	c, closeFn, err := dial(s, w)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dmicctl: %s at %s: %v\n", s.name, s.addr, err)
		return 1
	}
	defer closeFn()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var paused bool
	if cmd == "pause" {
		r, err := c.Pause(cctx, &dmicv1.PauseRequest{})
		if err != nil {
			fmt.Fprintf(os.Stderr, "dmicctl: pause %s: %v\n", s.name, err)
			return 1
		}
		paused = r.GetPaused()
	} else {
		r, err := c.Resume(cctx, &dmicv1.ResumeRequest{})
		if err != nil {
			fmt.Fprintf(os.Stderr, "dmicctl: resume %s: %v\n", s.name, err)
			return 1
		}
		paused = r.GetPaused()
	}
	fmt.Printf("%s: paused=%v\n", s.name, paused)
	return 0
}
