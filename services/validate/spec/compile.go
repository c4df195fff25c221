package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

const numDatasets = int(dmicv1.Dataset_DATASET_LOCAL_FLOW) + 1

// shortCodeList is the longest code list checked by scanning rather than
// by a map.
const shortCodeList = 12

// Spec is a compiled specification: immutable, safe for concurrent use.
type Spec struct {
	doc       *Specification
	raw       []byte
	sha       string
	label     string
	source    dmicv1.Source
	datasets  []dmicv1.Dataset
	effective int // yyyymmdd
	rules     []RuleInfo
	fields    []FieldInfo
	plans     [numDatasets]*plan
	messages  []string
	// Set by the registry that first holds the spec, before it is shared.
	origin string
	loaded time.Time
}

// RuleInfo describes one rule of a compiled specification.
type RuleInfo struct {
	ID       string
	Severity dmicv1.Severity
	Check    string
	// Fields as the document names them (empty: every field of the
	// obligation of a mandatory or required rule).
	Fields      []string
	ReportField string
	Message     string
	// Datasets the rule applies to (all of the specification's when the
	// document does not restrict it).
	Datasets []dmicv1.Dataset
}

// FieldInfo describes one field of a compiled specification.
type FieldInfo struct {
	Name, Item, Type, Format, Obligation, CodeList string
	Delete                                         bool
	Datasets                                       []dmicv1.Dataset
}

// ID is the specification's id, e.g. "apc".
func (s *Spec) ID() string { return s.doc.ID }

// Version is the specification's version, e.g. "2026.1".
func (s *Spec) Version() string { return s.doc.Version }

// Label is id/version ("apc/2026.1"), stamped on every record the
// specification passed as its spec_version. It is "" for a nil Spec.
func (s *Spec) Label() string {
	if s == nil {
		return ""
	}
	return s.label
}

// Title is the specification's title.
func (s *Spec) Title() string { return s.doc.Title }

// Description is the specification's description.
func (s *Spec) Description() string { return s.doc.Description }

// EffectiveFrom is the first day of receipt (YYYY-MM-DD, Europe/London) the
// specification applies to.
func (s *Spec) EffectiveFrom() string { return s.doc.EffectiveFrom }

// Source is the source of records the specification covers.
func (s *Spec) Source() dmicv1.Source { return s.source }

// Datasets are the datasets the specification covers.
func (s *Spec) Datasets() []dmicv1.Dataset { return slices.Clone(s.datasets) }

// Covers reports whether the specification covers dataset d.
func (s *Spec) Covers(d dmicv1.Dataset) bool {
	return d > 0 && int(d) < numDatasets && s.plans[d] != nil
}

// Document is the specification document as loaded, byte for byte.
func (s *Spec) Document() []byte { return slices.Clone(s.raw) }

// SHA256 is the hex SHA-256 of Document.
func (s *Spec) SHA256() string { return s.sha }

// Rules are the rules in document order.
func (s *Spec) Rules() []RuleInfo { return slices.Clone(s.rules) }

// Fields are the fields in document order.
func (s *Spec) Fields() []FieldInfo { return slices.Clone(s.fields) }

// CodeLists are the code lists by name (a copy).
func (s *Spec) CodeLists() map[string]CodeList {
	out := make(map[string]CodeList, len(s.doc.CodeLists))
	for name, cl := range s.doc.CodeLists {
		cl.Codes = maps.Clone(cl.Codes)
		out[name] = cl
	}
	return out
}

// Origin says where the specification came from: "built-in" or "loaded"
// (or what the registry's caller said); "" for a Spec no registry holds.
func (s *Spec) Origin() string { return s.origin }

// LoadedTime is when the specification was added to a registry; zero for a
// built-in one.
func (s *Spec) LoadedTime() time.Time { return s.loaded }

// Messages are the distinct failure messages the specification can give.
func (s *Spec) Messages() []string { return slices.Clone(s.messages) }

// fieldRef is a declared field as a rule sees it in one dataset.
type fieldRef struct {
	spec *FieldSpec
	get  func(*dmicv1.CommissioningRecord) string
}

