package spec

import (
	"strings"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/nhs"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// The formats a "format" rule can require of a field, by the name a
// specification uses. Each is a function of the value alone, allocates
// nothing, and is documented for providers in docs/specifications.md.
type formatKind uint8

const (
	fmtDate formatKind = iota + 1
	fmtDateTime
	fmtTimeHHMM
	fmtPostcode
	fmtOrgCode
	fmtSiteCode
	fmtPracticeCode
	fmtCommissionerCode
	fmtICD10
	fmtOPCS4
	fmtICD10List
	fmtOPCS4List
	fmtHRG
	fmtSNOMEDCT
	fmtCDSUniqueIdentifier
	fmtDigits
)

// formatDef is one format: its name in specifications and what it accepts,
// in words for the documentation.
type formatDef struct {
	name string
	kind formatKind
	doc  string
}

var formatDefs = []formatDef{
	{"date", fmtDate, "a calendar date `YYYY-MM-DD` (years 0001–9999; 29 February only in leap years)"},
	{"date_time", fmtDateTime, "an RFC 3339 date-time, for example `2026-01-06T09:15:00Z` or `2026-01-06T09:15:00+01:00`"},
	{"time_hhmm", fmtTimeHHMM, "a 24-hour time `HH:MM` (`HH:MM:SS` is also accepted)"},
	{"postcode", fmtPostcode, "a UK postcode, case, spaces and tabs ignored (any other character is refused): outward code `A9`, `A99`, `AA9`, `AA99`, `A9A` or `AA9A` (first letter not Q, V or X; second letter not I, J or Z), inward code `9AA` (letters not C, I, K, M, O or V); also `GIR 0AA` and the pseudo-postcodes `ZZ99` + digit + letter + `Z` (`ZZ99 3VZ` no fixed abode, `ZZ99 3WZ` not known, `ZZ99 6CZ` India, ...). An accepted postcode is stored in its one-space upper-case form"},
	{"org_code", fmtOrgCode, "an organisation code: 3 to 5 letters and digits"},
	{"site_code", fmtSiteCode, "a site code: 5 to 9 letters and digits (an NHS trust site is the trust code and 2 more characters, `RJ701`)"},
	{"practice_code", fmtPracticeCode, "a GP practice code: an upper-case letter and 5 digits; a Channel Islands practice, `GUE`, `JER` or `ALD` and 3 digits (ODS codes of Guernsey, Jersey and Alderney, which CAM step B reads: guidance p.29); or a default code `V81999` (not known), `V81998` (not applicable), `V81997` (no registered practice), `G9999981` (no registered GP)"},
	{"commissioner_code", fmtCommissionerCode, "a commissioner code: 3 to 5 letters and digits"},
	{"icd10", fmtICD10, "an ICD-10 code without the dot, 4 to 6 characters (NHS Data Dictionary, ICD-10 format min an4 max an6): an upper-case letter, 2 digits and a fourth character that is a digit or the filler `X` of an undivided three-character code (`I219`, `I10X`; `J45` and `I21.9` are refused); then optionally a fifth character, a digit or the filler `-`, and after it a sixth, `A` (asterisk) or `D` (dagger) (`A170-D`)"},
	{"opcs4", fmtOPCS4, "an OPCS-4 code without the dot, exactly 4 characters (NHS Data Dictionary, OPCS-4 format an4): an upper-case letter and 3 digits (`W371`; `W37` and `W37.1` are refused)"},
	{"icd10_list", fmtICD10List, "ICD-10 codes (as `icd10`) separated by `;`, with no empty element and no spaces (`E119;I10X`)"},
	{"opcs4_list", fmtOPCS4List, "OPCS-4 codes (as `opcs4`) separated by `;`, with no empty element and no spaces (`K634;Y981`)"},
	{"hrg", fmtHRG, "an HRG4+ code: 2 upper-case letters, 2 digits, 1 upper-case letter (`HN12A`)"},
	{"snomed_ct", fmtSNOMEDCT, "a SNOMED CT concept id: 6 to 18 digits, not starting with 0"},
	{"cds_unique_identifier", fmtCDSUniqueIdentifier, "at most 35 characters of `A–Z`, `a–z`, `0–9` and `-`"},
	{"digits", fmtDigits, "exactly the number of digits the rule's `length` says"},
}

func formatByName(name string) (formatDef, bool) {
	for _, f := range formatDefs {
		if f.name == name {
			return f, true
		}
	}
	return formatDef{}, false
}

// formatValid reports whether s has format k; length is the digit count of
// fmtDigits.
func formatValid(k formatKind, length int, s string) bool {
	switch k {
	case fmtDate:
		_, ok := parseDate(s)
		return ok
	case fmtDateTime:
		// The parser the envelope uses for the applicable date/time, so a
		// value this rule passes is one the header can carry.
		_, err := time.Parse(time.RFC3339, s)
		return err == nil
	case fmtTimeHHMM:
		return timeValid(s)
	case fmtPostcode:
		return nhs.PostcodeValid(s)
	case fmtOrgCode, fmtCommissionerCode:
		return len(s) >= 3 && len(s) <= 5 && alnum(s)
	case fmtSiteCode:
		return len(s) >= 5 && len(s) <= 9 && alnum(s)
	case fmtPracticeCode:
		return practiceCodeValid(s)
	case fmtICD10:
		return icd10Valid(s)
	case fmtOPCS4:
		return opcs4Valid(s)
	case fmtICD10List:
		return eachValid(s, icd10Valid)
	case fmtOPCS4List:
		return eachValid(s, opcs4Valid)
	case fmtHRG:
		return len(s) == 5 && isLetter(s[0]) && isLetter(s[1]) && isDigit(s[2]) && isDigit(s[3]) && isLetter(s[4])
	case fmtSNOMEDCT:
		return len(s) >= 6 && len(s) <= 18 && s[0] != '0' && allDigits(s)
	case fmtCDSUniqueIdentifier:
		return uniqueIdentifierValid(s)
	case fmtDigits:
		return len(s) == length && allDigits(s)
	}
	return false
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'A' <= c && c <= 'Z' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// parseDate reads a YYYY-MM-DD calendar date (record.ParseDate, the one
// rule) as the number yyyymmdd, which orders like the date.
func parseDate(s string) (int, bool) {
	y, m, d, ok := record.ParseDate(s)
	if !ok {
		return 0, false
	}
	return y*10000 + m*100 + d, true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// civilDate is t's calendar date in loc as yyyymmdd.
func civilDate(t time.Time, loc *time.Location) int {
	y, m, d := t.In(loc).Date()
	return y*10000 + int(m)*100 + d
}

// timeValid accepts HH:MM and HH:MM:SS on a 24-hour clock.
func timeValid(s string) bool {
	if len(s) != 5 && len(s) != 8 {
		return false
	}
	if s[2] != ':' {
		return false
	}
	h, ok1 := digits(s[0:2])
	m, ok2 := digits(s[3:5])
	if !ok1 || !ok2 || h > 23 || m > 59 {
		return false
	}
	if len(s) == 8 {
		sec, ok := digits(s[6:8])
		return s[5] == ':' && ok && sec <= 59
	}
	return true
}

// alnum reports whether s is only ASCII letters and digits.
func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// uniqueIdentifierValid: up to 35 of A-Z a-z 0-9 and '-'.
func uniqueIdentifierValid(s string) bool {
	if len(s) > 35 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// practiceCodeValid: a letter and five digits, a Channel Islands practice,
// or a default code (refdata.PracticeDefaultCode, the one list).
func practiceCodeValid(s string) bool {
	if refdata.PracticeDefaultCode(s) {
		return true
	}
	if len(s) != 6 {
		return false
	}
	switch s[:3] {
	case "GUE", "JER", "ALD":
		// ODS codes of the Channel Islands' practices (epraccur high level
		// health geography YAD-YAF); the Isle of Man's are Y0nnnn.
		return allDigits(s[3:])
	}
	return isLetter(s[0]) && allDigits(s[1:])
}

// icd10Valid: the Data Dictionary's ICD-10 form (min an4 max an6; DDCN 1496,
// "Clinical Coding"): letter, two digits, a fourth character that is a digit
// or X (the filler of an undivided three-character code, so a bare
// three-character code is not the form), then an optional fifth character (a
// digit, or "-" where none is used) and, only after it, an optional sixth:
// the asterisk (A) or dagger (D) indicator.
func icd10Valid(s string) bool {
	if len(s) < 4 || len(s) > 6 {
		return false
	}
	if !isLetter(s[0]) || !isDigit(s[1]) || !isDigit(s[2]) || !isDigit(s[3]) && s[3] != 'X' {
		return false
	}
	if len(s) >= 5 && !isDigit(s[4]) && s[4] != '-' {
		return false
	}
	return len(s) < 6 || s[5] == 'A' || s[5] == 'D'
}

// opcs4Valid: the Data Dictionary's OPCS-4 form, an4: a letter and three
// digits, no dot.
func opcs4Valid(s string) bool {
	return len(s) == 4 && isLetter(s[0]) && allDigits(s[1:])
}

// eachValid reports whether every ";"-separated element of s is valid; an
// empty element (";;", a trailing ";") is not.
func eachValid(s string, valid func(string) bool) bool {
	for {
		i := strings.IndexByte(s, ';')
		if i < 0 {
			return valid(s)
		}
		if !valid(s[:i]) {
			return false
		}
		s = s[i+1:]
	}
}

func inList(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
