package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// Specification is a specification document as written: one JSON object per
// data set (see specs/*.json and docs/specifications.md). Which checks apply
// to which fields, with which parameters, rule id, severity and message is
// data; the checks themselves are a fixed set in this package.
type Specification struct {
	// ID names the specification ("apc"); with Version it names one
	// immutable document.
	ID      string `json:"id"`
	Title   string `json:"title"`
	Version string `json:"version"`
	// EffectiveFrom is the first day (YYYY-MM-DD, Europe/London) of receipt
	// the version applies to.
	EffectiveFrom string `json:"effective_from"`
	// Source is "provider" or "national".
	Source string `json:"source"`
	// Datasets are the canonical dataset names the specification covers.
	Datasets    []string            `json:"datasets"`
	Description string              `json:"description,omitempty"`
	CodeLists   map[string]CodeList `json:"code_lists"`
	Fields      []FieldSpec         `json:"fields"`
	Rules       []RuleSpec          `json:"rules"`
}

// CodeList is a named list of codes a field's value must come from.
type CodeList struct {
	Title  string `json:"title"`
	Source string `json:"source"`
	// Codes maps each code to its meaning.
	Codes map[string]string `json:"codes"`
}

// FieldSpec describes one field of the record format under a specification.
type FieldSpec struct {
	Name string `json:"name"`
	// Item is the NHS Data Dictionary item (or local item) the field carries.
	Item string `json:"item"`
	// Type is "string" or "integer" (price_pence, activity_count).
	Type string `json:"type"`
	// Format describes the value for providers, in Data Dictionary notation
	// ("an3-an5", "n10"); the rules do the checking.
	Format string `json:"format"`
	// Obligation is "mandatory" (missing: REQ-001, an error), "required"
	// (missing: a warning) or "optional".
	Obligation string `json:"obligation"`
	// CodeList names the code list the value comes from, "" for none.
	CodeList string `json:"code_list,omitempty"`
	// Delete marks the fields a delete (cds_update_type 1) must carry.
	Delete bool `json:"delete,omitempty"`
	// Datasets restricts the field to some of the specification's datasets;
	// empty means all of them.
	Datasets []string `json:"datasets,omitempty"`
}

// RuleSpec is one rule: a named check applied to fields.
type RuleSpec struct {
	// ID is stable: providers, reports and dashboards refer to it.
	ID string `json:"id"`
	// Severity is "error" (the record is rejected) or "warning" (the record
	// passes with a data-quality flag).
	Severity string `json:"severity"`
	// Check names the check (see docs/specifications.md, "Checks").
	Check string `json:"check"`
	// Fields are the fields checked, each on its own, or for a check that
	// compares fields, its operands in order. A mandatory or required rule
	// with no fields covers every field of that obligation that no other
	// rule of the same check names.
	Fields []string `json:"fields,omitempty"`
	// ReportField is the field a failure of a comparing check names; the
	// first operand when empty.
	ReportField string `json:"report_field,omitempty"`
	// Message is the failure message. It is fixed text: never a value.
	Message string  `json:"message"`
	Params  *Params `json:"params,omitempty"`
	// Datasets restricts the rule to some of the specification's datasets.
	Datasets []string `json:"datasets,omitempty"`
	// UnlessFailed skips the rule on a field that an earlier rule named here
	// already failed (so one bad value is not reported twice).
	UnlessFailed []string `json:"unless_failed,omitempty"`
	// When applies the rule only to records whose field has one of the
	// values: an obligation that holds for some kinds of record only (a
	// finished episode's end date, not an unfinished one's).
	When *Condition `json:"when,omitempty"`
}

// Condition selects records by the value of one field.
type Condition struct {
	// Field is a field of the specification, declared for every data set
	// the rule applies to.
	Field string `json:"field"`
	// In are the values that select a record; a record whose field has no
	// value is not selected.
	In []string `json:"in"`
}