// Compile parses a specification document and checks it against the checks
// of this package and the record format: every check exists and has the
// parameters it needs and no others; every field a rule names is declared
// for every dataset the rule applies to, and the record format has it; code
// lists exist, agree with the fields' and are used; every mandatory or
// required field is checked. Every problem is reported at once, as a
// *SpecError.
func Compile(doc []byte) (*Spec, error) {
	d, problems := parse(doc)
	if d == nil {
		return nil, specError(nil, problems)
	}
	c := newCompiler(d, doc)
	c.problems = problems
	c.compileFields()
	for ri := range d.Rules {
		c.compileRule(&d.Rules[ri])
	}
	c.assignCatchAlls()
	c.checkCoverage()
	c.checkCodeListsUsed()
	for _, ds := range c.s.datasets {
		if n := len(c.s.plans[ds].slots); n > maxSlots {
			c.add("dataset %s: rules read %d fields, more than %d", record.DatasetName(ds), n, maxSlots)
		}
	}
	if len(c.problems) > 0 {
		return nil, specError(d, c.problems)
	}
	c.s.messages = slices.Sorted(maps.Keys(c.messages))
	return c.s, nil
}

// compiler holds what compiling one document builds up: the spec, and the
// bookkeeping that the checks across fields and rules read at the end.
type compiler struct {
	d        *Specification
	s        *Spec
	problems []error
	dsOf     map[string]dmicv1.Dataset
	// fields[ds][name] are the declared fields per dataset.
	fields    map[dmicv1.Dataset]map[string]fieldRef
	usedLists map[string]bool
	// checked[ds][field] is the code list a code_list rule checks the field
	// against, to compare with the list the field declares.
	checked map[dmicv1.Dataset]map[string]string
	// named[check][ds] are the fields obligation rules name; catchAlls are
	// the obligation rules (per dataset) that take the rest.
	named     map[checkKind]map[dmicv1.Dataset]map[string]bool
	catchAlls []catchAllRef
	seenIDs   map[string]bool
	messages  map[string]bool
}

type catchAllRef struct {
	rule int
	ds   dmicv1.Dataset
}

func (c *compiler) add(format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf(format, args...))
}

// newCompiler starts the spec: identity, digest, effective date, source and
// data sets.
func newCompiler(d *Specification, doc []byte) *compiler {
	s := &Spec{doc: d, raw: slices.Clone(doc), label: d.ID + "/" + d.Version}
	sum := sha256.Sum256(doc)
	s.sha = hex.EncodeToString(sum[:])
	s.effective, _ = parseDate(d.EffectiveFrom)
	s.source = dmicv1.Source_SOURCE_PROVIDER
	if d.Source == sourceNational {
		s.source = dmicv1.Source_SOURCE_NATIONAL
	}
	c := &compiler{d: d, s: s, dsOf: map[string]dmicv1.Dataset{}, fields: map[dmicv1.Dataset]map[string]fieldRef{},
		usedLists: map[string]bool{}, checked: map[dmicv1.Dataset]map[string]string{},
		named:   map[checkKind]map[dmicv1.Dataset]map[string]bool{chkMandatory: {}, chkRequired: {}},
		seenIDs: map[string]bool{}, messages: map[string]bool{}}
	for _, name := range d.Datasets {
		if ds, err := datasetByName(name); err == nil && !slices.Contains(s.datasets, ds) {
			c.dsOf[name] = ds
			s.datasets = append(s.datasets, ds)
		}
	}
	for _, ds := range s.datasets {
		c.fields[ds] = map[string]fieldRef{}
		s.plans[ds] = &plan{}
	}
	return c
}

// datasetsOf are the spec's data sets that restrict (empty: all) allows.
func (c *compiler) datasetsOf(restrict []string) []dmicv1.Dataset {
	var out []dmicv1.Dataset
	for _, name := range c.d.Datasets {
		if ds, ok := c.dsOf[name]; ok && appliesTo(restrict, name) {
			out = append(out, ds)
		}
	}
	return out
}

