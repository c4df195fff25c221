package refdata

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/dmic-nhs/dmic/services/internal/nhs"
)

// ParseError says which file and line of a reference file is bad. The
// loaders set Line; LoadDir adds File. Messages name columns, not values.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// reader wraps encoding/csv for the reference files: quoted fields, CRLF
// line ends, a UTF-8 byte-order mark, and a variable number of fields (the
// loaders check counts themselves so the message can say which column).
type reader struct {
	cr     *csv.Reader
	intern map[string]string
}

func newReader(r io.Reader) *reader {
	// A byte-order mark before a quoted first field would break csv's
	// quote handling, so drop it before parsing.
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return &reader{cr: cr, intern: make(map[string]string)}
}

// next returns the next record, its line number, and io.EOF at the end.
func (r *reader) next() ([]string, int, error) {
	rec, err := r.cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, 0, &ParseError{Line: pe.Line, Err: pe.Err}
		}
		return nil, 0, err
	}
	line, _ := r.cr.FieldPos(0)
	return rec, line, nil
}

// code returns an interned, trimmed copy of a field. encoding/csv slices
// every field of a record out of one string, so keeping a field would keep
// the whole line alive; interning the many repeated codes (LSOAs, sub-ICBs)
// keeps a full national ONSPD load small.
func (r *reader) code(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if v, ok := r.intern[s]; ok {
		return v
	}
	v := strings.Clone(s)
	r.intern[v] = v
	return v
}

// postcode is the canonical form of a reference file's postcode (see package
// nhs), or "" when it is not a postcode by those rules: the form in which
// de-identification and assignment look postcodes up.
func postcode(s string) string {
	pc, _ := nhs.NormalisePostcode(s)
	return pc
}

func badf(line int, format string, args ...any) error {
	return &ParseError{Line: line, Err: fmt.Errorf(format, args...)}
}

var (
	yyyymmdd = regexp.MustCompile(`^[0-9]{8}$`)
	yyyymm   = regexp.MustCompile(`^[0-9]{6}$`)
)

// practiceStatus maps the newer ODS export's status words to the classic letters.
var practiceStatus = map[string]string{
	"A": "A", "C": "C", "D": "D", "P": "P",
	"ACTIVE": "A", "INACTIVE": "C", "DORMANT": "D", "PROPOSED": "P",
}

// LoadPractices reads an ODS epraccur file: headerless CSV of 27 quoted
// columns (code 1, postcode 10, open 11, close 12, status 13, commissioner
// 15, prescribing setting 26). Both the classic layout and the newer ODS
// export (ACTIVE/INACTIVE, RO76) are accepted; see Practice.Status.
func LoadPractices(in io.Reader) ([]Practice, error) {
	r := newReader(in)
	var out []Practice
	for {
		rec, line, err := r.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(rec) < 15 {
			return nil, badf(line, "practice row has %d columns, want 27 (at least 15)", len(rec))
		}
		code := strings.TrimSpace(rec[0])
		if code == "" {
			return nil, badf(line, "practice row has an empty code (column 1)")
		}
		status, ok := practiceStatus[strings.ToUpper(strings.TrimSpace(rec[12]))]
		if !ok {
			return nil, badf(line, "practice %s: unknown status in column 13", code)
		}
		open, closed := strings.TrimSpace(rec[10]), strings.TrimSpace(rec[11])
		if open != "" && !yyyymmdd.MatchString(open) {
			return nil, badf(line, "practice %s: open date (column 11) is not YYYYMMDD", code)
		}
		if closed != "" && !yyyymmdd.MatchString(closed) {
			return nil, badf(line, "practice %s: close date (column 12) is not YYYYMMDD", code)
		}
		p := Practice{
			Code:         r.code(strings.ToUpper(code)),
			Commissioner: r.code(strings.ToUpper(rec[14])),
			Status:       status,
			Postcode:     r.code(postcode(rec[9])),
			Open:         r.code(open),
			Close:        r.code(closed),
		}
		if len(rec) >= 26 {
			p.PrescribingSetting = r.code(rec[25])
		}
		p.NationalGrouping = r.code(strings.ToUpper(rec[2]))
		p.HighLevelHealthGeography = r.code(strings.ToUpper(rec[3]))
		if dseLayout(rec[12], p.PrescribingSetting) && p.NationalGrouping == "" && p.HighLevelHealthGeography == "" {
			p.NationalGrouping, p.HighLevelHealthGeography = dseGeography(p.Postcode, p.Commissioner)
		}
		out = append(out, p)
	}
}

