package refdata

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// The Commissioner Assignment Method (CAM) reference tables. They come from
// NHS England's CAM 2025/26 guidance and its SQL validation tool v5.3 (see
// /work/shared/reference/README.md, files 13-24); the loaders read them in
// their published layouts. All of them are optional to LoadDir: without them
// CAM answers every table question "No" and says so in its explanation.
const (
	ServiceCodesFile       = "cam_service_codes_2024-25_2025-26.csv"
	ReasonsFile            = "cam_commissioner_assignment_reason.csv"
	DirectCommissionerFile = "cam_subicb_to_direct_commissioner.csv"
	JusticeFacilitiesFile  = "cam_health_justice_facilities.csv"
	ArmedForcesFile        = "cam_armed_forces_gp.csv"
	PseudoPostcodesFile    = "cam_pseudo_postcodes_appendix_h.csv"
	DevolvedFile           = "devolved_commissioner_codes.csv"
	WalesLHBFile           = "wales_ltla21_lhb22_lookup.csv"
	ScottishBoardsFile     = "scottish_council_health_board.csv"
	VintagesFile           = "vintages.csv"
)

// Delegation statuses of a service code in a financial year.
const (
	StatusGreen         = "GREEN"
	StatusRed           = "RED"
	StatusBlue          = "BLUE"
	StatusAmber         = "AMBER"
	StatusNotApplicable = "NOT APPLICABLE"
)

// NonDirectServiceCode is the sentinel "non-NHS England directly-commissioned
// service": every flag is set on it, so it must be excluded explicitly.
const NonDirectServiceCode = "99999999"

// ServiceCode is one NHS England service code in one financial year.
type ServiceCode struct {
	Code, Description string
	// Year is the financial year as the file writes it: "24/25", "25/26".
	Year string
	// Status is the ICB delegation status: GREEN, RED, BLUE, AMBER or NOT APPLICABLE.
	Status            string
	HighlySpecialised bool
	Specialised       bool
	SpecialisedMH     bool
	SecondaryDental   bool
	ArmedForces       bool
	PublicHealth      bool
	HealthInJustice   bool
	// To is the line's Effective_To date (YYYY-MM-DD); a line of a year's
	// list that ended before the year is a retired line the list keeps.
	To string
}

// CAMReason is one row of the CAM reason lookup: the code CAM writes, the
// commissioner it names, the reason text and the commissioned service category.
type CAMReason struct {
	Code, Commissioner, Reason, ServiceCategory string
}

// DirectCommissioner maps a sub-ICB to its ICB and to the NHS England
// bodies that directly commission for it, with its delegation status over a
// date range (From and To are YYYY-MM-DD, inclusive).
type DirectCommissioner struct {
	SubICB, ICB, Hub, Region, JusticeHub string
	Delegated                            bool
	From, To                             string
}

// JusticeFacility is one prison, IRC or secure-estate site (CAM Appendix F).
type JusticeFacility struct {
	Code, JusticeCode, Name, Postcode, Hub, PrescribingCode string
}

// ArmedForcesPractice is one Defence Medical Services practice.
type ArmedForcesPractice struct {
	Code, Name, Postcode, Country string
	English                       bool
}

// PseudoPostcode is one overseas pseudo postcode of CAM Appendix H.
type PseudoPostcode struct {
	Country, Postcode string
	// EEA is true for Appendix H table 1 (EU/EEA and states with similar
	// arrangements); false for table 2 (non-EEA reciprocal agreements).
	EEA bool
}

// DevolvedBody is a Welsh, Scottish or Northern Irish commissioner.
type DevolvedBody struct {
	Country, Code, ONSCode, Name string
}

// camTables holds the CAM tables of a Reference.
type camTables struct {
	serviceCodes map[string]map[string]ServiceCode // year -> code
	reasons      map[string]map[string]CAMReason   // commissioner ("" for fallbacks) -> suffix -> reason
	reasonByCode map[string]CAMReason
	direct       map[string][]DirectCommissioner // sub-ICB -> rows by From
	directByICB  map[string]DirectCommissioner
	justiceByPc  map[string]JusticeFacility
	justiceByY0  map[string]JusticeFacility
	armedForces  map[string]ArmedForcesPractice
	pseudo       map[string]PseudoPostcode
	devolvedONS  map[string]DevolvedBody
	devolvedCode map[string]DevolvedBody
	walesLHB     map[string]string // W06 local authority -> LHB ODS code
	scotBoard    map[string]string // S12 council area -> health board ODS code
	regionByONS  map[string]string // E40 -> Y..
	vintages     map[string]string
	tablesLoaded []string
}