// compileFields declares each field in each of its data sets.
func (c *compiler) compileFields() {
	for i := range c.d.Fields {
		f := &c.d.Fields[i]
		if f.Name == "" {
			continue
		}
		_, isInt := intFields[f.Name]
		if f.Type == typeInteger && !isInt || f.Type == typeString && isInt {
			c.add("field %q: type %q is not the record format's", f.Name, f.Type)
		}
		if isInt && f.Obligation != ObligationOptional {
			c.add("field %q: an integer field cannot be %s (an absent number reads 0)", f.Name, f.Obligation)
		}
		if f.Name == "dataset" {
			c.add("field %q: the dataset is the decoder's, not a field a specification can check", f.Name)
			continue
		}
		for _, ds := range c.datasetsOf(f.Datasets) {
			get, ok := record.Getter(f.Name, ds)
			if !ok {
				c.add("field %q: the record format has no such field in dataset %s", f.Name, record.DatasetName(ds))
				continue
			}
			c.fields[ds][f.Name] = fieldRef{spec: f, get: get}
		}
		c.s.fields = append(c.s.fields, FieldInfo{Name: f.Name, Item: f.Item, Type: f.Type, Format: f.Format,
			Obligation: f.Obligation, CodeList: f.CodeList, Delete: f.Delete, Datasets: c.datasetsOf(f.Datasets)})
	}
}

// compileRule checks one rule and adds it to the plan of each of its data
// sets.
func (c *compiler) compileRule(rs *RuleSpec) {
	where := fmt.Sprintf("rule %q", rs.ID)
	for _, u := range rs.UnlessFailed {
		if !c.seenIDs[u] {
			c.add("%s: unless_failed names %q, which is not an earlier rule", where, u)
		}
	}
	c.seenIDs[rs.ID] = true
	c.messages[rs.Message] = true
	sev := dmicv1.Severity_SEVERITY_ERROR
	if rs.Severity == severityWarning {
		sev = dmicv1.Severity_SEVERITY_WARNING
	}
	rdatasets := c.datasetsOf(rs.Datasets)
	c.s.rules = append(c.s.rules, RuleInfo{ID: rs.ID, Severity: sev, Check: rs.Check, Fields: slices.Clone(rs.Fields),
		ReportField: rs.ReportField, Message: rs.Message, Datasets: rdatasets})

	def, ok := checkByName(rs.Check)
	if !ok {
		if rs.Check != "" {
			c.add("%s: unknown check %q", where, rs.Check)
		}
		return
	}
	base := rule{id: rs.ID, sev: sev, msg: rs.Message, kind: def.kind, unless: rs.UnlessFailed}
	if !compileParams(&base, def, rs, c.d, where, c.add) {
		return
	}
	if def.kind == chkCodeList {
		c.usedLists[rs.Params.CodeList] = true
	}
	switch {
	case def.arity == pair && len(rs.Fields) != 2:
		c.add("%s: check %s compares two fields; %d named", where, def.name, len(rs.Fields))
		return
	case def.arity == perField && len(rs.Fields) == 0:
		c.add("%s: check %s needs at least one field", where, def.name)
		return
	}
	if rs.ReportField != "" && (def.arity != pair || !slices.Contains(rs.Fields, rs.ReportField)) {
		c.add("%s: report_field %q must be one of the two fields of a comparing check", where, rs.ReportField)
		return
	}
	if def.arity == pair && rs.ReportField != "" {
		base.report = slices.Index(rs.Fields, rs.ReportField)
	}

	if rs.When != nil && len(rs.When.In) == 0 {
		c.add("%s: when names no values of %q", where, rs.When.Field)
		return
	}
	declared := map[string]bool{}
	for _, ds := range rdatasets {
		ru := base
		if rs.When != nil {
			ref, ok := c.fields[ds][rs.When.Field]
			if !ok {
				c.add("%s: when: field %q is not declared for dataset %s", where, rs.When.Field, record.DatasetName(ds))
				continue
			}
			ru.when = &when{slot: c.s.plans[ds].slotOf(rs.When.Field, ref.get), values: rs.When.In}
		}
		bad := false
		for _, name := range rs.Fields {
			op, found, ok := c.operand(where, def, rs, ds, name)
			if found {
				declared[name] = true
			}
			if !ok {
				bad = bad || found || !c.notInFormat(def, ds, name)
				continue
			}
			ru.ops = append(ru.ops, op)
		}
		if bad || len(ru.ops) == 0 && len(rs.Fields) > 0 {
			continue
		}
		if def.arity == byObligation && len(rs.Fields) == 0 {
			c.catchAlls = append(c.catchAlls, catchAllRef{rule: len(c.s.plans[ds].rules), ds: ds})
		}
		c.s.plans[ds].rules = append(c.s.plans[ds].rules, ru)
	}
	for _, name := range rs.Fields {
		if !declared[name] && def.arity == perField {
			c.add("%s: field %q is not declared for any of the rule's datasets (%s)", where, name, datasetNames(rdatasets))
		}
	}
}

