package spec

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/validate/specs"
)

// builtInSpecs are the specification documents shipped in the binary.
var builtInSpecs = specs.FS

// Origins of a specification in a registry.
const (
	OriginBuiltIn = "built-in"
	OriginLoaded  = "loaded"
)

// london is the calendar effective dates and "today" are read in. Without
// tzdata on the host it is UTC, at most a day behind London's.
var london = sync.OnceValue(func() *time.Location {
	if loc, err := time.LoadLocation("Europe/London"); err == nil {
		return loc
	}
	return time.UTC
})

// sources a registry indexes: unspecified counts as provider.
const (
	srcProvider = iota
	srcNational
	numSources
)

func sourceIndex(s dmicv1.Source) int {
	if s == dmicv1.Source_SOURCE_NATIONAL {
		return srcNational
	}
	return srcProvider
}

// Registry is an immutable set of specifications. With returns a new
// registry; one in use by validators is never changed, so any number of
// goroutines may read it.
type Registry struct {
	specs []*Spec // in the order added
	// index[dataset][source] are the specs covering them, by effective date,
	// ties in the order added.
	index [numDatasets][numSources][]*Spec
}

// BuiltInDocument is the document of the built-in specification name (apc,
// outpatient, emergency_care, local_flow, national), as shipped.
func BuiltInDocument(name string) ([]byte, error) {
	doc, err := builtInSpecs.ReadFile(name + ".json")
	if err != nil {
		return nil, fmt.Errorf("built-in specification %q: %w", name, err)
	}
	return doc, nil
}

// BuiltIn is a registry of the specifications embedded in the binary
// (services/validate/specs), origin "built-in".
func BuiltIn() (*Registry, error) {
	names, err := fs.Glob(builtInSpecs, "*.json")
	if err != nil {
		return nil, fmt.Errorf("built-in specifications: %w", err)
	}
	reg := &Registry{}
	var errs []error
	for _, name := range names {
		doc, err := builtInSpecs.ReadFile(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("built-in specification %s: %w", name, err))
			continue
		}
		// A built-in specification was never loaded: no loaded time.
		next, _, _, err := reg.With(doc, OriginBuiltIn, time.Time{})
		if err != nil {
			errs = append(errs, fmt.Errorf("built-in specification %s: %w", name, err))
			continue
		}
		reg = next
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return reg, nil
}

// With compiles doc and returns a registry that also holds it, the compiled
// spec, and whether it is new. A document whose id and version are already
// held is not added again: with the same bytes (SHA-256) it is the held spec
// and created is false; with other bytes it is an error, since a version,
// once published, must not change. r itself is not changed. origin is
// recorded on the spec (OriginBuiltIn, OriginLoaded), and so is loaded, when
// it was loaded (the caller's clock; zero for a built-in one).
func (r *Registry) With(doc []byte, origin string, loaded time.Time) (next *Registry, s *Spec, created bool, err error) {
	if r == nil {
		r = &Registry{}
	}
	s, err = Compile(doc)
	if err != nil {
		return r, nil, false, err
	}
	if held, ok := r.Get(s.ID(), s.Version()); ok {
		if held.SHA256() == s.SHA256() {
			return r, held, false, nil
		}
		return r, nil, false, fmt.Errorf("version %s of specification %s is already loaded with different content; give it a new version", s.Version(), s.ID())
	}
	s.origin = origin
	s.loaded = loaded
	next = &Registry{specs: append(slices.Clip(r.specs), s)}
	next.index = r.index
	for _, d := range s.datasets {
		src := sourceIndex(s.source)
		list := append(slices.Clip(r.index[d][src]), s)
		// Stable: equal dates keep the order added, so of two versions
		// effective the same day the later loaded wins.
		slices.SortStableFunc(list, func(a, b *Spec) int { return cmp.Compare(a.effective, b.effective) })
		next.index[d][src] = list
	}
	return next, s, true, nil
}

// Select is the specification for records of dataset ds from source src
// received on day: of the specifications covering (ds, src), the one with
// the latest effective date on or before day's calendar date in
// Europe/London; if none is in effect yet, the earliest. Source unspecified
// counts as provider. nil when no specification covers (ds, src).
func (r *Registry) Select(ds dmicv1.Dataset, src dmicv1.Source, day time.Time) *Spec {
	if r == nil || ds <= 0 || int(ds) >= numDatasets {
		return nil
	}
	list := r.index[ds][sourceIndex(src)]
	if len(list) == 0 {
		return nil
	}
	return pick(list, civilDate(day, london()))
}

// pick is the last spec of list effective on or before date, else the first.
func pick(list []*Spec, date int) *Spec {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].effective <= date {
			return list[i]
		}
	}
	return list[0]
}

// Backdated reports whether s takes effect before day's calendar date in
// Europe/London: loaded on day, it would judge records received before it was
// loaded, which are validated (or replayed) from then on.
func (s *Spec) Backdated(day time.Time) bool {
	return s.effective < civilDate(day, london())
}

// CalendarDate is day's date in the calendar effective dates are read in
// (Europe/London), YYYY-MM-DD.
func CalendarDate(day time.Time) string {
	return day.In(london()).Format(time.DateOnly)
}

// InEffect reports whether s is what Select answers on day for one of the
// datasets it covers.
func (r *Registry) InEffect(s *Spec, day time.Time) bool {
	for _, d := range s.datasets {
		if r.Select(d, s.source, day) == s {
			return true
		}
	}
	return false
}

// List is every specification, sorted by id, effective date and version.
func (r *Registry) List() []*Spec {
	if r == nil {
		return nil
	}
	out := slices.Clone(r.specs)
	slices.SortStableFunc(out, func(a, b *Spec) int {
		return cmp.Or(cmp.Compare(a.ID(), b.ID()), cmp.Compare(a.effective, b.effective), cmp.Compare(a.Version(), b.Version()))
	})
	return out
}

// Get is the specification with this id and version.
func (r *Registry) Get(id, version string) (*Spec, bool) {
	if r == nil {
		return nil, false
	}
	for _, s := range r.specs {
		if s.ID() == id && s.Version() == version {
			return s, true
		}
	}
	return nil, false
}
