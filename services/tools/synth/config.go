package synth

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Config says what to generate. Shares are probabilities drawn per activity,
// so counts are close to, not exactly, Records × share. A share left at 0
// takes its default; a negative share means "none".
type Config struct {
	Seed int64
	// Records is the number of distinct activities submitted by providers
	// (good and bad). National copies, national-only activities, revisions
	// and deletes come on top.
	Records int
	// BadShare of provider activities are made to break exactly one rule (default 0.05).
	BadShare float64
	// NationalShare of good, not deleted CDS activities also get a national
	// (SUS) copy (default 0.8). Local flows never do.
	NationalShare float64
	// DisagreeShare of national copies differ from the local copy in one
	// realistic field (default 0.1).
	DisagreeShare float64
	// NationalOnlyShare: per provider activity, the chance of one extra
	// activity that only the national copy carries (default 0.03).
	NationalOnlyShare float64
	// RevisionShare of good provider activities are re-sent later with one
	// field changed (default 0.01).
	RevisionShare float64
	// DeleteShare of good provider activities are later deleted with CDS
	// update type 1 (default 0.01). A deleted activity is never revised.
	DeleteShare float64
	// CAMShare of provider activities are CAM scenarios (default 0.02):
	// records made to take a given path through the Commissioner Assignment
	// Method, each saying what assignment must make of it (Item.CAM). They
	// are good records, never revised or deleted, and go through the
	// scenarios in turn, starting at one the seed picks; a run of at least
	// 8 activities per scenario (about 360) goes through all of them, the
	// share raised as needed. Scenarios carry their own codes (the sample
	// reference data's: reference/sample) and activity dates in their CAM
	// year, 2024/25 or 2025/26, within Start-End where the two meet. Their
	// providers are sample trusts (RVR, RCD): only the scenarios of
	// providers in Providers are made, plus, in a run with national-only
	// activities, a national-only record of an independent-sector provider
	// (NVC) that no reference file knows.
	CAMShare float64
	// Start and End bound activity dates, End exclusive (default: the 12
	// months before 2026-10-01). Only the UTC calendar date is used.
	Start, End time.Time
	// Practices are GP practice codes (a letter and 5 digits) patients are
	// registered with (required).
	Practices []string
	// Postcodes are postcodes of usual address in "SM1 2AB" form (required).
	Postcodes []string
	// Providers are provider (trust) codes, 3 characters (required).
	Providers []string
	// Commissioners are submitted commissioner codes (an3–5); the first is
	// drawn most often, as the host. Default: London sub-ICBs and 13R.
	Commissioners []string
	// Datasets to emit (default apc, outpatient, emergency_care).
	Datasets []dmicv1.Dataset
}

// Defaults.
const (
	DefaultBadShare          = 0.05
	DefaultNationalShare     = 0.8
	DefaultDisagreeShare     = 0.1
	DefaultNationalOnlyShare = 0.03
	DefaultRevisionShare     = 0.01
	DefaultDeleteShare       = 0.01
)