// Params are a rule's parameters; which ones a check takes is in
// docs/specifications.md. A parameter the check does not use is an error.
type Params struct {
	CodeList string   `json:"code_list,omitempty"`
	Format   string   `json:"format,omitempty"`
	Length   int      `json:"length,omitempty"`
	Date     string   `json:"date,omitempty"`
	Values   []string `json:"values,omitempty"`
	Except   []string `json:"except,omitempty"`
	Min      *int64   `json:"min,omitempty"`
	Statuses []string `json:"statuses,omitempty"`
	// Number is "missing" or "present" (nhs_status).
	Number string `json:"number,omitempty"`
}

// Obligations and severities as written in a document.
const (
	ObligationMandatory = "mandatory"
	ObligationRequired  = "required"
	ObligationOptional  = "optional"
	severityError       = "error"
	severityWarning     = "warning"
	sourceProvider      = "provider"
	sourceNational      = "national"
	typeString          = "string"
	typeInteger         = "integer"
)

// SpecError is every problem found in a specification document.
type SpecError struct {
	// ID and Version as far as the document gave them.
	ID, Version string
	Problems    []error
}

func (e *SpecError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "specification %q version %q: %d problem", e.ID, e.Version, len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteByte('s')
	}
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *SpecError) Unwrap() []error { return e.Problems }

