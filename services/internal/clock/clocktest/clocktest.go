// Package clocktest gives the date-sensitive test suites their "today".
//
// A test that depends on the date takes today from Today and builds every
// date of its scenario from it (an effective date nine days on, a discharge
// tomorrow) or from fixed dates safely in its past (a 2025 activity). By
// default today is DefaultToday, so that the suite gives the same results
// whatever day it runs. The clock guard (services/internal/clock, TestClockGuard)
// runs every suite that imports this package again with EnvToday set to each
// of GuardDays, and fails if any result differs.
package clocktest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/clock"
)

// EnvToday names the environment variable that moves the suites' today: an
// RFC 3339 time, or a YYYY-MM-DD date (read as midday UTC).
const EnvToday = "DMIC_TEST_TODAY"

// DefaultToday is today when EnvToday is unset: a fixed day, after every
// fixed fixture date (activity dates to 2026-10, built-in specifications in
// effect from 2026-04-01), so that nothing drifts as the calendar moves.
var DefaultToday = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// GuardDays are the other days the clock guard runs the suites on. Each is
// there for a reason.
func GuardDays() []time.Time {
	return []time.Time{
		// The day the wall-clock defect was found: a specification loaded in
		// a test took effect in the wall clock's calendar (issue 9).
		time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		// 00:30 BST on 1 April 2027 in England, still 31 March in UTC: the
		// first minutes of a financial year, where a calendar read in UTC
		// instead of Europe/London picks the wrong year and version.
		time.Date(2027, 3, 31, 23, 30, 0, 0, time.UTC),
		// A leap day: ages, "a year ago" and day arithmetic.
		time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC),
		// A new decade, years after every fixture.
		time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// Today is the suite's today: EnvToday if set, else DefaultToday. A value
// that cannot be read fails the test rather than falling back silently.
func Today(t testing.TB) time.Time {
	t.Helper()
	d, err := today()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Now is Today for package-level fixtures, which have no test to fail: it
// panics on a value of EnvToday that cannot be read.
func Now() time.Time {
	d, err := today()
	if err != nil {
		panic(err)
	}
	return d
}

func today() (time.Time, error) {
	s := os.Getenv(EnvToday)
	if s == "" {
		return DefaultToday, nil
	}
	d, err := Parse(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s=%q: want an RFC 3339 time or a YYYY-MM-DD date", EnvToday, s)
	}
	return d, nil
}

// Clock is a clock stopped at Today.
func Clock(t testing.TB) clock.Clock { return clock.Fixed(Today(t)) }

// Manual is a settable clock starting at Today.
func Manual(t testing.TB) *clock.Manual { return clock.NewManual(Today(t)) }

// Parse reads a day as EnvToday holds it.
func Parse(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, err
	}
	return d.Add(12 * time.Hour), nil
}

// Format writes a day as EnvToday holds it.
func Format(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Date is t's calendar date as YYYY-MM-DD in Europe/London (where dmic's
// dates are read), for fixtures relative to today.
func Date(t time.Time) string {
	if loc, err := time.LoadLocation("Europe/London"); err == nil {
		t = t.In(loc)
	}
	return t.Format(time.DateOnly)
}
