// Package dsa is data sharing agreements as data: the document (a versioned
// JSON document with a published JSON Schema, agreement.schema.json), the
// checks that refuse a malformed one with every problem and its path, an
// agreement's state on a day (pending, active, expired, revoked), and what it
// lets a recipient see (data sets, commissioners, activity period, columns).
//
// It is load's domain: load is the service that turns an agreement into a
// recipient's data (docs/data-access.md). Plain Go: no transport, and "now"
// is always an argument.
package dsa

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London wherever the binary runs
)

// Schema is the published JSON Schema of an agreement document.
//
//go:embed agreement.schema.json
var Schema []byte

// The states of an agreement version on a day.
const (
	Pending    = "pending"
	Active     = "active"
	Expired    = "expired"
	Revoked    = "revoked"
	Superseded = "superseded"
)

// What happens to a recipient's data when its agreement ends.
const (
	OnEndDrop = "drop" // the recipient database is dropped
	OnEndKeep = "keep" // kept, frozen (no new rows), readable by nobody but operators
)

// Pseudonym domain kinds.
const (
	DomainRecipient = "recipient"
	DomainProject   = "project"
)

// Agreement is one version of a data sharing agreement.
type Agreement struct {
	ID             string         `json:"id"`
	Version        string         `json:"version"`
	Title          string         `json:"title,omitempty"`
	Recipient      Recipient      `json:"recipient"`
	Purpose        string         `json:"purpose"`
	LegalBasis     LegalBasis     `json:"legal_basis"`
	Datasets       []string       `json:"datasets"`
	Columns        []string       `json:"columns"`
	RowScope       RowScope       `json:"row_scope"`
	ActivityPeriod Period         `json:"activity_period"`
	StartDate      string         `json:"start_date"`
	ExpiryDate     string         `json:"expiry_date"`
	OnEnd          string         `json:"on_end"`
	Pseudonyms     PseudonymScope `json:"pseudonym_domain"`
	SmallNumbers   int            `json:"small_number_threshold"`
	Approvers      []Approver     `json:"approvers"`

	sha string
}

// Recipient is the organisation that receives the data.
type Recipient struct {
	// ODSCode of an ICB, sub-ICB, NHS England region or specialised hub.
	ODSCode string `json:"ods_code"`
	Name    string `json:"name"`
	// ActingFor: a CSU's own ODS code, when a CSU receives for the recipient.
	ActingFor string `json:"acting_for,omitempty"`
}

// LegalBasis is the basis of the flow: free text and a reference.
type LegalBasis struct {
	Text      string `json:"text"`
	Reference string `json:"reference"`
}

// RowScope is the rows the recipient may see.
type RowScope struct {
	// CommissionerCodes assigned by CAM (commissioner_code).
	CommissionerCodes []string `json:"commissioner_codes"`
}

// Period is a range of activity dates, both ends included.
type Period struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// PseudonymScope names the recipient's pseudonym domain.
type PseudonymScope struct {
	Kind    string `json:"kind"`
	Project string `json:"project,omitempty"`
}

// Approver is a person who approved the agreement.
type Approver struct {
	Name string `json:"name"`
	Role string `json:"role"`
	Date string `json:"date"`
}

// Known is what an agreement may name: the data sets and the columns of the
// analyst model (chstore's activity table).
type Known struct {
	Datasets []string
	Columns  []string
}

// Problems is a refused document's problems, each "path: what".
type Problems []string

func (p Problems) Error() string {
	return fmt.Sprintf("%d problem(s):\n  %s", len(p), strings.Join(p, "\n  "))
}

var (
	idRE      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,38}[a-z0-9]$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)
	odsRE     = regexp.MustCompile(`^[A-Z0-9]{3,5}$`)
	projectRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)
)

// Parse reads and checks a document. A document with problems is refused with
// all of them (a Problems error).
func Parse(doc []byte, known Known) (*Agreement, error) {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, Problems{"$: not JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, Problems{"$: more than one JSON value"}
	}
	c := &checker{known: known}
	a := c.agreement(raw)
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	sum := sha256.Sum256(doc)
	a.sha = hex.EncodeToString(sum[:])
	return a, nil
}

// SHA256 of the document it was parsed from.
func (a *Agreement) SHA256() string { return a.sha }

// Label is id@version.
func (a *Agreement) Label() string { return a.ID + "@" + a.Version }

// PseudonymDomain is the key domain of the recipient's pseudonyms:
// recipient-<ods> (the recipient's own) or project-<name>.
func (a *Agreement) PseudonymDomain() string {
	if a.Pseudonyms.Kind == DomainProject {
		return "project-" + a.Pseudonyms.Project
	}
	return "recipient-" + strings.ToLower(a.Recipient.ODSCode)
}

