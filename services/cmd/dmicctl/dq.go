package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
)

// dq prints the data-quality summary (dq_summary) and, with -rules, the
// records failing each rule (dq_rule_summary), for the last -months months of
// receipt up to now. It only reads: it neither creates nor changes the schema.
func dq(ctx context.Context, args []string, stdout, stderr io.Writer, timeout time.Duration, now time.Time) int {
	fs := flag.NewFlagSet("dmicctl dq", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Analysts' reads: as the read-only analyst user unless told otherwise.
	ch := chstore.Config{User: chaccess.Analyst}
	ch.RegisterFlags(fs)
	sc := registerScope(fs, "receipt")
	rules := fs.Bool("rules", false, "Also show the records failing each rule.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmicctl dq: unexpected arguments %q\n", fs.Args())
		return 2
	}
	r, err := sc.resolve(now)
	if err = errors.Join(err, ch.Validate()); err != nil {
		fmt.Fprintf(stderr, "dmicctl dq: %v\n", err)
		return 2
	}
	f := chstore.DQFilter{Provider: r.Provider, Dataset: r.Dataset, Source: r.Source, From: r.From}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := ch.Open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl dq: %v\n", err)
		return 1
	}
	defer conn.Close()
	summary, err := chstore.DQSummary(ctx, conn, ch.Database, f)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl dq: %v\n", err)
		return 1
	}
	if len(summary) == 0 {
		fmt.Fprintf(stdout, "No validation outcomes %s.\n", r.describe("received since", "at all"))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MONTH\tPROVIDER\tDATASET\tSOURCE\tRECORDS\tACCEPTED\tWARNED\tREJECTED\tVALID\tSUBMISSIONS")
	for _, r := range summary {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f%%\t%d\n", r.Month.Format("2006-01"), orDash(r.Provider), orDash(r.Dataset), orDash(r.Source),
			r.Records, r.Accepted, r.Warned, r.Rejected, 100*r.ValidShare, r.Submissions)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	if !*rules {
		return 0
	}
	rs, err := chstore.DQRules(ctx, conn, ch.Database, f)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl dq: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout)
	if len(rs) == 0 {
		fmt.Fprintln(stdout, "No rule was broken.")
		return 0
	}
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MONTH\tPROVIDER\tDATASET\tSOURCE\tRULE\tFIELD\tSEVERITY\tRECORDS")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.Month.Format("2006-01"), orDash(r.Provider), orDash(r.Dataset), orDash(r.Source),
			r.RuleID, orDash(r.Field), r.Severity, r.Records)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
