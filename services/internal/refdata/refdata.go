// Package refdata loads the public reference files the pipeline joins
// against: GP practices (ODS epraccur), postcodes (ONSPD/NSPL), the sub-ICB
// to ICB to region lookup, NHS trusts (ODS etr) and IMD 2025 deciles.
//
// The loaders read the files in their published layouts, so the committed
// sample in reference/sample and the full published files load the same way.
// A Reference is read-only once built and safe for concurrent use.
package refdata

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dmic-nhs/dmic/services/internal/nhs"
)

// Country codes (ONS) used in the postcode files.
const (
	CountryEngland         = "E92000001"
	CountryScotland        = "S92000003"
	CountryWales           = "W92000004"
	CountryNorthernIreland = "N92000002"
)

// Practice is one GP practice (or other prescribing organisation) from epraccur.
type Practice struct {
	Code string
	// Commissioner is epraccur column 15: an ODS sub-ICB code (e.g. 36L), a
	// commissioning hub (13Q armed forces, H&J hubs) or a Welsh LHB (7A*).
	Commissioner string
	// Status is A (active), C (closed), D (dormant) or P (proposed). The newer
	// ODS export's ACTIVE/INACTIVE/DORMANT/PROPOSED are normalised to these.
	Status   string
	Postcode string
	// Open and Close are YYYYMMDD; Close is empty while open.
	Open, Close string
	// PrescribingSetting is epraccur column 26: "4" is a GP practice in the
	// classic layout, "RO76" in the newer ODS export.
	PrescribingSetting string
	// NationalGrouping is epraccur column 3 (an NHS England region Y.., or
	// W00 for Wales); CAM excludes W00 practices from the responsible
	// sub-ICB method.
	NationalGrouping string
	// HighLevelHealthGeography is epraccur column 4 (an ICB Q.., Q99, or
	// YAC-YAF for the Crown Dependencies, which CAM step B treats as not
	// ordinarily resident in the UK).
	HighLevelHealthGeography string
}

// Active reports whether the practice is active now (status A, no close date).
func (p Practice) Active() bool { return p.Status == "A" && p.Close == "" }

// OpenOn reports whether the practice was open on day (YYYYMMDD or
// YYYY-MM-DD). A practice that has since closed was still open for activity
// dated before its close, which is what commissioner assignment needs.
func (p Practice) OpenOn(day string) bool {
	// YYYY-MM-DD to YYYYMMDD on the stack: commissioner assignment asks
	// this of nearly every record.
	var buf [8]byte
	d := buf[:0]
	for i := 0; i < len(day); i++ {
		if day[i] == '-' {
			continue
		}
		if len(d) == len(buf) {
			return false
		}
		d = append(d, day[i])
	}
	if len(d) != 8 {
		return false
	}
	if p.Open != "" && string(d) < p.Open {
		return false
	}
	return p.Close == "" || string(d) <= p.Close
}

// GPPractice reports whether the row is a GP practice rather than another
// prescribing setting (walk-in centre, prison, out-of-hours...): setting 4 in
// the classic epraccur, role RO76 in the newer ODS export. The export lists
// every role of an organisation in column 26, joined by "|" ("RO76|RO268":
// a GP practice that has a second role, 6 rows of the February 2026 file),
// so RO76 is looked for among them.
func (p Practice) GPPractice() bool {
	if p.PrescribingSetting == "4" {
		return true
	}
	for rest := p.PrescribingSetting; rest != ""; {
		var role string
		role, rest, _ = strings.Cut(rest, "|")
		if strings.TrimSpace(role) == "RO76" {
			return true
		}
	}
	return false
}

// Area is what one live postcode resolves to.
type Area struct {
	// Postcode is the normalised single-space form, e.g. "SM1 1AA".
	Postcode       string
	LSOA11, LSOA21 string
	MSOA11, MSOA21 string
	LocalAuthority string
	Country        string
	// SubICBONS is the ONS sub-ICB location code (E38...); for Welsh and
	// Scottish postcodes it holds the LHB/health board code (W11.../S03...).
	SubICBONS string
	// SubICB is the ODS sub-ICB code (e.g. 36L), empty outside England.
	SubICB string
	// ICB is the ODS ICB code (Q..), empty outside England.
	ICB string
	// RegionONS is the NHS England region of the postcode (nhser, E40...),
	// a dummy (W99.../S99...) outside England.
	RegionONS string
	// IMDDecile is the IMD 2025 decile of LSOA21 (1 most deprived), 0 if unknown.
	IMDDecile int
	// Introduced and Terminated are the postcode file's dointr and doterm,
	// YYYYMM; Terminated is empty while the postcode is live.
	Introduced, Terminated string
}

// Live reports whether the postcode is live in the reference data's
// vintage (not terminated).
func (a Area) Live() bool { return a.Terminated == "" }

// SubICB is one row of the sub-ICB to ICB to NHS England region lookup.
type SubICB struct {
	ONSCode, Code, Name  string
	ICBONS, ICB, ICBName string
	RegionONS, Region    string
}

