package spec

import (
	"slices"
	"strings"
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// variant is a built-in document under another version and effective date.
func variant(t *testing.T, name, version, effective string) []byte {
	t.Helper()
	doc, err := builtInSpecs.ReadFile(name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(doc), `"version": "2026.1"`, `"version": "`+version+`"`, 1)
	s = strings.Replace(s, `"effective_from": "2026-04-01"`, `"effective_from": "`+effective+`"`, 1)
	if s == string(doc) {
		t.Fatal("variant did not change the document")
	}
	return []byte(s)
}

func with(t *testing.T, reg *Registry, doc []byte) (*Registry, *Spec) {
	t.Helper()
	next, s, created, err := reg.With(doc, OriginLoaded, fixedNow)
	if err != nil || !created {
		t.Fatalf("With: created %v, %v", created, err)
	}
	return next, s
}

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSelectByEffectiveDate(t *testing.T) {
	reg, v2 := with(t, builtIn(t), variant(t, "apc", "2026.2", "2026-10-01"))
	v1, _ := reg.Get("apc", "2026.1")
	for _, tt := range []struct {
		day  string
		want *Spec
	}{
		{"2026-01-01T12:00:00Z", v1}, // before every version: the earliest
		{"2026-04-01T00:00:00Z", v1},
		{"2026-09-30T12:00:00Z", v1},
		{"2026-10-01T12:00:00Z", v2},
		{"2027-06-01T12:00:00Z", v2},
	} {
		if got := reg.Select(apc, provider, day(tt.day)); got != tt.want {
			t.Errorf("%s: selected %s, want %s", tt.day, got.Label(), tt.want.Label())
		}
	}
	// Unspecified source counts as provider; other datasets are unaffected.
	if got := reg.Select(apc, dmicv1.Source_SOURCE_UNSPECIFIED, day("2026-10-02T00:00:00Z")); got != v2 {
		t.Errorf("unspecified source: %s", got.Label())
	}
	if got := reg.Select(op, provider, day("2026-10-02T00:00:00Z")); got.Label() != "outpatient/2026.1" {
		t.Errorf("outpatient: %s", got.Label())
	}
	if got := reg.Select(apc, national, day("2026-10-02T00:00:00Z")); got.Label() != "national/2026.1" {
		t.Errorf("national apc: %s", got.Label())
	}
	if got := reg.Select(lf, national, day("2026-10-02T00:00:00Z")); got != nil {
		t.Errorf("national local flow: %s, want none", got.Label())
	}
	if got := reg.Select(dmicv1.Dataset_DATASET_UNSPECIFIED, provider, day("2026-10-02T00:00:00Z")); got != nil {
		t.Errorf("no dataset: %s", got.Label())
	}
	if !reg.InEffect(v2, day("2026-10-01T12:00:00Z")) || reg.InEffect(v1, day("2026-10-01T12:00:00Z")) || !reg.InEffect(v1, day("2026-09-30T12:00:00Z")) {
		t.Error("InEffect disagrees with Select")
	}
}

// Effective dates are London calendar dates: 23:30 UTC on 30 September is
// already 1 October in London (BST).
func TestSelectUsesLondonCalendar(t *testing.T) {
	if london() == time.UTC {
		t.Skip("no tzdata for Europe/London")
	}
	reg, v2 := with(t, builtIn(t), variant(t, "apc", "2026.2", "2026-10-01"))
	if got := reg.Select(apc, provider, day("2026-09-30T23:30:00Z")); got != v2 {
		t.Errorf("00:30 BST on 1 October: %s", got.Label())
	}
	if got := reg.Select(apc, provider, day("2026-09-30T22:59:00Z")); got == v2 {
		t.Errorf("23:59 BST on 30 September: %s", got.Label())
	}
}

func TestSelectOnlyFutureVersion(t *testing.T) {
	reg, s := with(t, &Registry{}, variant(t, "outpatient", "2027.1", "2027-04-01"))
	if got := reg.Select(op, provider, day("2026-05-01T00:00:00Z")); got != s {
		t.Errorf("a version not yet in effect is still the only one: got %v", got)
	}
	if reg.Select(apc, provider, day("2026-05-01T00:00:00Z")) != nil {
		t.Error("apc selected from an outpatient-only registry")
	}
}

// Of two versions effective the same day, the one loaded later applies.
func TestSelectSameDayLaterLoadedWins(t *testing.T) {
	reg, fix := with(t, builtIn(t), variant(t, "apc", "2026.1a", "2026-04-01"))
	if got := reg.Select(apc, provider, day("2026-05-01T00:00:00Z")); got != fix {
		t.Errorf("selected %s, want %s", got.Label(), fix.Label())
	}
}

func TestWithIdempotentAndConflicting(t *testing.T) {
	base := builtIn(t)
	doc := variant(t, "apc", "2026.2", "2026-10-01")
	reg, s := with(t, base, doc)
	if s.Origin() != OriginLoaded || !s.LoadedTime().Equal(fixedNow) {
		t.Errorf("origin %q, loaded %v", s.Origin(), s.LoadedTime())
	}
	if len(base.List()) != 5 || len(reg.List()) != 6 {
		t.Fatalf("base %d specs, next %d: With changed its receiver", len(base.List()), len(reg.List()))
	}

	// The same bytes again: nothing new.
	again, held, created, err := reg.With(slices.Clone(doc), OriginLoaded, fixedNow)
	if err != nil || created || again != reg || held != s {
		t.Errorf("same document again: created %v, err %v, same registry %v, same spec %v", created, err, again == reg, held == s)
	}
	// A built-in document loaded again is the built-in spec.
	builtInDoc, _ := builtInSpecs.ReadFile("apc.json")
	if _, held, created, err := reg.With(builtInDoc, OriginLoaded, fixedNow); err != nil || created || held.Origin() != OriginBuiltIn {
		t.Errorf("built-in document loaded: created %v, err %v, origin %q", created, err, held.Origin())
	}

	// Other bytes under the same version: refused, registry unchanged.
	changed := []byte(strings.Replace(string(doc), "mandatory field is missing", "a mandatory field is missing", 1))
	next, got, created, err := reg.With(changed, OriginLoaded, fixedNow)
	if err == nil || created || got != nil || next != reg {
		t.Fatalf("changed document under the same version: created %v, err %v", created, err)
	}
	if want := "version 2026.2 of specification apc is already loaded with different content; give it a new version"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}

	// A document that does not compile: refused, registry unchanged.
	if next, _, _, err := reg.With([]byte(`{"id":"x"}`), OriginLoaded, fixedNow); err == nil || next != reg {
		t.Errorf("bad document: err %v", err)
	}
}