// operand is the field name of rule rs as read in dataset ds, checked
// against the field's declaration (found: declared for ds; ok: usable by
// the rule, every problem reported). A field-by-field check skips, without
// a problem, a dataset whose records cannot carry the field (notInFormat).
func (c *compiler) operand(where string, def checkDef, rs *RuleSpec, ds dmicv1.Dataset, name string) (op operand, found, ok bool) {
	ref, declared := c.fields[ds][name]
	if !declared {
		// One DATE-001 covers the date fields of three datasets; a field
		// those records can carry must be declared, or the rule restricted.
		if !c.notInFormat(def, ds, name) {
			c.add("%s: field %q is not declared for dataset %s (declare it, or restrict the rule with \"datasets\")", where, name, record.DatasetName(ds))
		}
		return op, false, false
	}
	ok = true
	isInt := ref.spec.Type == typeInteger
	switch {
	case def.integer && !isInt:
		c.add("%s: check %s reads whole numbers; field %q is text", where, def.name, name)
		ok = false
	case !def.integer && isInt:
		c.add("%s: check %s reads text; field %q is a whole number", where, def.name, name)
		ok = false
	}
	if def.arity == byObligation {
		want := obligationOf(def.kind)
		if ref.spec.Obligation != want {
			c.add("%s: field %q is %s, not %s", where, name, ref.spec.Obligation, want)
			ok = false
		}
		c.named[def.kind][ds] = setWith(c.named[def.kind][ds], name)
	}
	if def.kind == chkCodeList {
		if c.checked[ds] == nil {
			c.checked[ds] = map[string]string{}
		}
		c.checked[ds][name] = rs.Params.CodeList
		if ref.spec.CodeList != rs.Params.CodeList {
			c.add("%s: field %q declares code list %q, the rule checks %q", where, name, ref.spec.CodeList, rs.Params.CodeList)
			ok = false
		}
	}
	return operand{slot: c.s.plans[ds].slotOf(name, ref.get), name: name, onDelete: ref.spec.Delete}, true, ok
}

// notInFormat: a field-by-field check, and records of ds cannot carry name.
func (c *compiler) notInFormat(def checkDef, ds dmicv1.Dataset, name string) bool {
	_, inFormat := record.Getter(name, ds)
	return def.arity == perField && !inFormat
}

// assignCatchAlls gives each obligation rule with no fields every field of
// its obligation that no other rule of the same check names.
func (c *compiler) assignCatchAlls() {
	for _, ca := range c.catchAlls {
		ru := &c.s.plans[ca.ds].rules[ca.rule]
		for _, other := range c.catchAlls {
			if other.ds == ca.ds && other.rule < ca.rule && c.s.plans[ca.ds].rules[other.rule].kind == ru.kind {
				c.add("rule %q: rule %q already checks every %s field of dataset %s", ru.id, c.s.plans[ca.ds].rules[other.rule].id,
					obligationOf(ru.kind), record.DatasetName(ca.ds))
			}
		}
		for i := range c.d.Fields {
			f := &c.d.Fields[i]
			ref, ok := c.fields[ca.ds][f.Name]
			// ref.spec == f: this is the field's declaration for the dataset.
			if !ok || ref.spec != f || f.Obligation != obligationOf(ru.kind) || c.named[ru.kind][ca.ds][f.Name] {
				continue
			}
			ru.ops = append(ru.ops, operand{slot: c.s.plans[ca.ds].slotOf(f.Name, ref.get), name: f.Name, onDelete: f.Delete})
			c.named[ru.kind][ca.ds] = setWith(c.named[ru.kind][ca.ds], f.Name)
		}
	}
}