// loadCAM reads the optional CAM tables of dir into r.
func (r *Reference) loadCAM(dir string) error {
	t := &camTables{}
	type loader struct {
		name string
		fn   func(*os.File) error
	}
	loaders := []loader{
		{ServiceCodesFile, func(f *os.File) (err error) { t.serviceCodes, err = loadServiceCodes(f); return }},
		{ReasonsFile, func(f *os.File) (err error) { t.reasons, t.reasonByCode, err = loadReasons(f); return }},
		{DirectCommissionerFile, func(f *os.File) (err error) { t.direct, t.directByICB, err = loadDirect(f); return }},
		{JusticeFacilitiesFile, func(f *os.File) (err error) { t.justiceByPc, t.justiceByY0, err = loadJustice(f); return }},
		{ArmedForcesFile, func(f *os.File) (err error) { t.armedForces, err = loadArmedForces(f); return }},
		{PseudoPostcodesFile, func(f *os.File) (err error) { t.pseudo, err = loadPseudo(f); return }},
		{DevolvedFile, func(f *os.File) (err error) { t.devolvedONS, t.devolvedCode, err = loadDevolved(f); return }},
		{WalesLHBFile, func(f *os.File) (err error) { t.walesLHB, err = loadPairs(f, "ltla21_code", "lhb_ods_code"); return }},
		{ScottishBoardsFile, func(f *os.File) (err error) {
			t.scotBoard, err = loadPairs(f, "council_area_code", "health_board_ods_code")
			return
		}},
		{VintagesFile, func(f *os.File) (err error) { t.vintages, err = loadPairs(f, "table", "vintage"); return }},
	}
	for _, l := range loaders {
		found := false
		if err := loadFile(dir, l.name, true, func(f *os.File) error { found = true; return l.fn(f) }); err != nil {
			return err
		}
		if found {
			t.tablesLoaded = append(t.tablesLoaded, l.name)
		}
	}
	t.regionByONS = make(map[string]string)
	for _, s := range r.subByCode {
		if s.RegionONS != "" {
			t.regionByONS[s.RegionONS] = s.Region
		}
	}
	r.cam = t
	return nil
}

// csvTable reads a CSV file with a header into rows keyed by lower-cased column name.
func csvTable(in io.Reader, what string, required ...string) (header, [][]string, error) {
	r := newReader(in)
	h, err := readHeader(r, what)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range required {
		if _, ok := h[c]; !ok {
			return nil, nil, badf(1, "%s header has no %q column", what, c)
		}
	}
	var rows [][]string
	for {
		rec, line, err := r.next()
		if err == io.EOF {
			return h, rows, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if len(rec) != len(h) {
			return nil, nil, badf(line, "%s row has %d columns, header has %d", what, len(rec), len(h))
		}
		row := make([]string, len(rec))
		for i, v := range rec {
			row[i] = r.code(v)
		}
		rows = append(rows, row)
	}
}

func (h header) get(row []string, col string) string {
	if i, ok := h[col]; ok && i < len(row) {
		return row[i]
	}
	return ""
}

func flag(v string) bool { return v == "1" || strings.EqualFold(v, "YES") || strings.EqualFold(v, "Y") }

func loadServiceCodes(in io.Reader) (map[string]map[string]ServiceCode, error) {
	h, rows, err := csvTable(in, "service code", "service code", "icbdelegationstatus", "financial year")
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]ServiceCode)
	for _, row := range rows {
		s := ServiceCode{
			Code:              strings.ToUpper(h.get(row, "service code")),
			Description:       h.get(row, "specialised services service code description"),
			Year:              h.get(row, "financial year"),
			Status:            strings.ToUpper(h.get(row, "icbdelegationstatus")),
			HighlySpecialised: flag(h.get(row, "highly specialised service")),
			Specialised:       flag(h.get(row, "specialised flag")),
			SpecialisedMH:     flag(h.get(row, "specialised mh flag")),
			SecondaryDental:   flag(h.get(row, "secondary dental flag")),
			ArmedForces:       flag(h.get(row, "armed forces flag")),
			PublicHealth:      flag(h.get(row, "public health flag")),
			HealthInJustice:   flag(h.get(row, "health in justice flag")),
			To:                dateOnly(h.get(row, "effective_to")),
		}
		if out[s.Year] == nil {
			out[s.Year] = make(map[string]ServiceCode)
		}
		if _, dup := out[s.Year][s.Code]; !dup {
			out[s.Year][s.Code] = s
		}
	}
	return out, nil
}