func TestListAndGet(t *testing.T) {
	reg, _ := with(t, builtIn(t), variant(t, "apc", "2025.9", "2025-04-01"))
	var labels []string
	for _, s := range reg.List() {
		labels = append(labels, s.Label())
	}
	want := []string{"apc/2025.9", "apc/2026.1", "emergency_care/2026.1", "local_flow/2026.1", "national/2026.1", "outpatient/2026.1"}
	if !slices.Equal(labels, want) {
		t.Errorf("List %v, want %v", labels, want)
	}
	if s, ok := reg.Get("local_flow", "2026.1"); !ok || s.Label() != "local_flow/2026.1" {
		t.Errorf("Get local_flow/2026.1: %v %v", s, ok)
	}
	if _, ok := reg.Get("local_flow", "2027.1"); ok {
		t.Error("Get of a version never loaded")
	}
	var nilReg *Registry
	if nilReg.List() != nil || nilReg.Select(apc, provider, fixedNow) != nil {
		t.Error("nil registry is not empty")
	}
}

// Backdated reads today in England's calendar: at 00:30 BST on 1 April
// (still 31 March in UTC) a version effective 31 March is backdated, and one
// effective 1 April is not.
func TestBackdatedUsesLondonCalendar(t *testing.T) {
	if london() == time.UTC {
		t.Skip("no tzdata for Europe/London")
	}
	_, march := with(t, &Registry{}, variant(t, "apc", "2027.0", "2027-03-31"))
	_, april := with(t, &Registry{}, variant(t, "apc", "2027.1", "2027-04-01"))
	firstMinutes := day("2027-03-31T23:30:00Z")
	if !march.Backdated(firstMinutes) || april.Backdated(firstMinutes) {
		t.Errorf("at %v: 31 March backdated %v, 1 April backdated %v; want true, false", firstMinutes, march.Backdated(firstMinutes), april.Backdated(firstMinutes))
	}
	if march.Backdated(day("2027-03-31T12:00:00Z")) {
		t.Error("a version effective today is not backdated")
	}
	if got := CalendarDate(firstMinutes); got != "2027-04-01" {
		t.Errorf("CalendarDate = %s, want 2027-04-01", got)
	}
}
