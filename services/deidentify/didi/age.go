package didi

import (
	"errors"
	"strconv"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/record"
)

var (
	errBirthDate    = errors.New("birth date is not a valid YYYY-MM-DD date")
	errActivityDate = errors.New("activity date is not a valid YYYY-MM-DD date")
	errBirthAfter   = errors.New("birth date is after the activity date")
	errBirthEarly   = errors.New("birth date is before 1880-01-01")
)

// earliestBirth is the earliest valid date of birth, yyyymmdd: SUS treats a
// date of birth before 1 January 1880 as invalid, as it does one after the
// activity date (domain brief §3, "Identifiers and demographics", from the
// SUS data-integrity page). Validation's DOB-002 applies the same date (a
// test keeps the two in step); on national records it is only a warning,
// so such a record reaches this stage and its age must be unknown here,
// not 140-odd years.
const earliestBirth = 18800101

// parseDate reads a date by the record format's one calendar-date rule.
func parseDate(s string) (y, m, d int, ok bool) { return record.ParseDate(s) }

func isLeap(y int) bool { return record.LeapYear(y) }

// AgeAt returns the age on the activity date: completed years and, only
// when that is 0, completed weeks since birth. Both dates are YYYY-MM-DD.
// Someone born on 29 February has their birthday on 1 March in non-leap
// years (the convention UK law uses for coming of age). It is an error for
// birth to be after activity or before 1880-01-01 (both invalid dates of
// birth to SUS). Errors never repeat the dates.
func AgeAt(birth, activity string) (years, weeks int, err error) {
	by, bm, bd, ok := parseDate(birth)
	if !ok {
		return 0, 0, errBirthDate
	}
	ay, am, ad, ok := parseDate(activity)
	if !ok {
		return 0, 0, errActivityDate
	}
	if by*10000+bm*100+bd < earliestBirth {
		return 0, 0, errBirthEarly
	}
	if by > ay || by == ay && (bm > am || bm == am && bd > ad) {
		return 0, 0, errBirthAfter
	}
	// The birthday in the activity year.
	cm, cd := bm, bd
	if bm == 2 && bd == 29 && !isLeap(ay) {
		cm, cd = 3, 1
	}
	years = ay - by
	if am < cm || am == cm && ad < cd {
		years--
	}
	if years == 0 {
		days := time.Date(ay, time.Month(am), ad, 0, 0, 0, 0, time.UTC).
			Sub(time.Date(by, time.Month(bm), bd, 0, 0, 0, 0, time.UTC)).Hours() / 24
		weeks = int(days) / 7
	}
	return years, weeks, nil
}

// AgeBand returns the five-year band of an age in completed years: "0"
// (under one), "1-4", "5-9", "10-14", ... "85-89", then "90+". Under one is
// a band of its own because infant activity is analysed apart; 1-4 is
// therefore four years wide. A negative age gives "".
func AgeBand(years int) string {
	switch {
	case years < 0:
		return ""
	case years == 0:
		return "0"
	case years < 5:
		return "1-4"
	case years >= 90:
		return "90+"
	}
	lo := years / 5 * 5
	return bands[lo/5]
}

// bands holds "5-9" .. "85-89", indexed by lower bound / 5, built once so
// AgeBand does not allocate.
var bands = func() [18]string {
	var b [18]string
	for lo := 5; lo < 90; lo += 5 {
		b[lo/5] = strconv.Itoa(lo) + "-" + strconv.Itoa(lo+4)
	}
	return b
}()