// loadReasons indexes the reason lookup by commissioner and the rest of the
// code: "13R_C_0b_1" is commissioner 13R, suffix "C_0b_1"; fallbacks such as
// "C_2_X" and "X" have no commissioner. The published file repeats some rows
// (00L_C_5_1 twice); the first wins.
func loadReasons(in io.Reader) (map[string]map[string]CAMReason, map[string]CAMReason, error) {
	h, rows, err := csvTable(in, "CAM reason", "cam_code", "comm", "commissioner assignment reason", "service category")
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]map[string]CAMReason)
	byCode := make(map[string]CAMReason)
	for _, row := range rows {
		c := CAMReason{
			Code:            h.get(row, "cam_code"),
			Commissioner:    strings.ToUpper(h.get(row, "comm")),
			Reason:          h.get(row, "commissioner assignment reason"),
			ServiceCategory: h.get(row, "service category"),
		}
		suffix := c.Code
		if c.Commissioner != "" {
			suffix = strings.TrimPrefix(c.Code, c.Commissioner+"_")
		}
		if out[c.Commissioner] == nil {
			out[c.Commissioner] = make(map[string]CAMReason)
		}
		if _, dup := out[c.Commissioner][suffix]; !dup {
			out[c.Commissioner][suffix] = c
			byCode[c.Code] = c
		}
	}
	return out, byCode, nil
}

func loadDirect(in io.Reader) (map[string][]DirectCommissioner, map[string]DirectCommissioner, error) {
	h, rows, err := csvTable(in, "sub-ICB to direct commissioner", "subicb_code", "icb_code", "odscommhub", "odsregion",
		"odshealthandjustice", "provisionalicbdelegationstatus", "effective_from", "effective_to")
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string][]DirectCommissioner)
	byICB := make(map[string]DirectCommissioner)
	for _, row := range rows {
		d := DirectCommissioner{
			SubICB:     strings.ToUpper(h.get(row, "subicb_code")),
			ICB:        strings.ToUpper(h.get(row, "icb_code")),
			Hub:        strings.ToUpper(h.get(row, "odscommhub")),
			Region:     strings.ToUpper(h.get(row, "odsregion")),
			JusticeHub: strings.ToUpper(h.get(row, "odshealthandjustice")),
			Delegated:  flag(h.get(row, "provisionalicbdelegationstatus")),
			From:       dateOnly(h.get(row, "effective_from")),
			To:         dateOnly(h.get(row, "effective_to")),
		}
		out[d.SubICB] = append(out[d.SubICB], d)
		if _, ok := byICB[d.ICB]; !ok {
			byICB[d.ICB] = d
		}
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool { return rs[i].From < rs[j].From })
	}
	return out, byICB, nil
}

// dateOnly keeps the YYYY-MM-DD of "2024-04-01 00:00:00.000".
func dateOnly(s string) string {
	if len(s) >= 10 {
		return s[:10]
	}
	return s
}

func loadJustice(in io.Reader) (map[string]JusticeFacility, map[string]JusticeFacility, error) {
	h, rows, err := csvTable(in, "health and justice facility", "justicefacilitycode(eprison)", "justicefacilitypostcode",
		"englandhealthandjusticecommissioninghubcode")
	if err != nil {
		return nil, nil, err
	}
	byPc := make(map[string]JusticeFacility)
	byY0 := make(map[string]JusticeFacility)
	for _, row := range rows {
		j := JusticeFacility{
			Code:            strings.ToUpper(h.get(row, "justicefacilitycode(eprison)")),
			JusticeCode:     strings.ToUpper(h.get(row, "justicefacilitycode(ejustice)")),
			Name:            h.get(row, "justicefacilityname"),
			Postcode:        postcode(h.get(row, "justicefacilitypostcode")),
			Hub:             strings.ToUpper(h.get(row, "englandhealthandjusticecommissioninghubcode")),
			PrescribingCode: strings.ToUpper(h.get(row, "y0prescribingcode")),
		}
		// About 5% of sites share a postcode (the guidance accepts the
		// small risk); the first listed wins.
		if _, ok := byPc[j.Postcode]; j.Postcode != "" && !ok {
			byPc[j.Postcode] = j
		}
		if _, ok := byY0[j.PrescribingCode]; j.PrescribingCode != "" && !ok {
			byY0[j.PrescribingCode] = j
		}
	}
	return byPc, byY0, nil
}