// checkCoverage: every mandatory or required field is checked by an
// obligation rule, and every field's code list by a code_list rule.
func (c *compiler) checkCoverage() {
	for _, ds := range c.s.datasets {
		for name, ref := range sortedFields(c.fields[ds]) {
			f := ref.spec
			switch f.Obligation {
			case ObligationMandatory:
				if !c.named[chkMandatory][ds][name] {
					c.add("field %q: mandatory in dataset %s, but no mandatory rule checks it", name, record.DatasetName(ds))
				}
			case ObligationRequired:
				if !c.named[chkRequired][ds][name] {
					c.add("field %q: required in dataset %s, but no required rule checks it", name, record.DatasetName(ds))
				}
			}
			if f.CodeList != "" && c.checked[ds][name] != f.CodeList {
				c.add("field %q: declares code list %q, but no code_list rule checks it against that list in dataset %s", name, f.CodeList, record.DatasetName(ds))
			}
		}
	}
}

// checkCodeListsUsed: a code list no field or rule uses is a mistake.
func (c *compiler) checkCodeListsUsed() {
	for _, name := range slices.Sorted(maps.Keys(c.d.CodeLists)) {
		used := c.usedLists[name]
		for _, f := range c.d.Fields {
			used = used || f.CodeList == name
		}
		if !used {
			c.add("code list %q: not used by any field or rule", name)
		}
	}
}

func compileParams(ru *rule, def checkDef, rs *RuleSpec, d *Specification, where string, add func(string, ...any)) bool {
	given := paramsSet(rs.Params)
	ok := true
	for _, pn := range paramNames {
		switch {
		case def.required&pn.p != 0 && given&pn.p == 0:
			add("%s: check %s needs param %q", where, def.name, pn.name)
			ok = false
		case (def.required|def.optional)&pn.p == 0 && given&pn.p != 0:
			add("%s: check %s does not use param %q", where, def.name, pn.name)
			ok = false
		}
	}
	if !ok {
		return false
	}
	p := rs.Params
	if p == nil {
		p = &Params{}
	}
	switch def.kind {
	case chkCodeList:
		cl, found := d.CodeLists[p.CodeList]
		if !found {
			add("%s: unknown code list %q", where, p.CodeList)
			return false
		}
		if len(cl.Codes) <= shortCodeList {
			ru.list = slices.Sorted(maps.Keys(cl.Codes))
			break
		}
		ru.codes = make(map[string]struct{}, len(cl.Codes))
		for c := range cl.Codes {
			ru.codes[c] = struct{}{}
		}
	case chkFormat:
		f, found := formatByName(p.Format)
		if !found {
			add("%s: unknown format %q", where, p.Format)
			return false
		}
		ru.format = f.kind
		switch {
		case f.kind == fmtDigits && p.Length <= 0:
			add("%s: format digits needs a positive param \"length\"", where)
			return false
		case f.kind != fmtDigits && p.Length != 0:
			add("%s: param \"length\" is only for format digits", where)
			return false
		}
		ru.length = p.Length
	case chkDateNotBefore:
		n, valid := parseDate(p.Date)
		if !valid {
			add("%s: param \"date\" %q is not a date YYYY-MM-DD", where, p.Date)
			return false
		}
		ru.date = n
	case chkNotIn:
		if len(p.Values) == 0 {
			add("%s: param \"values\" is empty", where)
			return false
		}
		ru.values = p.Values
	case chkPracticeKnown:
		ru.values = p.Except
	case chkNHSStatus:
		if len(p.Statuses) == 0 {
			add("%s: param \"statuses\" is empty", where)
			return false
		}
		ru.values = p.Statuses
		switch p.Number {
		case "missing":
			ru.missing = true
		case "present":
		default:
			add("%s: param \"number\" %q must be \"missing\" or \"present\"", where, p.Number)
			return false
		}
	case chkMinInt:
		ru.min = *p.Min
	}
	return true
}

func obligationOf(k checkKind) string {
	if k == chkMandatory {
		return ObligationMandatory
	}
	return ObligationRequired
}

func setWith(m map[string]bool, name string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[name] = true
	return m
}

// sortedFields iterates a dataset's fields by name, so problems come in a
// stable order.
func sortedFields(m map[string]fieldRef) func(func(string, fieldRef) bool) {
	return func(yield func(string, fieldRef) bool) {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			if !yield(name, m[name]) {
				return
			}
		}
	}
}

// datasetNames lists datasets by their canonical names.
func datasetNames(ds []dmicv1.Dataset) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = record.DatasetName(d)
	}
	return strings.Join(names, ", ")
}