// Trust is one NHS trust from the ODS etr file.
type Trust struct {
	Code, Name, Region, ICB, Postcode string
	// Close is the close date, YYYYMMDD; empty while open.
	Close string
}

// Reference holds all loaded reference data. Its maps are never written after
// construction, so concurrent readers need no locking.
type Reference struct {
	practices map[string]Practice
	postcodes map[string]Area
	subByONS  map[string]SubICB
	subByCode map[string]SubICB
	trusts    map[string]Trust
	cam       *camTables
	hrgs      *HRGList
}

// File names LoadDir reads.
const (
	PracticesFile = "epraccur.csv"
	SubICBFile    = "sicbl_icb_nhser_lookup.csv"
	TrustsFile    = "etr.csv"
	IMDFile       = "imd2025_lsoa21.csv"
)

// PostcodeFiles are the postcode files LoadDir looks for, in order of
// preference: the sample/operator name first, then the names the shared
// reference folder uses, so LoadDir works on either. Every one present is
// read; a postcode found in an earlier file wins.
var PostcodeFiles = []string{"onspd.csv", "onspd_nov2025_extract.csv", "nspl_nov2021_extract.csv"}

// LoadDir reads a reference directory laid out like reference/sample. The
// IMD file, the CAM tables and the HRG4+ list are optional (deciles are then 0;
// the rules that need a table are not checked); at least one postcode file is
// required. Errors name the file and line that is bad.
func LoadDir(dir string) (*Reference, error) {
	var practices []Practice
	if err := loadFile(dir, PracticesFile, false, func(f *os.File) (err error) {
		practices, err = LoadPractices(f)
		return err
	}); err != nil {
		return nil, err
	}
	var subs []SubICB
	if err := loadFile(dir, SubICBFile, false, func(f *os.File) (err error) {
		subs, err = LoadSubICBs(f)
		return err
	}); err != nil {
		return nil, err
	}
	var trusts []Trust
	if err := loadFile(dir, TrustsFile, false, func(f *os.File) (err error) {
		trusts, err = LoadTrusts(f)
		return err
	}); err != nil {
		return nil, err
	}
	var imd map[string]int
	if err := loadFile(dir, IMDFile, true, func(f *os.File) (err error) {
		imd, err = LoadIMD(f)
		return err
	}); err != nil {
		return nil, err
	}
	var areas []Area
	found := 0
	for _, name := range PostcodeFiles {
		err := loadFile(dir, name, true, func(f *os.File) error {
			found++
			a, err := LoadPostcodes(f)
			areas = append(areas, a...)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("refdata: no postcode file in %s (want one of %s)", dir, strings.Join(PostcodeFiles, ", "))
	}
	r := New(practices, areas, subs, trusts, imd)
	if err := r.loadCAM(dir); err != nil {
		return nil, err
	}
	if err := r.loadHRGFile(dir); err != nil {
		return nil, err
	}
	return r, nil
}

// loadFile opens dir/name and runs load on it, naming the file in any error.
func loadFile(dir, name string, optional bool, load func(*os.File) error) error {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("refdata: open %s: %w", path, err)
	}
	defer f.Close()
	if err := load(f); err != nil {
		var pe *ParseError
		if errors.As(err, &pe) && pe.File == "" {
			pe.File = path
			return fmt.Errorf("refdata: %w", pe)
		}
		return fmt.Errorf("refdata: %s: %w", path, err)
	}
	return nil
}

// New builds a Reference from loaded rows. It resolves each postcode's ONS
// sub-ICB to its ODS sub-ICB and ICB codes, and its LSOA 2021 to an IMD
// decile (imd may be nil). When two rows share a key the first wins.
func New(practices []Practice, areas []Area, subs []SubICB, trusts []Trust, imd map[string]int) *Reference {
	r := &Reference{
		practices: make(map[string]Practice, len(practices)),
		postcodes: make(map[string]Area, len(areas)),
		subByONS:  make(map[string]SubICB, len(subs)),
		subByCode: make(map[string]SubICB, len(subs)),
		trusts:    make(map[string]Trust, len(trusts)),
	}
	for _, s := range subs {
		if _, ok := r.subByONS[s.ONSCode]; !ok {
			r.subByONS[s.ONSCode] = s
		}
		if _, ok := r.subByCode[s.Code]; !ok {
			r.subByCode[s.Code] = s
		}
	}
	for _, p := range practices {
		if _, ok := r.practices[p.Code]; !ok {
			r.practices[p.Code] = p
		}
	}
	for _, t := range trusts {
		if _, ok := r.trusts[t.Code]; !ok {
			r.trusts[t.Code] = t
		}
	}
	for _, a := range areas {
		if _, ok := r.postcodes[a.Postcode]; ok {
			continue
		}
		if s, ok := r.subByONS[a.SubICBONS]; ok {
			a.SubICB, a.ICB = s.Code, s.ICB
		}
		if imd != nil && a.LSOA21 != "" {
			a.IMDDecile = imd[a.LSOA21]
		}
		r.postcodes[a.Postcode] = a
	}
	return r
}

// PracticeDefaultCode reports whether code is a default code of GENERAL
// MEDICAL PRACTICE CODE (PATIENT REGISTRATION), which names no practice:
// V81999 (practice not known), V81998 (not applicable), V81997 (no registered
// practice), all three read by CAM 2025/26 (guidance p.11), and G9999981 (no
// registered GP: the Data Dictionary's default-codes table, domain brief
// section 2), which providers send in the same field. It is the one list:
// validation accepts these codes as well formed and never looks them up
// (ORG-002, ORG-006), and commissioner assignment places such a patient by
// postcode. Exact match: the codes are upper case in the Data Dictionary.
func PracticeDefaultCode(code string) bool {
	switch code {
	case "V81999", "V81998", "V81997", "G9999981":
		return true
	}
	return false
}

// Practice looks up a GP practice by its ODS code (case-insensitive).
func (r *Reference) Practice(code string) (Practice, bool) {
	p, ok := r.practices[upperTrim(code)]
	return p, ok
}

// KnownPractice reports whether code is a GP practice (or other prescribing
// organisation) in the ODS reference data, open or closed: validation warns
// of a practice code that is not there at all (rule ORG-006).
func (r *Reference) KnownPractice(code string) bool {
	_, ok := r.Practice(code)
	return ok
}

// Postcode looks up a postcode live now (in the reference data's vintage)
// by its normalised "AA9A 9AA" form (any other spelling is normalised): what an organisation's current
// address (a practice's, a trust's) is looked up by. A terminated postcode
// is not found; PostcodeOfResidence, a patient's, finds it.
func (r *Reference) Postcode(normalised string) (Area, bool) {
	a, ok := r.area(normalised)
	if !ok || !a.Live() {
		return Area{}, false
	}
	return a, true
}

// PostcodeOfResidence looks up a patient's postcode: the directory's row,
// live or terminated, whatever the date of the activity. The CAM guidance
// derives a commissioner from "the matching record" of the postcode
// directory with no date (p.11-12, and every postcode method), and the ONSPD
// keeps terminated postcodes with the areas they lay in so that older
// addresses can still be placed. A postcode terminated before the activity
// (an address not updated since) or introduced after it (an address
// recorded later) is still the best evidence of where the patient lived;
// one row per postcode, so a date would only ever decide whether to place
// it, never where.
func (r *Reference) PostcodeOfResidence(normalised string) (Area, bool) {
	return r.area(normalised)
}

// area finds a postcode's row by its canonical form. The callers hold that
// form already; any other spelling of a postcode ("sm51aa", the 7-character
// pcd "SM5 1AA"/"SW1A1AA", the 8-character pcd2) is normalised by the one
// postcode rule (package nhs) and looked up again, so it finds the same row.
func (r *Reference) area(pc string) (Area, bool) {
	if a, ok := r.postcodes[pc]; ok {
		return a, true
	}
	c, ok := nhs.NormalisePostcode(pc)
	if !ok || c == pc {
		return Area{}, false
	}
	a, ok := r.postcodes[c]
	return a, ok
}

// SubICBByONS looks up a sub-ICB by its ONS code (E38...).
func (r *Reference) SubICBByONS(ons string) (SubICB, bool) {
	s, ok := r.subByONS[upperTrim(ons)]
	return s, ok
}

// SubICBByCode looks up a sub-ICB by its ODS code (e.g. 36L).
func (r *Reference) SubICBByCode(code string) (SubICB, bool) {
	s, ok := r.subByCode[upperTrim(code)]
	return s, ok
}

// Trust looks up a trust by its 3-character code. Callers often hold a
// 5-character provider or site code (RVR00, RVR01): when that is not itself
// a trust code, its first 3 characters are tried.
func (r *Reference) Trust(code string) (Trust, bool) {
	c := upperTrim(code)
	if t, ok := r.trusts[c]; ok {
		return t, true
	}
	if len(c) > 3 {
		t, ok := r.trusts[c[:3]]
		return t, ok
	}
	return Trust{}, false
}

// PracticeCodes returns the codes of the active GP practices (status A,
// not closed, GP prescribing setting), sorted. The sample generator draws
// registrations from it.
func (r *Reference) PracticeCodes() []string {
	var out []string
	for c, p := range r.practices {
		if p.Active() && p.GPPractice() {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// Postcodes returns the live English postcodes that resolve to an ODS
// sub-ICB, sorted. The sample generator draws residences from it.
func (r *Reference) Postcodes() []string {
	var out []string
	for pc, a := range r.postcodes {
		if a.Live() && a.Country == CountryEngland && a.SubICB != "" {
			out = append(out, pc)
		}
	}
	sort.Strings(out)
	return out
}

// TrustCodes returns the open trusts whose postcode is in the postcode
// table, sorted, so that host mapping works for every one of them.
func (r *Reference) TrustCodes() []string {
	var out []string
	for c, t := range r.trusts {
		if t.Close != "" {
			continue
		}
		if _, ok := r.Postcode(t.Postcode); ok {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

func upperTrim(s string) string {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}