func loadArmedForces(in io.Reader) (map[string]ArmedForcesPractice, error) {
	h, rows, err := csvTable(in, "armed forces practice", "organisation_code", "postcode", "country")
	if err != nil {
		return nil, err
	}
	out := make(map[string]ArmedForcesPractice)
	for _, row := range rows {
		a := ArmedForcesPractice{
			Code:     strings.ToUpper(h.get(row, "organisation_code")),
			Name:     h.get(row, "organisation_name"),
			Postcode: postcode(h.get(row, "postcode")),
			Country:  h.get(row, "country"),
			English:  flag(h.get(row, "english_af_gp_practice_flag")),
		}
		out[a.Code] = a
	}
	return out, nil
}

func loadPseudo(in io.Reader) (map[string]PseudoPostcode, error) {
	h, rows, err := csvTable(in, "pseudo postcode", "country", "pseudo_postcode", "list")
	if err != nil {
		return nil, err
	}
	out := make(map[string]PseudoPostcode)
	for _, row := range rows {
		p := PseudoPostcode{
			Country:  h.get(row, "country"),
			Postcode: postcode(h.get(row, "pseudo_postcode")),
			EEA:      strings.Contains(h.get(row, "list"), "table 1"),
		}
		// One pseudo postcode can serve several territories: if any of them
		// is on the EEA list, the postcode is.
		if q, ok := out[p.Postcode]; ok {
			p.EEA = p.EEA || q.EEA
			p.Country = q.Country
		}
		out[p.Postcode] = p
	}
	return out, nil
}

func loadDevolved(in io.Reader) (map[string]DevolvedBody, map[string]DevolvedBody, error) {
	h, rows, err := csvTable(in, "devolved commissioner", "country", "commissioner_code", "ons_code", "name")
	if err != nil {
		return nil, nil, err
	}
	byONS := make(map[string]DevolvedBody)
	byCode := make(map[string]DevolvedBody)
	for _, row := range rows {
		d := DevolvedBody{Country: h.get(row, "country"), Code: strings.ToUpper(h.get(row, "commissioner_code")),
			ONSCode: strings.ToUpper(h.get(row, "ons_code")), Name: h.get(row, "name")}
		if d.ONSCode != "" {
			byONS[d.ONSCode] = d
		}
		if d.Code != "" {
			byCode[d.Code] = d
		}
	}
	return byONS, byCode, nil
}

// loadPairs reads a two-column mapping out of a CSV with a header.
func loadPairs(in io.Reader, key, value string) (map[string]string, error) {
	h, rows, err := csvTable(in, key+" lookup", key, value)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, row := range rows {
		k := strings.ToUpper(h.get(row, key))
		if _, ok := out[k]; !ok && k != "" {
			out[k] = h.get(row, value)
		}
	}
	return out, nil
}

// ServiceCode looks up a service code in a financial year ("25/26").
func (r *Reference) ServiceCode(year, code string) (ServiceCode, bool) {
	if r.cam == nil {
		return ServiceCode{}, false
	}
	s, ok := r.cam.serviceCodes[year][upperTrim(code)]
	return s, ok
}

// ServiceCodeListed reports whether code is in the service code list of
// financial year year ("25/26") and whether the table has that year at all
// (validation rule CODE-031: spec.ServiceCodeDirectory). Case and
// surrounding spaces are ignored, as commissioner assignment ignores them.
func (r *Reference) ServiceCodeListed(year, code string) (listed, haveYear bool) {
	if r == nil || r.cam == nil {
		return false, false
	}
	codes, haveYear := r.cam.serviceCodes[year]
	if !haveYear {
		return false, false
	}
	_, listed = codes[upperTrim(code)]
	return listed, true
}

// ServiceCodeEnd is the Effective_To date (YYYY-MM-DD) of code's line in
// the service code list of financial year year ("25/26"): "" when the line
// has none or the list has no such code (validation rule CODE-032,
// spec.ServiceCodeDirectory). Case and surrounding spaces are ignored.
func (r *Reference) ServiceCodeEnd(year, code string) string {
	s, _ := r.ServiceCode(year, code)
	return s.To
}

// ServiceCodeYears lists the financial years the service code table covers.
func (r *Reference) ServiceCodeYears() []string {
	if r.cam == nil {
		return nil
	}
	var out []string
	for y := range r.cam.serviceCodes {
		out = append(out, y)
	}
	sort.Strings(out)
	return out
}

// Reason looks up the CAM reason of commissioner comm and suffix (e.g. "36L",
// "C_5_1"); comm is "" for the fallbacks ("C_2_X", "X").
func (r *Reference) Reason(comm, suffix string) (CAMReason, bool) {
	if r.cam == nil {
		return CAMReason{}, false
	}
	c, ok := r.cam.reasons[comm][suffix]
	return c, ok
}