// dseLayout reports a row of the newer ODS "Data Search and Export"
// epraccur: its status is a word (ACTIVE, INACTIVE, ...) and its column 26
// an ODS role (RO76, ...), where the classic file has a letter and a number.
func dseLayout(status, setting string) bool {
	return len(strings.TrimSpace(status)) > 1 || strings.HasPrefix(setting, "RO")
}

// dseGeography gives a practice of the newer ODS export the National
// Grouping (column 3) and High Level Health Geography (column 4) that the
// classic epraccur gives it, where the export leaves both empty.
//
// The export drops the classic file's non-English codes: W00 / Q99 for Welsh
// practices, Y99 / Q99 for the Defence Medical Services practices outside
// England (Wales, Scotland, BFPO), and YAC-YAF for the Crown Dependencies
// (shared reference README, file 2; checked against every practice in both
// shared files: 737 of 737 rows with both columns empty in the export get
// the classic file's pair back by these rules). CAM reads exactly those
// codes: W00 excludes a practice from the responsible sub-ICB and hub
// methods (2025/26 guidance, p.11-12, p.15), Q99 and YAC-YAF answer WB-2
// "No" (p.37), and YAC-YAF answer B "No" (p.29). Left empty, a Welsh
// practice would be taken for a practice whose grouping is not W00.
//
// The Crown Dependencies are told by the practice postcode's area, as the
// classic file's rows do: IM Isle of Man YAC, JE Jersey YAD, GY9 Alderney
// YAF, other GY Guernsey YAE; they have no National Grouping. Otherwise a
// Welsh LHB commissioner (7A1-7A7) is W00 / Q99, and anything else is the
// classic file's "no NHS England region", Y99 / Q99.
func dseGeography(postcode, commissioner string) (grouping, geography string) {
	switch {
	case strings.HasPrefix(postcode, "IM"):
		return "", "YAC"
	case strings.HasPrefix(postcode, "JE"):
		return "", "YAD"
	case strings.HasPrefix(postcode, "GY9 "):
		return "", "YAF"
	case strings.HasPrefix(postcode, "GY"):
		return "", "YAE"
	case len(commissioner) == 3 && strings.HasPrefix(commissioner, "7A") && commissioner[2] >= '1' && commissioner[2] <= '7':
		return "W00", "Q99"
	}
	return "Y99", "Q99"
}

// LoadTrusts reads an ODS etr file: headerless CSV, code 1, name 2, region
// 3, ICB 4, postcode 10, close date 12.
func LoadTrusts(in io.Reader) ([]Trust, error) {
	r := newReader(in)
	var out []Trust
	for {
		rec, line, err := r.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(rec) < 12 {
			return nil, badf(line, "trust row has %d columns, want 27 (at least 12)", len(rec))
		}
		code := strings.ToUpper(strings.TrimSpace(rec[0]))
		if code == "" {
			return nil, badf(line, "trust row has an empty code (column 1)")
		}
		closed := strings.TrimSpace(rec[11])
		if closed != "" && !yyyymmdd.MatchString(closed) {
			return nil, badf(line, "trust %s: close date (column 12) is not YYYYMMDD", code)
		}
		out = append(out, Trust{
			Code:     r.code(code),
			Name:     strings.Clone(strings.TrimSpace(rec[1])),
			Region:   r.code(rec[2]),
			ICB:      r.code(rec[3]),
			Postcode: r.code(postcode(rec[9])),
			Close:    r.code(closed),
		})
	}
}

// header maps lower-cased column names to their index.
type header map[string]int

func readHeader(r *reader, what string) (header, error) {
	rec, _, err := r.next()
	if err == io.EOF {
		return nil, badf(1, "%s file is empty (no header row)", what)
	}
	if err != nil {
		return nil, err
	}
	h := make(header, len(rec))
	for i, name := range rec {
		h[strings.ToLower(strings.TrimSpace(name))] = i
	}
	return h, nil
}

