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
	// kind is how the column's values are packed and sent (packed.go).
	kind kind
	// pack appends a row's value of the column to a packed row (packed.go).
	// nil: the column is filled by the server and left out of INSERTs.
	pack func(r *R, b []byte) []byte
}

// inserted reports whether INSERTs send the column.
func (c column[R]) inserted() bool { return c.pack != nil }

func (c column[R]) ddl() string {
	s := c.name + " " + c.typ
	if c.def != "" {
		s += " DEFAULT " + c.def
	}
	return s
}

// typed is a column of kind k whose value get reads from a row and enc
// packs.
func typed[R, V any](name, typ string, k kind, get func(*R) V, enc func([]byte, V) []byte) column[R] {
	return column[R]{name: name, typ: typ, kind: k, pack: func(r *R, b []byte) []byte { return enc(b, get(r)) }}
}

func strCol[R any](name string, get func(*R) string) column[R] {
	return typed(name, "String", kindString, get, packString)
}

func u64Col[R any](name string, get func(*R) uint64) column[R] {
	return typed(name, "UInt64", kindUInt64, get, packUInt64)
}

func u8Col[R any](name string, get func(*R) uint8) column[R] {
	return typed(name, "UInt8", kindUInt8, get, packUInt8)
}

func i16Col[R any](name string, get func(*R) int16) column[R] {
	return typed(name, "Int16", kindInt16, get, packInt16)
}

func i32Col[R any](name string, get func(*R) int32) column[R] {
	return typed(name, "Int32", kindInt32, get, packInt32)
}

func i64Col[R any](name string, get func(*R) int64) column[R] {
	return typed(name, "Int64", kindInt64, get, packInt64)
}

// dateCol is a Date; get must return a date within dateMin..dateMax (the
// driver does not range-check and would wrap silently).
func dateCol[R any](name string, get func(*R) time.Time) column[R] {
	return typed(name, "Date", kindDate, get, packTime)
}

// nullDateCol is a Nullable(Date): nil when the record has no valid date.
func nullDateCol[R any](name string, get func(*R) *time.Time) column[R] {
	return typed(name, "Nullable(Date)", kindNullDate, get, packNullTime)
}

func dateTimeCol[R any](name string, get func(*R) time.Time) column[R] {
	return typed(name, "DateTime", kindDateTime, get, packTime)
}

func nullDateTimeCol[R any](name string, get func(*R) *time.Time) column[R] {
	return typed(name, "Nullable(DateTime)", kindNullDateTime, get, packNullTime)
}

func strArrayCol[R any](name string, get func(*R) []string) column[R] {
	return typed(name, "Array(String)", kindStringArray, get, packStrings)
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