// Database is the recipient's ClickHouse database (and user) for this
// agreement, beside the base database: <base>_r_<id with _ for ->.
func (a *Agreement) Database(base string) string {
	return base + "_r_" + strings.ReplaceAll(a.ID, "-", "_")
}

// Covers reports whether a record of that data set, commissioner and activity
// date (YYYY-MM-DD) is in the agreement's scope.
func (a *Agreement) Covers(dataset, commissioner, activityDate string) bool {
	return slices.Contains(a.Datasets, dataset) &&
		slices.Contains(a.RowScope.CommissionerCodes, commissioner) &&
		activityDate >= a.ActivityPeriod.From && activityDate <= a.ActivityPeriod.To
}

// Day is the calendar day of t in England, YYYY-MM-DD: agreements start and
// expire by England's calendar.
func Day(t time.Time) string { return t.In(london).Format(time.DateOnly) }

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// DateState is the state by dates alone on now: pending before the start
// date, active from it through the expiry date, expired after.
func (a *Agreement) DateState(now time.Time) string {
	d := Day(now)
	switch {
	case d < a.StartDate:
		return Pending
	case d > a.ExpiryDate:
		return Expired
	}
	return Active
}

type checker struct {
	known    Known
	problems Problems
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, path+": "+fmt.Sprintf(format, args...))
}

var fields = []string{"id", "version", "title", "recipient", "purpose", "legal_basis", "datasets", "columns",
	"row_scope", "activity_period", "start_date", "expiry_date", "on_end", "pseudonym_domain",
	"small_number_threshold", "approvers"}

func (c *checker) object(path string, v any, allowed []string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			c.add(path, "required")
		} else {
			c.add(path, "must be an object")
		}
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			c.add(path+"."+k, "unknown field (allowed: %s)", strings.Join(allowed, ", "))
		}
	}
	return m
}

// str is a required (or optional) string of at most max characters.
func (c *checker) str(path string, m map[string]any, key string, required bool, max int) string {
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			c.add(path+"."+key, "required")
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		c.add(path+"."+key, "must be a string")
		return ""
	}
	s = strings.TrimSpace(s)
	if required && s == "" {
		c.add(path+"."+key, "must not be empty")
	}
	if len(s) > max {
		c.add(path+"."+key, "longer than %d characters", max)
	}
	return s
}

func (c *checker) pattern(path string, m map[string]any, key string, re *regexp.Regexp, what string) string {
	s := c.str(path, m, key, true, 200)
	if s != "" && !re.MatchString(s) {
		c.add(path+"."+key, "%q is not %s", s, what)
	}
	return s
}

func (c *checker) date(path string, m map[string]any, key string) string {
	s := c.str(path, m, key, true, 10)
	if s != "" {
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			c.add(path+"."+key, "%q is not a date (YYYY-MM-DD)", s)
			return ""
		}
	}
	return s
}

func (c *checker) strings(path string, m map[string]any, key string, check func(p, s string)) []string {
	v, ok := m[key]
	if !ok || v == nil {
		c.add(path+"."+key, "required")
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		c.add(path+"."+key, "must be an array of strings")
		return nil
	}
	if len(arr) == 0 {
		c.add(path+"."+key, "must not be empty")
	}
	var out []string
	for i, e := range arr {
		p := fmt.Sprintf("%s.%s[%d]", path, key, i)
		s, ok := e.(string)
		if !ok {
			c.add(p, "must be a string")
			continue
		}
		if slices.Contains(out, s) {
			c.add(p, "%q is listed twice", s)
			continue
		}
		check(p, s)
		out = append(out, s)
	}
	return out
}