// find returns the index of the first column whose name matches one of the
// patterns, or -1. Patterns are anchored regular expressions, so one
// loader takes every vintage's renamed columns (lad25cd, lad24cd, laua...).
func (h header) find(patterns ...*regexp.Regexp) int {
	best := -1
	for _, p := range patterns {
		for name, i := range h {
			if p.MatchString(name) && (best == -1 || i < best) {
				best = i
			}
		}
		if best != -1 {
			return best
		}
	}
	return -1
}

func re(s string) *regexp.Regexp { return regexp.MustCompile("^(?:" + s + ")$") }

var (
	colPcds   = []*regexp.Regexp{re("pcds"), re("pcd"), re("pcd7"), re("pcd2"), re("pcd8")}
	colDoterm = []*regexp.Regexp{re("doterm")}
	colDointr = []*regexp.Regexp{re("dointr")}
	colLSOA11 = []*regexp.Regexp{re("lsoa11cd|lsoa11")}
	colLSOA21 = []*regexp.Regexp{re("lsoa21cd|lsoa21")}
	colMSOA11 = []*regexp.Regexp{re("msoa11cd|msoa11")}
	colMSOA21 = []*regexp.Regexp{re("msoa21cd|msoa21")}
	colLA     = []*regexp.Regexp{re(`lad[0-9]{2}cd`), re("laua|lad")}
	colCtry   = []*regexp.Regexp{re(`ctry[0-9]{2}cd`), re("ctry")}
	colRegion = []*regexp.Regexp{re(`nhser[0-9]{2}cd`), re("nhser")}
	colSubICB = []*regexp.Regexp{re(`sicbl[0-9]{2}cd`), re("sicbl"), re(`ccg[0-9]{2}cd`), re("ccg")}
)

// LoadPostcodes reads an ONS postcode file with a header row: the ONSPD 2025
// names (pcds, dointr, doterm, lsoa11cd, lsoa21cd, msoa11cd, msoa21cd,
// lad25cd, ctry25cd, sicbl24cd) or the older NSPL/ONSPD names (pcds, dointr,
// doterm, lsoa11, msoa11, laua, ctry, ccg), matched case-insensitively.
// SubICB, ICB and IMDDecile are left empty: New fills them from the other
// files.
//
// Terminated postcodes (doterm set) are kept, with their dates, because a
// patient's postcode is placed whether live or not
// (Reference.PostcodeOfResidence): the ONSPD keeps terminated postcodes,
// with the areas they lay in, so that older addresses can still be placed. Only a
// terminated row with no area at all (no country, LSOA or sub-ICB) is
// dropped, and one whose postcode breaks the format (no patient's postcode
// can match it), where a live row with such a postcode is an error.
func LoadPostcodes(in io.Reader) ([]Area, error) {
	r := newReader(in)
	h, err := readHeader(r, "postcode")
	if err != nil {
		return nil, err
	}
	iPc, iTerm := h.find(colPcds...), h.find(colDoterm...)
	if iPc < 0 || iTerm < 0 {
		return nil, badf(1, "postcode header has no pcds or doterm column: not an ONSPD/NSPL file")
	}
	iIntr := h.find(colDointr...)
	iL11, iL21, iM11, iM21 := h.find(colLSOA11...), h.find(colLSOA21...), h.find(colMSOA11...), h.find(colMSOA21...)
	iLA, iCtry, iSub := h.find(colLA...), h.find(colCtry...), h.find(colSubICB...)
	iReg := h.find(colRegion...)
	if iSub < 0 && iL21 < 0 && iL11 < 0 {
		return nil, badf(1, "postcode header has no sub-ICB (sicbl/ccg) or LSOA column")
	}
	width := len(h)
	get := func(rec []string, i int) string {
		if i < 0 {
			return ""
		}
		return r.code(rec[i])
	}
	var out []Area
	for {
		rec, line, err := r.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(rec) != width {
			return nil, badf(line, "postcode row has %d columns, header has %d", len(rec), width)
		}
		term, intr := get(rec, iTerm), get(rec, iIntr)
		if term != "" && !yyyymm.MatchString(term) {
			return nil, badf(line, "doterm is not YYYYMM")
		}
		if intr != "" && !yyyymm.MatchString(intr) {
			return nil, badf(line, "dointr is not YYYYMM")
		}
		pc := postcode(rec[iPc])
		if pc == "" {
			if term != "" {
				continue
			}
			return nil, badf(line, "postcode column is empty or not a postcode")
		}
		a := Area{
			Postcode:       pc,
			LSOA11:         get(rec, iL11),
			LSOA21:         get(rec, iL21),
			MSOA11:         get(rec, iM11),
			MSOA21:         get(rec, iM21),
			LocalAuthority: get(rec, iLA),
			Country:        get(rec, iCtry),
			SubICBONS:      get(rec, iSub),
			RegionONS:      get(rec, iReg),
			Introduced:     intr,
			Terminated:     term,
		}
		if term != "" && a.Country == "" && a.LSOA11 == "" && a.LSOA21 == "" && a.SubICBONS == "" {
			continue // terminated with no area to give
		}
		out = append(out, a)
	}
}

