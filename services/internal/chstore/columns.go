package chstore

import (
	"time"
)

// column is one column of a table: its DDL, and for inserted columns how to
// build its values from a batch of rows of type R. One list per table drives
// the CREATE TABLE, the ALTER that adds missing columns, the INSERT column
// list and the appends, so they cannot drift apart.
type column[R any] struct {
	name string
	typ  string
	// def is a DEFAULT expression. A column with one and no values is filled
	// by the server and left out of INSERTs.
	def string
	// values returns the column's values for rows as a typed slice
	// ([]string, []uint64, []time.Time...) for one columnar append: a
	// per-row Append(...any) would box every value.
	values func(rows []R) any
}

func (c column[R]) ddl() string {
	s := c.name + " " + c.typ
	if c.def != "" {
		s += " DEFAULT " + c.def
	}
	return s
}

func fill[R, V any](get func(*R) V) func([]R) any {
	return func(rows []R) any {
		out := make([]V, len(rows))
		for i := range rows {
			out[i] = get(&rows[i])
		}
		return out
	}
}

func strCol[R any](name string, get func(*R) string) column[R] {
	return column[R]{name: name, typ: "String", values: fill(get)}
}

func u64Col[R any](name string, get func(*R) uint64) column[R] {
	return column[R]{name: name, typ: "UInt64", values: fill(get)}
}

func u8Col[R any](name string, get func(*R) uint8) column[R] {
	return column[R]{name: name, typ: "UInt8", values: fill(get)}
}

func i16Col[R any](name string, get func(*R) int16) column[R] {
	return column[R]{name: name, typ: "Int16", values: fill(get)}
}

func i32Col[R any](name string, get func(*R) int32) column[R] {
	return column[R]{name: name, typ: "Int32", values: fill(get)}
}

func i64Col[R any](name string, get func(*R) int64) column[R] {
	return column[R]{name: name, typ: "Int64", values: fill(get)}
}

// dateCol is a Date; get must return a date within dateMin..dateMax (the
// driver does not range-check and would wrap silently).
func dateCol[R any](name string, get func(*R) time.Time) column[R] {
	return column[R]{name: name, typ: "Date", values: fill(get)}
}

// nullDateCol is a Nullable(Date): nil when the record has no valid date.
func nullDateCol[R any](name string, get func(*R) *time.Time) column[R] {
	return column[R]{name: name, typ: "Nullable(Date)", values: fill(get)}
}

func dateTimeCol[R any](name string, get func(*R) time.Time) column[R] {
	return column[R]{name: name, typ: "DateTime", values: fill(get)}
}

func nullDateTimeCol[R any](name string, get func(*R) *time.Time) column[R] {
	return column[R]{name: name, typ: "Nullable(DateTime)", values: fill(get)}
}

func strArrayCol[R any](name string, get func(*R) []string) column[R] {
	return column[R]{name: name, typ: "Array(String)", values: fill(get)}
}

// withDefault gives c a DEFAULT expression: rows inserted without the column
// (by an older writer, or copied from an older table) get it. c is still
// inserted by this version.
func withDefault[R any](c column[R], expr string) column[R] {
	c.def = expr
	return c
}

// serverCol is a column the server computes from the others (a DEFAULT
// expression), left out of INSERTs: older writers, and rows copied from an
// older table, get the same value as new ones.
func serverCol[R any](name, typ, expr string) column[R] {
	return column[R]{name: name, typ: typ, def: expr}
}

// loadedAt is the server-filled load time every table carries.
func loadedAt[R any]() column[R] {
	return serverCol[R]("loaded_at", "DateTime", "now()")
}

// Date and DateTime are unsigned days/seconds since 1970 in ClickHouse. Values
// outside this window are treated as absent instead of being wrapped into
// nonsense by the driver.
var (
	dateMin = time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC) // 1970-01-01 is the zero value: never a real activity date here
	dateMax = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
)

// parseDate parses YYYY-MM-DD (as the record format defines dates) and reports
// whether it is a real date ClickHouse can store.
func parseDate(s string) (time.Time, bool) {
	if len(s) != len("2006-01-02") {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil || t.Before(dateMin) || t.After(dateMax) {
		return time.Time{}, false
	}
	return t, true
}

func datePtr(s string) *time.Time {
	if t, ok := parseDate(s); ok {
		return &t
	}
	return nil
}

// dayOf returns the UTC calendar day of t.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dateTimeOK reports whether t fits a DateTime (seconds since 1970 in a UInt32).
func dateTimeOK(t time.Time) bool {
	return !t.IsZero() && t.Unix() > 0 && t.Unix() <= 1<<32-1
}

// clampDateTime returns t in UTC to the second, or the zero DateTime when it
// does not fit.
func clampDateTime(t time.Time) time.Time {
	if !dateTimeOK(t) {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC().Truncate(time.Second)
}

func clampInt16(v int32) int16 {
	switch {
	case v > 1<<15-1:
		return 1<<15 - 1
	case v < -1<<15:
		return -1 << 15
	}
	return int16(v)
}