var (
	defaultEnd   = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	defaultStart = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	// Births are drawn from 1930, so activity must start after it.
	earliestStart = time.Date(1931, 1, 1, 0, 0, 0, 0, time.UTC)
	latestEnd     = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

var (
	practiceRe     = regexp.MustCompile(`^[A-Z][0-9]{5}$`)
	postcodeRe     = regexp.MustCompile(`^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$`)
	providerRe     = regexp.MustCompile(`^[A-Z0-9]{3}$`)
	commissionerRe = regexp.MustCompile(`^[A-Z0-9]{3,5}$`)
)

func share(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// withDefaults returns c with every unset knob filled in.
func (c Config) withDefaults() Config {
	c.BadShare = share(c.BadShare, DefaultBadShare)
	c.NationalShare = share(c.NationalShare, DefaultNationalShare)
	c.DisagreeShare = share(c.DisagreeShare, DefaultDisagreeShare)
	c.NationalOnlyShare = share(c.NationalOnlyShare, DefaultNationalOnlyShare)
	c.RevisionShare = share(c.RevisionShare, DefaultRevisionShare)
	c.DeleteShare = share(c.DeleteShare, DefaultDeleteShare)
	c.CAMShare = share(c.CAMShare, DefaultCAMShare)
	if c.Start.IsZero() && c.End.IsZero() {
		c.Start, c.End = defaultStart, defaultEnd
	}
	if len(c.Commissioners) == 0 {
		c.Commissioners = defaultCommissioners
	}
	if len(c.Datasets) == 0 {
		c.Datasets = []dmicv1.Dataset{dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_OUTPATIENT, dmicv1.Dataset_DATASET_EMERGENCY_CARE}
	}
	return c
}

// Validate reports every problem with c at once. Postcodes are named by
// position only: a postcode is patient-identifiable and never goes into an
// error message.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Records < 1 {
		errs = append(errs, fmt.Errorf("records: must be at least 1, got %d", c.Records))
	}
	for _, s := range []struct {
		name string
		v    float64
	}{
		{"bad share", c.BadShare}, {"national share", c.NationalShare},
		{"disagree share", c.DisagreeShare}, {"national-only share", c.NationalOnlyShare},
		{"revision share", c.RevisionShare}, {"delete share", c.DeleteShare},
		{"CAM share", c.CAMShare},
	} {
		if math.IsNaN(s.v) || s.v > 1 {
			errs = append(errs, fmt.Errorf("%s: must be at most 1 (0 for the default, negative for none), got %v", s.name, s.v))
		}
	}
	if c.RevisionShare+c.DeleteShare > 1 {
		errs = append(errs, errors.New("revision share + delete share: must be at most 1"))
	}
	if c.Start.IsZero() || c.End.IsZero() {
		errs = append(errs, errors.New("start, end: set both or neither"))
	} else {
		if !c.End.After(c.Start) || dayOf(c.End) <= dayOf(c.Start) {
			errs = append(errs, errors.New("end: must be at least one day after start"))
		}
		if c.Start.Before(earliestStart) {
			errs = append(errs, fmt.Errorf("start: must not be before %s", earliestStart.Format(time.DateOnly)))
		}
		if c.End.After(latestEnd) {
			errs = append(errs, fmt.Errorf("end: must not be after %s", latestEnd.Format(time.DateOnly)))
		}
	}
	if len(c.Practices) == 0 {
		errs = append(errs, errors.New("practices: at least one GP practice code is required"))
	}
	for i, p := range c.Practices {
		if !practiceRe.MatchString(p) {
			errs = append(errs, fmt.Errorf("practices[%d] %q: not a GP practice code (a letter and 5 digits)", i, p))
		}
	}
	if len(c.Postcodes) == 0 {
		errs = append(errs, errors.New("postcodes: at least one postcode is required"))
	}
	for i, p := range c.Postcodes {
		if !postcodeRe.MatchString(p) {
			errs = append(errs, fmt.Errorf("postcodes[%d]: not a postcode in the form \"SM1 2AB\"", i))
		}
	}
	if len(c.Providers) == 0 {
		errs = append(errs, errors.New("providers: at least one provider code is required"))
	}
	for i, p := range c.Providers {
		if !providerRe.MatchString(p) {
			errs = append(errs, fmt.Errorf("providers[%d] %q: not a 3-character trust code", i, p))
		}
	}
	for i, p := range c.Commissioners {
		if !commissionerRe.MatchString(p) {
			errs = append(errs, fmt.Errorf("commissioners[%d] %q: not a commissioner code of 3 to 5 upper-case letters or digits", i, p))
		}
	}
	seen := map[dmicv1.Dataset]bool{}
	for i, d := range c.Datasets {
		if _, ok := datasetNames[d]; !ok {
			errs = append(errs, fmt.Errorf("datasets[%d]: unknown dataset %v", i, d))
			continue
		}
		if seen[d] {
			errs = append(errs, fmt.Errorf("datasets[%d]: %s listed twice", i, datasetNames[d]))
		}
		seen[d] = true
	}
	return errors.Join(errs...)
}

var datasetNames = map[dmicv1.Dataset]string{
	dmicv1.Dataset_DATASET_APC:            "apc",
	dmicv1.Dataset_DATASET_OUTPATIENT:     "outpatient",
	dmicv1.Dataset_DATASET_EMERGENCY_CARE: "emergency_care",
	dmicv1.Dataset_DATASET_LOCAL_FLOW:     "local_flow",
}

// dayOf is the UTC calendar date of t as days since 1970-01-01.
func dayOf(t time.Time) int {
	y, m, d := t.UTC().Date()
	return daysFromCivil(y, int(m), d)
}