// LoadSubICBs reads the sub-ICB to ICB to NHS England region lookup, with
// its header (ONS_SUB_ICB_LOCATION_CODE, SUB_ICB_LOCATION_CODE, ...). The
// same columns of the NHS England practice mapping file are also accepted.
func LoadSubICBs(in io.Reader) ([]SubICB, error) {
	r := newReader(in)
	h, err := readHeader(r, "sub-ICB lookup")
	if err != nil {
		return nil, err
	}
	names := []string{
		"ons_sub_icb_location_code", "sub_icb_location_code", "sub_icb_location_name",
		"ons_icb_code", "icb_code", "icb_name",
		"ons_comm_region_code", "comm_region_code",
	}
	idx := make([]int, len(names))
	for i, n := range names {
		j, ok := h[n]
		if !ok {
			return nil, badf(1, "sub-ICB lookup header has no %s column", strings.ToUpper(n))
		}
		idx[i] = j
	}
	var out []SubICB
	for {
		rec, line, err := r.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(rec) != len(h) {
			return nil, badf(line, "sub-ICB row has %d columns, header has %d", len(rec), len(h))
		}
		f := func(i int) string { return r.code(rec[idx[i]]) }
		s := SubICB{
			ONSCode: f(0), Code: strings.ToUpper(f(1)), Name: f(2),
			ICBONS: f(3), ICB: f(4), ICBName: f(5),
			RegionONS: f(6), Region: f(7),
		}
		if s.ONSCode == "" || s.Code == "" || s.ICB == "" {
			return nil, badf(line, "sub-ICB row has an empty ONS code, ODS code or ICB code")
		}
		out = append(out, s)
	}
}

// LoadIMD reads IMD 2025 deciles by LSOA 2021: a header with an LSOA 2021
// code column (lsoa21_code, lsoa21cd, or File 7's "LSOA code (2021)") and
// IMD_decile. Deciles must be 1..10.
//
// New joins the deciles to each postcode's LSOA 2021, so a file keyed by
// LSOA 2011 (IoD2019, imd2019_lsoa11.csv: lsoa11_code) is refused rather
// than joined: most LSOA codes are the same in both vintages, so it would
// load without complaint and give 2019 deciles, or none, as 2025 ones.
func LoadIMD(in io.Reader) (map[string]int, error) {
	r := newReader(in)
	h, err := readHeader(r, "IMD")
	if err != nil {
		return nil, err
	}
	iL := h.find(re(`lsoa21_code|lsoa21cd|lsoa code \(2021\)`))
	iD := h.find(re(`imd_decile|index of multiple deprivation \(imd\) decile.*`))
	if iL < 0 && h.find(re(`lsoa.*`)) >= 0 {
		return nil, badf(1, "IMD header has no LSOA 2021 code column (lsoa21_code): IMD 2025 by LSOA 2021 is wanted, not an older vintage")
	}
	if iL < 0 || iD < 0 {
		return nil, badf(1, "IMD header has no LSOA code or IMD_decile column")
	}
	out := make(map[string]int)
	for {
		rec, line, err := r.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(rec) != len(h) {
			return nil, badf(line, "IMD row has %d columns, header has %d", len(rec), len(h))
		}
		d, err := strconv.Atoi(strings.TrimSpace(rec[iD]))
		if err != nil || d < 1 || d > 10 {
			return nil, badf(line, "IMD_decile is not a whole number from 1 to 10")
		}
		lsoa := r.code(rec[iL])
		if lsoa == "" {
			return nil, badf(line, "IMD row has an empty LSOA code")
		}
		out[lsoa] = d
	}
}
