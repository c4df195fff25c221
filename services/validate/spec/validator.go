// Package spec checks provider and national records against the dmic
// data specifications. A specification is data (specs/*.json, one per data
// set and source, versioned, with an effective date): it says which of this
// package's fixed checks apply to which fields, with which parameters, rule
// id, severity and message. Each broken rule is a Failure that names the rule
// and the field, never the field's value, so failures can be logged, returned
// to the provider and stored without leaking identifiers.
package spec

import (
	"sync/atomic"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// PracticeDirectory says whether a GP practice code is known to the
// reference data (rule ORG-006). It must be safe for concurrent use.
type PracticeDirectory interface {
	KnownPractice(code string) bool
}

// ServiceCodeDirectory is NHS England's list of service codes by financial
// year (reference file cam_service_codes_2024-25_2025-26.csv), for rules
// CODE-031 and CODE-032. It must be safe for concurrent use.
type ServiceCodeDirectory interface {
	// ServiceCodeListed reports whether code is in the list of financial
	// year year, written as the list writes it ("25/26"), and whether there
	// is a list of that year at all.
	ServiceCodeListed(year, code string) (listed, haveYear bool)
	// ServiceCodeEnd is the Effective_To date (YYYY-MM-DD) of code's line
	// in the list of year, "" when it has none or is not listed (rule
	// CODE-032).
	ServiceCodeEnd(year, code string) string
}

// HRGDirectory is the National Casemix Office's HRG4+ code list (reference
// file hrg4_codes_2020-21_to_2025-26.csv), for the hrg_valid rules (CLIN-008).
// It must be safe for concurrent use.
type HRGDirectory interface {
	// HRGValidOn reports whether code is in a grouper release in force on
	// day (YYYY-MM-DD), and whether the list can say so for that day.
	HRGValidOn(code, day string) (valid, covered bool)
}

// Validator checks records against the specification a registry selects for
// each. It is safe for concurrent use, and its registry can be replaced
// while other goroutines validate.
type Validator struct {
	reg       atomic.Pointer[Registry]
	clock     clock.Clock
	loc       *time.Location
	practices PracticeDirectory
	services  ServiceCodeDirectory
	hrgs      HRGDirectory
}

// Option configures a Validator.
type Option func(*Validator)

// WithClock sets the clock that decides which dates are in the future, the
// day of receipt when a record has none, and (through Clock) which
// specification versions are in effect for the stage and the specification
// service built on this validator: one clock for every decision of the
// service. Without it the validator reads the wall clock.
func WithClock(c clock.Clock) Option {
	return func(v *Validator) {
		if c != nil {
			v.clock = c
		}
	}
}

// WithLocation sets the time zone whose calendar date is "today" for
// date_not_future (default Europe/London: an activity dated today in England
// is not in the future, even at 00:30 BST when UTC is still on yesterday).
func WithLocation(loc *time.Location) Option {
	return func(v *Validator) {
		if loc != nil {
			v.loc = loc
		}
	}
}

// WithPractices sets the GP practice reference data of practice_known rules
// (ORG-006). Without it those rules are not checked. Reference data that is
// also a ServiceCodeDirectory (refdata.Reference is) backs the
// service_code_in_year rules (CODE-031) and the hrg_valid rules (CLIN-008)
// too, unless WithServiceCodes or WithHRGs says otherwise.
func WithPractices(p PracticeDirectory) Option {
	return func(v *Validator) { v.practices = p }
}

// WithServiceCodes sets the service code lists of service_code_in_year
// rules (CODE-031). Without it, and without reference data given to
// WithPractices that has them, those rules are not checked.
func WithServiceCodes(s ServiceCodeDirectory) Option {
	return func(v *Validator) { v.services = s }
}

// WithHRGs sets the HRG4+ code list of hrg_valid rules (CLIN-008). Without
// it, and without reference data given to WithPractices that has the list,
// those rules are not checked.
func WithHRGs(h HRGDirectory) Option {
	return func(v *Validator) { v.hrgs = h }
}

// New returns a Validator using reg (nil: an empty registry, under which
// every record fails SPEC-001) and the Europe/London calendar.
func New(reg *Registry, opts ...Option) *Validator {
	v := &Validator{loc: london()}
	for _, o := range opts {
		o(v)
	}
	if v.services == nil {
		if s, ok := v.practices.(ServiceCodeDirectory); ok {
			v.services = s
		}
	}
	if v.hrgs == nil {
		if h, ok := v.practices.(HRGDirectory); ok {
			v.hrgs = h
		}
	}
	v.SetRegistry(reg)
	return v
}

// SetRegistry replaces the specifications. Records already being validated
// finish under the registry they started with.
func (v *Validator) SetRegistry(reg *Registry) {
	if reg == nil {
		reg = &Registry{}
	}
	v.reg.Store(reg)
}

// Registry is the registry in use.
func (v *Validator) Registry() *Registry { return v.reg.Load() }

// Clock is the validator's clock, for the components that decide with it
// (which version is in effect, when a record was judged).
func (v *Validator) Clock() clock.Clock { return v.clock }

// ValidateInput is what Validate needs to know of a record beyond itself.
type ValidateInput struct {
	// Dataset whose rules apply; unspecified means the dataset of the
	// record's activity.
	Dataset dmicv1.Dataset
	// Source of the record; unspecified counts as provider.
	Source dmicv1.Source
	// Received is when the submission was received; it selects the
	// specification version by effective date. Zero means now.
	Received time.Time
	// DuplicateOfLine is the line of an earlier record of the same
	// submission with the same record id, 0 when there is none.
	DuplicateOfLine int64
}

// Result is the outcome of validating one record.
type Result struct {
	// Failures are every error and warning, in specification order; nil
	// when the record is clean.
	Failures []*dmicv1.Failure
	// Spec is the specification applied (its Label is the record's
	// spec_version); nil when none covers the record (see RuleNoSpec).
	Spec *Spec
}

// Rules of the engine itself, not of a specification.
const (
	// RuleNoSpec: no specification covers the record's dataset and source,
	// so it cannot be accepted.
	RuleNoSpec = "SPEC-001"
	msgNoSpec  = "no specification covers this data set and source"
)

// Validate checks r and returns its failures and the specification applied.
//
// The specification is the registry's selection for (dataset, source,
// received day). When no specification covers a national record's dataset,
// the provider specification of the dataset applies (a national copy is
// then held to the provider's rules rather than let through unchecked); when
// none covers it at all, the record fails SPEC-001 (error).
//
// Validate changes r in one way: a postcode_of_usual_address that passes
// its format check is rewritten to its canonical form ("sw1a1aa" becomes
// "SW1A 1AA"), because later stages look postcodes up in that form. It
// allocates nothing for a clean record whose postcode is already canonical.
func (v *Validator) Validate(r *dmicv1.CommissioningRecord, in ValidateInput) Result {
	ds := in.Dataset
	if ds == dmicv1.Dataset_DATASET_UNSPECIFIED {
		ds = record.DatasetOf(r)
	}
	day := in.Received
	if day.IsZero() {
		day = v.clock.Now()
	}
	reg := v.reg.Load()
	s := reg.Select(ds, in.Source, day)
	if s == nil && in.Source == dmicv1.Source_SOURCE_NATIONAL {
		s = reg.Select(ds, dmicv1.Source_SOURCE_PROVIDER, day)
	}
	if s == nil {
		return Result{Failures: []*dmicv1.Failure{{RuleId: RuleNoSpec, Field: "dataset",
			Severity: dmicv1.Severity_SEVERITY_ERROR, Message: msgNoSpec}}}
	}
	env := checkEnv{
		rec:       r,
		isDelete:  r.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_DELETE,
		dupLine:   in.DuplicateOfLine,
		practices: v.practices,
		services:  v.services,
		hrgs:      v.hrgs,
		clock:     v.clock,
		loc:       v.loc,
		activity:  -1,
	}
	return Result{Failures: s.plans[ds].run(&env), Spec: s}
}

// HasErrors reports whether any failure is an error (rather than a warning).
func HasErrors(fs []*dmicv1.Failure) bool {
	for _, f := range fs {
		if f.GetSeverity() == dmicv1.Severity_SEVERITY_ERROR {
			return true
		}
	}
	return false
}