func (c *checker) agreement(raw any) *Agreement {
	a := &Agreement{}
	m := c.object("$", raw, fields)
	if m == nil {
		return a
	}
	a.ID = c.pattern("$", m, "id", idRE, "an id (2-40 of a-z 0-9 -, starting with a letter)")
	a.Version = c.pattern("$", m, "version", versionRE, "a version (1-32 of A-Z a-z 0-9 . _ -)")
	a.Title = c.str("$", m, "title", false, 200)
	if r := c.object("$.recipient", m["recipient"], []string{"ods_code", "name", "acting_for"}); r != nil {
		a.Recipient.ODSCode = c.pattern("$.recipient", r, "ods_code", odsRE, "an ODS code (3-5 of A-Z 0-9)")
		a.Recipient.Name = c.str("$.recipient", r, "name", true, 200)
		a.Recipient.ActingFor = c.str("$.recipient", r, "acting_for", false, 5)
		if a.Recipient.ActingFor != "" && !odsRE.MatchString(a.Recipient.ActingFor) {
			c.add("$.recipient.acting_for", "%q is not an ODS code", a.Recipient.ActingFor)
		}
	}
	a.Purpose = c.str("$", m, "purpose", true, 2000)
	if lb := c.object("$.legal_basis", m["legal_basis"], []string{"text", "reference"}); lb != nil {
		a.LegalBasis.Text = c.str("$.legal_basis", lb, "text", true, 2000)
		a.LegalBasis.Reference = c.str("$.legal_basis", lb, "reference", true, 200)
	}
	a.Datasets = c.strings("$", m, "datasets", func(p, s string) {
		if !slices.Contains(c.known.Datasets, s) {
			c.add(p, "unknown data set %q (known: %s)", s, strings.Join(c.known.Datasets, ", "))
		}
	})
	a.Columns = c.strings("$", m, "columns", func(p, s string) {
		if !slices.Contains(c.known.Columns, s) {
			c.add(p, "%q is not a column of the analyst model that an agreement may allow", s)
		}
	})
	if rs := c.object("$.row_scope", m["row_scope"], []string{"commissioner_codes"}); rs != nil {
		a.RowScope.CommissionerCodes = c.strings("$.row_scope", rs, "commissioner_codes", func(p, s string) {
			if !odsRE.MatchString(s) {
				c.add(p, "%q is not a commissioner code (3-5 of A-Z 0-9)", s)
			}
		})
	}
	if ap := c.object("$.activity_period", m["activity_period"], []string{"from", "to"}); ap != nil {
		a.ActivityPeriod.From = c.date("$.activity_period", ap, "from")
		a.ActivityPeriod.To = c.date("$.activity_period", ap, "to")
		if a.ActivityPeriod.From != "" && a.ActivityPeriod.To != "" && a.ActivityPeriod.To < a.ActivityPeriod.From {
			c.add("$.activity_period.to", "before from (%s)", a.ActivityPeriod.From)
		}
	}
	a.StartDate = c.date("$", m, "start_date")
	a.ExpiryDate = c.date("$", m, "expiry_date")
	if a.StartDate != "" && a.ExpiryDate != "" && a.ExpiryDate < a.StartDate {
		c.add("$.expiry_date", "before start_date (%s)", a.StartDate)
	}
	a.OnEnd = c.str("$", m, "on_end", true, 10)
	if a.OnEnd != "" && a.OnEnd != OnEndDrop && a.OnEnd != OnEndKeep {
		c.add("$.on_end", "%q: want %q or %q", a.OnEnd, OnEndDrop, OnEndKeep)
	}
	if pd := c.object("$.pseudonym_domain", m["pseudonym_domain"], []string{"kind", "project"}); pd != nil {
		a.Pseudonyms.Kind = c.str("$.pseudonym_domain", pd, "kind", true, 20)
		a.Pseudonyms.Project = c.str("$.pseudonym_domain", pd, "project", false, 31)
		switch a.Pseudonyms.Kind {
		case DomainRecipient:
			if a.Pseudonyms.Project != "" {
				c.add("$.pseudonym_domain.project", "only with kind %q", DomainProject)
			}
		case DomainProject:
			if !projectRE.MatchString(a.Pseudonyms.Project) {
				c.add("$.pseudonym_domain.project", "required with kind %q: 1-31 of a-z 0-9 -", DomainProject)
			}
		case "":
		default:
			c.add("$.pseudonym_domain.kind", "%q: want %q or %q", a.Pseudonyms.Kind, DomainRecipient, DomainProject)
		}
	}
	switch v := m["small_number_threshold"].(type) {
	case json.Number:
		n, err := v.Int64()
		if err != nil || n < 1 || n > 1000 {
			c.add("$.small_number_threshold", "%s: want a whole number from 1 to 1000", v)
		}
		a.SmallNumbers = int(n)
	case nil:
		c.add("$.small_number_threshold", "required")
	default:
		c.add("$.small_number_threshold", "must be a number")
	}
	switch v := m["approvers"].(type) {
	case []any:
		if len(v) == 0 {
			c.add("$.approvers", "must not be empty: an agreement is approved by someone")
		}
		for i, e := range v {
			p := fmt.Sprintf("$.approvers[%d]", i)
			if o := c.object(p, e, []string{"name", "role", "date"}); o != nil {
				a.Approvers = append(a.Approvers, Approver{Name: c.str(p, o, "name", true, 200),
					Role: c.str(p, o, "role", true, 200), Date: c.date(p, o, "date")})
			}
		}
	case nil:
		c.add("$.approvers", "required")
	default:
		c.add("$.approvers", "must be an array")
	}
	return a
}
