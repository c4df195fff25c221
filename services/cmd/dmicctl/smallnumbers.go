package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dmic-nhs/dmic/services/chstore"
	"github.com/dmic-nhs/dmic/services/envelope"
	"github.com/dmic-nhs/dmic/services/record"
)

// smallNumbers lists the combinations of quasi-identifiers (age band, sex,
// LSOA, activity month) with fewer than -k current activity records, per
// source, for the last -months months of activity up to now: the
// small_numbers view with k chosen here, so that suppression can be applied
// before a table is released. It only reads ClickHouse.
func smallNumbers(ctx context.Context, args []string, stdout, stderr io.Writer, timeout time.Duration, now time.Time) int {
	fs := flag.NewFlagSet("dmicctl small-numbers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ch chstore.Config
	ch.RegisterFlags(fs)
	k := fs.Int("k", chstore.DefaultSmallNumbersK, "List combinations with fewer than k records (2 or more).")
	provider := fs.String("provider", "", "Only this provider's activity (organisation code, e.g. RJ7).")
	dataset := fs.String("dataset", "", "Only this dataset (apc, outpatient, emergency_care, local_flow, or an abbreviation).")
	source := fs.String("source", "", "Only this source: provider or national.")
	months := fs.Int("months", 3, "Months of activity to check, this month included; 0 for all.")
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
	f := chstore.SmallNumbersFilter{Provider: strings.TrimSpace(*provider)}
	if *dataset != "" {
		d, err := record.ParseDataset(*dataset)
		if err != nil {
			fmt.Fprintf(stderr, "dmicctl small-numbers: -dataset %q: %v\n", *dataset, err)
			return 2
		}
		f.Dataset = record.DatasetName(d)
	}
	if *source != "" {
		s, err := envelope.ParseSource(*source)
		if err != nil {
			fmt.Fprintf(stderr, "dmicctl small-numbers: -source: %v\n", err)
			return 2
		}
		f.Source = envelope.SourceName(s)
	}
	if *months < 0 {
		fmt.Fprintf(stderr, "dmicctl small-numbers: -months %d: want 0 (all) or more\n", *months)
		return 2
	}
	if *months > 0 {
		y, m, _ := now.UTC().Date()
		f.From = time.Date(y, m-time.Month(*months-1), 1, 0, 0, 0, 0, time.UTC)
	}

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
		fmt.Fprintf(stdout, "No combination of age band, sex, LSOA and month has fewer than %d records %s.\n", *k, describeActivity(f))
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
	fmt.Fprintf(stdout, "%d combinations with fewer than %d records %s: suppress or aggregate them before release.\n", len(rows), *k, describeActivity(f))
	return 0
}

// describeActivity says what the filter selected.
func describeActivity(f chstore.SmallNumbersFilter) string {
	var parts []string
	if f.Provider != "" {
		parts = append(parts, "for provider "+f.Provider)
	}
	if f.Dataset != "" {
		parts = append(parts, "for dataset "+f.Dataset)
	}
	if f.Source != "" {
		parts = append(parts, "from source "+f.Source)
	}
	if !f.From.IsZero() {
		parts = append(parts, "in activity since "+f.From.Format("2006-01"))
	}
	if len(parts) == 0 {
		return "in all activity"
	}
	return strings.Join(parts, ", ")
}
