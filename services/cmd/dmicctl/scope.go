package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// scope is what the ClickHouse-reading commands (dq, small-numbers) narrow
// their answer to: -provider, -dataset, -source and the last -months months.
type scope struct {
	provider, dataset, source *string
	months                    *int
}

// what names the months counted ("receipt", "activity") in the flag help.
func registerScope(fs *flag.FlagSet, what string) *scope {
	return &scope{
		provider: fs.String("provider", "", "Only this provider (organisation code, e.g. RJ7)."),
		dataset:  fs.String("dataset", "", "Only this dataset (apc, outpatient, emergency_care, local_flow, or an abbreviation)."),
		source:   fs.String("source", "", "Only this source: provider or national."),
		months:   fs.Int("months", 3, "Months of "+what+" to show, this month included; 0 for all."),
	}
}

// resolved is a scope read and checked: canonical names, and the first month
// (zero for all).
type resolved struct {
	Provider, Dataset, Source string
	From                      time.Time
}

// resolve checks every flag and reports every problem at once.
func (s *scope) resolve(now time.Time) (resolved, error) {
	r := resolved{Provider: strings.TrimSpace(*s.provider)}
	var errs []error
	if *s.dataset != "" {
		d, err := record.ParseDataset(*s.dataset)
		if err != nil {
			errs = append(errs, fmt.Errorf("-dataset %q: %w", *s.dataset, err))
		}
		r.Dataset = record.DatasetName(d)
	}
	if *s.source != "" {
		src, err := envelope.ParseSource(*s.source)
		if err != nil {
			errs = append(errs, fmt.Errorf("-source: %w", err))
		}
		r.Source = envelope.SourceName(src)
	}
	switch {
	case *s.months < 0:
		errs = append(errs, fmt.Errorf("-months %d: want 0 (all) or more", *s.months))
	case *s.months > 0:
		y, m, _ := now.UTC().Date()
		r.From = time.Date(y, m-time.Month(*s.months-1), 1, 0, 0, 0, 0, time.UTC)
	}
	return r, errors.Join(errs...)
}

// describe says what the scope selected, for the command's summary line:
// since introduces the first month ("received since"), all is said when
// nothing narrows it.
func (r resolved) describe(since, all string) string {
	var parts []string
	if r.Provider != "" {
		parts = append(parts, "for provider "+r.Provider)
	}
	if r.Dataset != "" {
		parts = append(parts, "for dataset "+r.Dataset)
	}
	if r.Source != "" {
		parts = append(parts, "from source "+r.Source)
	}
	if !r.From.IsZero() {
		parts = append(parts, since+" "+r.From.Format("2006-01"))
	}
	if len(parts) == 0 {
		return all
	}
	return strings.Join(parts, ", ")
}
