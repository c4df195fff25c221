// Package clock is dmic's one notion of "now".
//
// Commissioning data is full of dates: the specification version in effect on
// the day of receipt, whether an activity date is in the future, a key's
// rotation time, a submission's receipt time. Every such decision reads the
// time from a Clock it was given, never from the wall clock, so that a test
// (or a replay) that sets the clock sets it for every decision at once, and
// the suite gives the same results next month and in 2030.
//
// Only the process edge calls System: a service's composition root (internal/service and each main),
// a command's main, the pipeline runner's timings and the bench. A test in
// this package (edge_test.go) fails if any other non-test code reads the wall
// clock.
package clock

import (
	"sync"
	"time"
)

// Clock returns the current time. The zero Clock (nil) is the wall clock, so
// that a component built without one still works; composition roots pass
// System explicitly.
type Clock func() time.Time

// Now is the clock's current time.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// System is the wall clock. Call it only at the process edge.
func System() Clock { return time.Now }

// Fixed is a clock stopped at t.
func Fixed(t time.Time) Clock { return func() time.Time { return t } }

// Manual is a clock that moves only when told to: a test sets "today",
// then advances it across an effective date. It is safe for concurrent use.
type Manual struct {
	mu sync.Mutex
	t  time.Time
}

// NewManual is a Manual clock at t.
func NewManual(t time.Time) *Manual { return &Manual{t: t} }

// Now is the time last set.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

// Set moves the clock to t (backwards too).
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	m.t = t
	m.mu.Unlock()
}

// Advance moves the clock on by d.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	m.t = m.t.Add(d)
	m.mu.Unlock()
}

// Clock is m as a Clock, to hand to components.
func (m *Manual) Clock() Clock { return m.Now }
