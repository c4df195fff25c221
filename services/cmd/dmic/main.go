// Command dmic is the provider's tool. Today it has one command:
//
//	dmic validate --dataset apc [flags] FILE
//
// checks a file (NDJSON or CSV, as submitted to ingest) against the data
// specifications offline, and prints the same report the platform gives for a
// submission, without sending anything. The exit status is 0 when every
// record would be accepted, 1 when any would be rejected, 2 on a usage or
// read error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validate/checker"
)

func main() {
	os.Exit(run(context.Background(), clock.System(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: dmic validate --dataset DATASET [flags] FILE
  Checks FILE (NDJSON, or CSV with a header row; "-" reads standard input)
  against the data specifications and prints the submission report.
`

// run is the command; clk is "now" for every decision (the specification
// version in effect without --as-of, dates in the future).
func run(ctx context.Context, clk clock.Clock, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	return validateCmd(ctx, clk, args[1:], stdin, stdout, stderr)
}

// specFiles collects repeated --spec flags.
type specFiles []string

func (s *specFiles) String() string     { return strings.Join(*s, ",") }
func (s *specFiles) Set(v string) error { *s = append(*s, v); return nil }

func validateCmd(ctx context.Context, clk clock.Clock, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dmic validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataset := fs.String("dataset", "", "Dataset of records that do not name their own: apc, outpatient, emergency_care, local_flow.")
	source := fs.String("source", "provider", "provider, or national (the SUS extract).")
	submitter := fs.String("submitter", "", "Submitter organisation code (default: each record's provider code).")
	format := fs.String("format", "", "ndjson or csv (default: from the file name; .csv is CSV, anything else NDJSON).")
	refDir := fs.String("reference-dir", "", "Reference data folder (the platform's); enables the rules that need it: ORG-006 (GP practice known), CODE-031 (service code of the year), CLIN-008 (HRG4+ code in force). Use the same data as the platform to get the same report.")
	asOf := fs.String("as-of", "", "Day of receipt, YYYY-MM-DD, which picks the specification version in effect (default today).")
	limit := fs.Int("limit", 100, "Failing records to list.")
	output := fs.String("o", "text", "Report format: text or json.")
	var specs specFiles
	fs.Var(&specs, "spec", "A specification document (JSON) to use besides the built-in ones; repeat for more.")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "dmic validate:", err); return 2 }

	var problems []error
	opts := checker.Options{Submitter: *submitter, Limit: *limit}
	if *dataset != "" {
		d, err := record.ParseDataset(*dataset)
		if err != nil {
			problems = append(problems, fmt.Errorf("--dataset: %w", err))
		}
		opts.Dataset = d
	}
	src, err := envelope.ParseSource(*source)
	if err != nil {
		problems = append(problems, fmt.Errorf("--source: %w", err))
	}
	opts.Source = src
	if *asOf != "" {
		t, err := time.Parse(time.DateOnly, *asOf)
		if err != nil {
			problems = append(problems, errors.New("--as-of: not a YYYY-MM-DD date"))
		}
		opts.Received = t.Add(12 * time.Hour) // midday: the same calendar day in London and UTC
	}
	if *output != "text" && *output != "json" {
		problems = append(problems, errors.New("-o: must be text or json"))
	}
	if *limit < 1 {
		problems = append(problems, errors.New("--limit: must be at least 1"))
	}
	if fs.NArg() != 1 {
		problems = append(problems, errors.New("give exactly one FILE (or - for standard input)"))
	}
	name := fs.Arg(0)
	switch strings.ToLower(*format) {
	case "":
		if strings.EqualFold(filepath.Ext(name), ".csv") {
			opts.Format = checker.CSV
		}
	case "ndjson", "jsonl", "json":
	case "csv":
		opts.Format = checker.CSV
	default:
		problems = append(problems, errors.New("--format: must be ndjson or csv"))
	}
	if len(problems) > 0 {
		return fail(errors.Join(problems...))
	}

	v, err := validate.NewValidator(validate.ValidatorConfig{ReferenceDir: *refDir, SpecFiles: specs, Clock: clk})
	if err != nil {
		return fail(err)
	}
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		in = f
	}
	rep, err := checker.Check(ctx, v, in, opts)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	if *output == "json" {
		err = dqreport.WriteJSON(stdout, rep)
	} else {
		err = dqreport.WriteText(stdout, rep)
	}
	if err != nil {
		return fail(err)
	}
	if rep.GetRejected() > 0 {
		return 1
	}
	return 0
}