// ReasonByCode looks up a CAM reason by its full code ("13R_C_0b_1").
func (r *Reference) ReasonByCode(code string) (CAMReason, bool) {
	if r.cam == nil {
		return CAMReason{}, false
	}
	c, ok := r.cam.reasonByCode[code]
	return c, ok
}

// DirectCommissioner returns the row of sub-ICB code in effect on day
// (YYYY-MM-DD). A day outside every row's range gets the nearest row, so the
// hub, region and H&J hub are still known; Delegated is then the nearest
// row's.
func (r *Reference) DirectCommissioner(code, day string) (DirectCommissioner, bool) {
	if r.cam == nil {
		return DirectCommissioner{}, false
	}
	rows := r.cam.direct[upperTrim(code)]
	if len(rows) == 0 {
		return DirectCommissioner{}, false
	}
	for _, d := range rows {
		if day >= d.From && (d.To == "" || day <= d.To) {
			return d, true
		}
	}
	if day < rows[0].From {
		return rows[0], true
	}
	return rows[len(rows)-1], true
}

// DirectCommissionerByICB returns a row of any sub-ICB of ICB code: its
// hub, region and H&J hub are the ICB's.
func (r *Reference) DirectCommissionerByICB(icb string) (DirectCommissioner, bool) {
	if r.cam == nil {
		return DirectCommissioner{}, false
	}
	d, ok := r.cam.directByICB[upperTrim(icb)]
	return d, ok
}

// JusticeFacilityByPostcode finds the Appendix F site at a normalised postcode.
func (r *Reference) JusticeFacilityByPostcode(pc string) (JusticeFacility, bool) {
	if r.cam == nil {
		return JusticeFacility{}, false
	}
	j, ok := r.cam.justiceByPc[pc]
	return j, ok
}

// ArmedForcesPractice looks up a Defence Medical Services practice.
func (r *Reference) ArmedForcesPractice(code string) (ArmedForcesPractice, bool) {
	if r.cam == nil {
		return ArmedForcesPractice{}, false
	}
	a, ok := r.cam.armedForces[upperTrim(code)]
	return a, ok
}

// PseudoPostcode looks up an Appendix H overseas pseudo postcode.
func (r *Reference) PseudoPostcode(pc string) (PseudoPostcode, bool) {
	if r.cam == nil {
		return PseudoPostcode{}, false
	}
	p, ok := r.cam.pseudo[pc]
	return p, ok
}

// DevolvedByONS finds the Welsh LHB, Scottish health board or NI LCG of an
// ONS code (W11..., S08..., ZC0n0).
func (r *Reference) DevolvedByONS(ons string) (DevolvedBody, bool) {
	if r.cam == nil {
		return DevolvedBody{}, false
	}
	d, ok := r.cam.devolvedONS[upperTrim(ons)]
	return d, ok
}

// WelshLHB returns the LHB (7A1-7A7) of a Welsh local authority (W06...).
func (r *Reference) WelshLHB(la string) string {
	if r.cam == nil {
		return ""
	}
	return r.cam.walesLHB[upperTrim(la)]
}

// ScottishHealthBoard returns the health board ODS code (S?9) of a Scottish
// council area (S12...).
func (r *Reference) ScottishHealthBoard(council string) string {
	if r.cam == nil {
		return ""
	}
	return r.cam.scotBoard[upperTrim(council)]
}

// RegionByONS maps an NHS England region's ONS code (E40...) to its ODS
// code (Y..).
func (r *Reference) RegionByONS(ons string) string {
	if r.cam == nil {
		return ""
	}
	return r.cam.regionByONS[ons]
}

// Vintage names the release of a reference table (by file name), from
// vintages.csv; "unknown" when it does not say.
func (r *Reference) Vintage(table string) string {
	if r.cam != nil {
		if v, ok := r.cam.vintages[strings.ToUpper(table)]; ok && v != "" {
			return v
		}
	}
	return "unknown"
}

// CAMTables lists the CAM table files that were loaded.
func (r *Reference) CAMTables() []string {
	if r.cam == nil {
		return nil
	}
	return append([]string(nil), r.cam.tablesLoaded...)
}

// String describes the CAM tables loaded, for start-up logs.
func (t *camTables) String() string {
	return fmt.Sprintf("CAM tables: %s", strings.Join(t.tablesLoaded, ", "))
}
