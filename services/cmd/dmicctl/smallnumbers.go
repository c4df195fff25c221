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

// smallNumbers lists the combinations of quasi-identifiers (age band, sex,
// LSOA, activity month) with fewer than -k current activity records, per
// source, for the last -months months of activity up to now: the
// small_numbers view with k chosen here, so that suppression can be applied
// before a table is released. It only reads ClickHouse.
func smallNumbers(ctx context.Context, args []string, stdout, stderr io.Writer, timeout time.Duration, now time.Time) int {
	fs := flag.NewFlagSet("dmicctl small-numbers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Analysts' reads: as the read-only analyst user unless told otherwise.
	ch := chstore.Config{User: chaccess.Analyst}
	ch.RegisterFlags(fs)
	k := fs.Int("k", chstore.DefaultSmallNumbersK, "List combinations with fewer than k records (2 or more).")
	sc := registerScope(fs, "activity")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmicctl small-numbers: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *k < 2 {
		fmt.Fprintf(stderr, "dmicctl small-numbers: -k %d: want 2 or more\n", *k)
		return 2
	}
	r, err := sc.resolve(now)
	if err = errors.Join(err, ch.Validate()); err != nil {
		fmt.Fprintf(stderr, "dmicctl small-numbers: %v\n", err)
		return 2
	}
	f := chstore.SmallNumbersFilter{Provider: r.Provider, Dataset: r.Dataset, Source: r.Source, From: r.From}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := ch.Open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl small-numbers: %v\n", err)
		return 1
	}
	defer conn.Close()
	rows, err := chstore.SmallNumbers(ctx, conn, ch.Database, *k, f)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl small-numbers: %v\n", err)
		return 1
	}
	if len(rows) == 0 {
		fmt.Fprintf(stdout, "No combination of age band, sex, LSOA and month has fewer than %d records %s.\n", *k, r.describe("in activity since", "in all activity"))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tMONTH\tAGE_BAND\tSEX\tLSOA\tRECORDS\tPATIENTS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.Source, r.Month.Format("2006-01"), orDash(r.AgeBand), orDash(r.Sex), orDash(r.LSOA),
			r.Records, r.Patients)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	fmt.Fprintf(stdout, "%d combinations with fewer than %d records %s: suppress or aggregate them before release.\n", len(rows), *k, r.describe("in activity since", "in all activity"))
	return 0
}
