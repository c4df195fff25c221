package refdata

import (
	"io"
	"os"
	"strings"

	"github.com/dmic-nhs/dmic/services/internal/record"
)

// HRGFile is the HRG4+ code list: the National Casemix Office's "Code to
// Group" workbooks of 2020/21 to 2025/26 in one table, a row per code with
// the dates it was valid (reference file 21 of /work/shared/reference).
const HRGFile = "hrg4_codes_2020-21_to_2025-26.csv"

// HRG is one HRG4+ code of the list.
type HRG struct {
	Code, Description string
	// Kind is Core, Unbundled, NRD, EM or Both, as the list writes it.
	Kind string
	// From and To are the first and last days (YYYY-MM-DD) on which the code
	// is in a grouper release. From is the start of the first release the list
	// was built from (2020-04-01) for a code older than that; To is empty for
	// a code of the latest release.
	From, To string
}

// HRGList is the HRG4+ code list, and the first day it speaks for.
type HRGList struct {
	codes map[string]HRG
	since string
}

// LoadHRGs reads the HRG4+ list (HRGFile's layout, with a header). A row
// without a code, or with a date that is not YYYY-MM-DD, is an error naming
// the line: a list read wrongly would flag good codes on every record.
func LoadHRGs(in io.Reader) (*HRGList, error) {
	h, rows, err := csvTable(in, "HRG4+ code", "hrgcode", "valid_from", "valid_to")
	if err != nil {
		return nil, err
	}
	t := &HRGList{codes: make(map[string]HRG, len(rows))}
	for i, row := range rows {
		line := i + 2 // the header is line 1; descriptions never span lines
		g := HRG{
			Code:        strings.ToUpper(h.get(row, "hrgcode")),
			Description: h.get(row, "hrgdescription"),
			Kind:        h.get(row, "core_or_unbundled"),
			From:        dateOnly(h.get(row, "valid_from")),
			To:          dateOnly(h.get(row, "valid_to")),
		}
		if g.Code == "" {
			return nil, badf(line, "HRG4+ code row has no HRGCode")
		}
		for _, d := range []struct{ col, v string }{{"Valid_From", g.From}, {"Valid_To", g.To}} {
			if d.v == "" && d.col == "Valid_To" {
				continue
			}
			if _, _, _, ok := record.ParseDate(d.v); !ok {
				return nil, badf(line, "HRG4+ code %s: %s %q is not a date (YYYY-MM-DD)", g.Code, d.col, d.v)
			}
		}
		if _, dup := t.codes[g.Code]; !dup {
			t.codes[g.Code] = g
		}
		if t.since == "" || g.From < t.since {
			t.since = g.From
		}
	}
	return t, nil
}

// loadHRGFile reads dir's HRG4+ list into r, if dir has one.
func (r *Reference) loadHRGFile(dir string) error {
	return loadFile(dir, HRGFile, true, func(f *os.File) (err error) {
		r.hrgs, err = LoadHRGs(f)
		return err
	})
}

// HRG looks up an HRG4+ code.
func (r *Reference) HRG(code string) (HRG, bool) {
	if r == nil {
		return HRG{}, false
	}
	return r.hrgs.Lookup(code)
}

// HRGValidOn is HRGList.HRGValidOn on the loaded list; covered is false when
// there is none.
func (r *Reference) HRGValidOn(code, day string) (valid, covered bool) {
	if r == nil {
		return false, false
	}
	return r.hrgs.HRGValidOn(code, day)
}

// Lookup finds an HRG4+ code, in any case and with spaces around it.
func (l *HRGList) Lookup(code string) (HRG, bool) {
	if l == nil {
		return HRG{}, false
	}
	g, ok := l.codes[upperTrim(code)]
	return g, ok
}

// HRGValidOn reports whether code is an HRG4+ code of a grouper release in
// force on day (YYYY-MM-DD): in the list, not before its first day and not
// after its last. covered is false when the list cannot say: l is nil, or day
// is not a date or is before the first release the list was built from. A
// day after the latest release is judged by that release: its codes stay
// valid until a newer list retires them.
func (l *HRGList) HRGValidOn(code, day string) (valid, covered bool) {
	if l == nil {
		return false, false
	}
	if _, _, _, ok := record.ParseDate(day); !ok || day < l.since {
		return false, false
	}
	g, ok := l.codes[upperTrim(code)]
	if !ok {
		return false, true
	}
	return day >= g.From && (g.To == "" || day <= g.To), true
}