var (
	idPattern      = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,39}$`)
	versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$`)
	rulePattern    = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[A-Z0-9]+$`)
	namePattern    = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// maxMessage bounds a failure message: messages travel on every failing
// record.
const maxMessage = 200

// ParseSpecification decodes a specification document strictly (unknown
// keys, trailing data and wrong types are errors) and checks what can be
// checked of it alone: identity, version, dates, severities, obligations,
// types, unique rule ids and fields. It reports every problem at once, as a
// *SpecError. Compile checks the rest (checks, parameters, fields against
// the record format, code lists).
func ParseSpecification(doc []byte) (*Specification, error) {
	s, problems := parse(doc)
	if len(problems) > 0 {
		return nil, specError(s, problems)
	}
	return s, nil
}

func specError(s *Specification, problems []error) *SpecError {
	e := &SpecError{Problems: problems}
	if s != nil {
		e.ID, e.Version = s.ID, s.Version
	}
	return e
}

// parse returns the document (nil only when it is not JSON of the right
// shape) and its problems.
func parse(doc []byte) (*Specification, []error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	var s Specification
	if err := dec.Decode(&s); err != nil {
		return nil, []error{fmt.Errorf("not a specification document: %w", err)}
	}
	if dec.More() {
		return nil, []error{errors.New("not a specification document: data after the JSON object")}
	}
	var ps []error
	add := func(format string, args ...any) { ps = append(ps, fmt.Errorf(format, args...)) }

	if !idPattern.MatchString(s.ID) {
		add("id %q: must be 1 to 40 of a-z, 0-9, '_' and '-', starting with a letter", s.ID)
	}
	if !versionPattern.MatchString(s.Version) {
		add("version %q: must be 1 to 40 of A-Z, a-z, 0-9, '.', '_' and '-'", s.Version)
	}
	if strings.TrimSpace(s.Title) == "" {
		add("title: missing")
	}
	if _, ok := parseDate(s.EffectiveFrom); !ok {
		add("effective_from %q: must be a date YYYY-MM-DD", s.EffectiveFrom)
	}
	if s.Source != sourceProvider && s.Source != sourceNational {
		add("source %q: must be %q or %q", s.Source, sourceProvider, sourceNational)
	}
	if len(s.Datasets) == 0 {
		add("datasets: at least one dataset is needed")
	}
	for _, name := range s.Datasets {
		if _, err := datasetByName(name); err != nil {
			add("datasets: %v", err)
		}
	}
	if hasDuplicate(s.Datasets) {
		add("datasets: a dataset is listed twice")
	}

	for name, cl := range s.CodeLists {
		if !namePattern.MatchString(name) {
			add("code list %q: name must be of a-z, 0-9 and '_'", name)
		}
		if strings.TrimSpace(cl.Title) == "" {
			add("code list %q: title missing", name)
		}
		if len(cl.Codes) == 0 {
			add("code list %q: no codes", name)
		}
		for code := range cl.Codes {
			if code == "" || strings.TrimSpace(code) != code {
				add("code list %q: code %q is empty or has surrounding spaces", name, code)
			}
		}
	}

	for i, f := range s.Fields {
		where := fmt.Sprintf("field %q", f.Name)
		if f.Name == "" {
			where = fmt.Sprintf("fields[%d]", i)
			add("%s: name missing", where)
		}
		if f.Type != typeString && f.Type != typeInteger {
			add("%s: type %q must be %q or %q", where, f.Type, typeString, typeInteger)
		}
		switch f.Obligation {
		case ObligationMandatory, ObligationRequired, ObligationOptional:
		default:
			add("%s: obligation %q must be %q, %q or %q", where, f.Obligation, ObligationMandatory, ObligationRequired, ObligationOptional)
		}
		if f.Delete && f.Obligation != ObligationMandatory {
			add("%s: only a mandatory field can be needed on a delete", where)
		}
		if f.CodeList != "" {
			if _, ok := s.CodeLists[f.CodeList]; !ok {
				add("%s: unknown code list %q", where, f.CodeList)
			}
		}
		ps = append(ps, subsetProblems(where, f.Datasets, s.Datasets)...)
	}
	// A field is declared once per dataset.
	for _, ds := range s.Datasets {
		seen := map[string]bool{}
		for _, f := range s.Fields {
			if f.Name == "" || !appliesTo(f.Datasets, ds) {
				continue
			}
			if seen[f.Name] {
				add("field %q: declared twice for dataset %s", f.Name, ds)
			}
			seen[f.Name] = true
		}
	}

	ids := map[string]bool{}
	for i, r := range s.Rules {
		where := fmt.Sprintf("rule %q", r.ID)
		switch {
		case r.ID == "":
			where = fmt.Sprintf("rules[%d]", i)
			add("%s: id missing", where)
		case !rulePattern.MatchString(r.ID):
			add("%s: id must look like ABC-123", where)
		case ids[r.ID]:
			add("%s: id used by more than one rule", where)
		}
		ids[r.ID] = true
		if r.Severity != severityError && r.Severity != severityWarning {
			add("%s: severity %q must be %q or %q", where, r.Severity, severityError, severityWarning)
		}
		switch m := r.Message; {
		case strings.TrimSpace(m) == "":
			add("%s: message missing", where)
		case len(m) > maxMessage:
			add("%s: message longer than %d bytes", where, maxMessage)
		}
		if r.Check == "" {
			add("%s: check missing", where)
		}
		if hasDuplicate(r.Fields) {
			add("%s: a field is named twice", where)
		}
		ps = append(ps, subsetProblems(where, r.Datasets, s.Datasets)...)
	}
	return &s, ps
}

// subsetProblems checks that a field's or rule's datasets are the
// specification's.
func subsetProblems(where string, sub, all []string) []error {
	var ps []error
	for _, d := range sub {
		if !slices.Contains(all, d) {
			ps = append(ps, fmt.Errorf("%s: dataset %q is not one of the specification's datasets", where, d))
		}
	}
	if hasDuplicate(sub) {
		ps = append(ps, fmt.Errorf("%s: a dataset is listed twice", where))
	}
	return ps
}

// appliesTo reports whether a field or rule restricted to datasets covers ds.
func appliesTo(datasets []string, ds string) bool {
	return len(datasets) == 0 || slices.Contains(datasets, ds)
}

func hasDuplicate(xs []string) bool {
	for i := range xs {
		if slices.Contains(xs[:i], xs[i]) {
			return true
		}
	}
	return false
}

// datasetByName accepts only canonical dataset names: a specification is
// read by tools other than the decoder, so aliases ("op") are not allowed.
func datasetByName(name string) (dmicv1.Dataset, error) {
	d, err := record.ParseDataset(name)
	if err != nil || record.DatasetName(d) != name {
		return 0, fmt.Errorf("unknown dataset %q (apc, outpatient, emergency_care or local_flow)", name)
	}
	return d, nil
}
