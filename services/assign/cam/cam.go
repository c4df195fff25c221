// Package cam is NHS England's Commissioner Assignment Method (CAM): it
// decides which commissioner pays for a de-identified activity by walking
// the published flow chart, step by step, for the financial year the
// activity falls in (2024/25 or 2025/26), and says how it got there.
//
// The authority is "Commissioner Assignment Method Flow Chart 2025/26:
// Accompanying Guidance and Reference Tables" v1.1 (24 March 2025) and its
// flow chart; the reason codes and strings are those of NHS England's CAM
// SQL validation tool v5.3 (cam_commissioner_assignment_reason.csv). Where
// the two are silent or disagree, the choice made is written down in
// docs/commissioner-assignment.md ("Choices") and in the comment at the
// step. Section references in comments are to the 2025/26 guidance.
//
// The package is plain Go: it reads refdata.Reference and the activity, and
// returns a Result value. The CAM date is taken from the activity; nothing
// here reads the clock.
package cam

import (
	"strings"
	"sync"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// Commissioner types (the kind of body a commissioner code names).
const (
	TypePrivate  = "Private"
	TypeDevolved = "Devolved Administration"
	TypeNHSE     = "NHS England"
	TypeSubICB   = "Sub-ICB"
	TypeLA       = "Local Authority"
	TypeOther    = "Other"
	TypeUnknown  = "Unknown"
)

// Codes CAM assigns that are not looked up.
const (
	CodePrivate     = "VPP00" // private patient or chargeable overseas visitor (guidance p.12)
	CodeArmedForces = "13Q"   // NHS England armed forces commissioning hub (p.13)
	CodeWHSSC       = "7A5HC" // Welsh Health Specialised Services Committee (p.19)
	CodeNSD         = "SD002" // NHS Scotland National Services Division (p.16)
	CodeWelshGov    = "W01"   // Welsh Government, for a Welsh resident with no LHB (p.19)
)

// Assigner applies CAM against reference data. It only reads the
// Reference, so one Assigner is safe for concurrent use.
type Assigner struct {
	ref *refdata.Reference
	// vintages[t] is "file=vintage" of table t, built once.
	vintages [numTables]string
	// templates are the published reason texts by suffix ("C_6_1"), for a
	// commissioner the published table leaves out (see reason).
	templates map[string]refdata.CAMReason
	// codes are the reason codes made up from a commissioner and a suffix.
	codes codeCache
	// results recycles Results between Assign calls: a Result keeps its
	// trail's storage, which is too big to allocate per record.
	results sync.Pool
}

// NewAssigner returns an Assigner over ref (nil: no reference data, so
// every look-up fails and activity ends unassigned).
func NewAssigner(ref *refdata.Reference) *Assigner {
	a := &Assigner{ref: ref, templates: make(map[string]refdata.CAMReason)}
	for t := table(0); t < numTables; t++ {
		v := "unknown"
		if ref != nil {
			v = ref.Vintage(tableFiles[t])
		}
		a.vintages[t] = tableFiles[t] + "=" + v
	}
	if ref != nil {
		// Any sub-ICB's or hub's row gives the text of a suffix.
		for _, comm := range []string{"00L", "13R", "14M", "Y56"} {
			for _, s := range []string{"C_5_1", "C_6_1", "C_6_2", "C_6_3", "D_1", "D_2", "D_3",
				"C_0b_1", "C_0b_2", "C_0b_3", "C_0b_4", "C_0b_5", "C_2_1",
				"C_6_4", "C_6_5", "C_6_6", "C_6_7", "C_6_8", "E_1", "F_1", "F_2", "F_3", "F_4", "F_5"} {
				if r, ok := ref.Reason(comm, s); ok {
					a.templates[s] = r
				}
			}
		}
	}
	return a
}

// Assign applies the version in effect on the activity's CAM date and
// returns the result as the record's Assignment.
func (a *Assigner) Assign(act *dmicv1.DeidentifiedActivity) *dmicv1.Assignment {
	r, _ := a.results.Get().(*Result)
	if r == nil {
		r = new(Result)
	}
	a.Decide(act, nil, r)
	out := a.Proto(r)
	a.results.Put(r)
	return out
}

// Decide walks the flow chart for act under version v (nil: the version in
// effect on the CAM date) and writes the outcome into r, which it resets.
// It never fails: when nothing can be determined the result is reason X.
func (a *Assigner) Decide(act *dmicv1.DeidentifiedActivity, v *Version, r *Result) {
	// Reset field by field, keeping the trail's storage.
	r.Version, r.Date, r.Step, r.Commissioner = "", "", "", ""
	r.ReasonCode, r.Reason, r.ServiceCategory, r.CommissionerType, r.Method = "", "", "", "", ""
	r.Tables, r.trail, r.parts = 0, r.trail[:0], r.parts[:0]
	x := run{a: a, ref: a.ref, act: act, r: r}
	x.r.Date = record.CAMDate(act, act.GetActivityDate())
	if v == nil {
		var exact bool
		v, exact = VersionFor(x.r.Date)
		if !exact {
			x.note("version", "No CAM version covers the CAM date; the nearest is applied", x.w(x.r.Date))
		}
	}
	x.v, x.r.Version = v, v.Name
	// The version's tables are those of its year: delegation status is read
	// at the CAM date held within the version's dates, so re-running
	// activity under another year's version uses that year's agreements.
	x.tableDate = x.r.Date
	if x.tableDate < v.From {
		x.tableDate = v.From
	} else if x.tableDate > v.To {
		x.tableDate = v.To
	}
	if act == nil || a.ref == nil {
		x.none("X", x.w("no activity or no reference data"))
		return
	}
	if x.excluded() {
		return
	}
	if act.GetEmergencyCare() != nil {
		x.emergencyCare()
		return
	}
	x.admittedOrOutpatient()
}

// run is one walk through the flow chart: the activity, the version and
// what has been looked up so far.
type run struct {
	a   *Assigner
	ref *refdata.Reference
	act *dmicv1.DeidentifiedActivity
	v   *Version
	r   *Result
	// tableDate is the date the version's dated tables are read at.
	tableDate string

	pracDone bool
	prac     refdata.Practice
	pracOpen bool

	resDone bool
	res     residence

	hostDone bool
	host     hostArea

	svcDone bool
	svc     refdata.ServiceCode
	svcOK   bool
}

// Residence kinds.
const (
	resKnown        = iota // a UK postcode in the reference data
	resProviderSite        // missing, unallocatable or UK-unspecified pseudo postcode: use the provider's main site
	resOverseas            // an overseas pseudo postcode
)

type residence struct {
	kind                                   int
	country, subICB, icb, la, area, region string
	// src says where the residence came from, for the trail.
	src why
}

type hostArea struct {
	ok                               bool
	trust, postcode                  string
	subICB, icb, country, region, la string
}

// ukPseudo are the pseudo postcodes the guidance sends to the provider's
// main site, with England as the country (p.7, and steps A&E-1, B, WB-3).
func ukPseudo(code string) bool {
	switch code {
	case "3WZ", "3VZ", "3CZ", "3GZ", "1WZ", "2WZ":
		return true
	}
	return false
}

// residence is the patient's usual place of residence as CAM reads it.
func (x *run) residence() *residence {
	if x.resDone {
		return &x.res
	}
	x.resDone = true
	r := x.act.GetResidence()
	x.r.Tables |= 1 << tPostcodes
	switch pc := r.GetPseudoPostcode(); {
	case pc != "" && ukPseudo(pc):
		x.res = residence{kind: resProviderSite, src: x.w("pseudo postcode code ", pc)}
	case pc != "":
		x.res = residence{kind: resOverseas, src: x.w("overseas pseudo postcode code ", pc)}
	case r.GetCountry() == "" && r.GetSubIcb() == "":
		// Missing, invalid or not in the postcode directory. The guidance
		// sends missing postcodes to the provider's main site; a postcode
		// the directory does not know is treated the same (choice 3).
		note := r.GetNote()
		if note == "" {
			note = "no postcode area"
		}
		x.res = residence{kind: resProviderSite, src: x.w(note)}
	default:
		x.res = residence{kind: resKnown, country: r.GetCountry(), subICB: r.GetSubIcb(), icb: r.GetIcb(),
			la: r.GetLocalAuthority(), area: r.GetHealthArea(), region: r.GetRegion(), src: x.w("postcode area")}
	}
	if x.res.kind == resProviderSite {
		// The provider's main site stands for the residence "when
		// determining commissioning payment responsibilities" (p.7, and
		// the Responsible sub-ICB method, p.11): all of its areas, the
		// local authority of step H (p.21, p.54) included.
		h := x.hostArea()
		x.res.country, x.res.subICB, x.res.icb, x.res.region, x.res.la = refdata.CountryEngland, h.subICB, h.icb, h.region, h.la
	}
	return &x.res
}

// hostArea is the provider's main site as CAM defines the host (p.10): the
// postcode of the provider in ODS etr, looked up in the postcode directory.
func (x *run) hostArea() *hostArea {
	if x.hostDone {
		return &x.host
	}
	x.hostDone = true
	x.r.Tables |= 1<<tTrusts | 1<<tPostcodes
	t, ok := x.ref.Trust(x.act.GetProviderCode())
	if !ok || t.Postcode == "" {
		return &x.host
	}
	x.host.trust, x.host.postcode = t.Code, t.Postcode
	area, ok := x.ref.Postcode(t.Postcode)
	if !ok || area.SubICB == "" {
		return &x.host
	}
	x.host.ok = true
	x.host.subICB, x.host.icb, x.host.country = area.SubICB, area.ICB, area.Country
	x.host.region, x.host.la = area.RegionONS, area.LocalAuthority
	return &x.host
}

// notRegistered reports a missing GP practice code or one of the default
// codes (p.11; refdata.PracticeDefaultCode, the one list).
func notRegistered(code string) bool {
	return code == "" || refdata.PracticeDefaultCode(code)
}

// practice is the patient's GP practice and whether it was active or
// proposed on the CAM date (p.11-12: status A or P "on the assignment date";
// epraccur's open and close dates stand for the status history, and its
// status for what they cannot tell: D is neither, P is proposed).
func (x *run) practice() (refdata.Practice, bool) {
	if x.pracDone {
		return x.prac, x.pracOpen
	}
	x.pracDone = true
	code := strings.ToUpper(strings.TrimSpace(x.act.GetDemographics().GetGeneralMedicalPracticeCode()))
	if notRegistered(code) {
		return x.prac, false
	}
	x.r.Tables |= 1 << tPractices
	p, ok := x.ref.Practice(code)
	if !ok {
		return x.prac, false
	}
	x.prac = p
	switch {
	case p.Status == "D":
		// Dormant is neither A nor P, and epraccur gives no date it began.
		x.pracOpen = false
	case p.Status == "P" && x.r.Date != "":
		// Proposed counts though the practice has not opened yet (its
		// open date may be after the CAM date): only a close date ends it.
		unopened := p
		unopened.Open = ""
		x.pracOpen = unopened.OpenOn(x.r.Date)
	case x.r.Date != "":
		// A closed practice with no close date has no known open period.
		x.pracOpen = p.OpenOn(x.r.Date) && !(p.Status == "C" && p.Close == "")
	default:
		x.pracOpen = p.Active() || p.Status == "P"
	}
	return x.prac, x.pracOpen
}

func (x *run) practiceCode() string {
	return strings.ToUpper(strings.TrimSpace(x.act.GetDemographics().GetGeneralMedicalPracticeCode()))
}

// englishPractice reports registration with an English GP practice on the
// CAM date (B-4, p.34): a known practice, National Grouping not W00, open.
func (x *run) englishPractice() bool {
	p, open := x.practice()
	switch p.HighLevelHealthGeography {
	case "YAC", "YAD", "YAE", "YAF":
		// Crown Dependency practices (B, p.29) are not English.
		return false
	}
	return open && p.NationalGrouping != "" && p.NationalGrouping != "W00" && !welshLHB(p.Commissioner)
}

// dmsEnglish reports registration with an English Defence Medical Services
// practice (J, p.55): commissioner 13Q on the CAM date and the practice's
// postcode in England. The practice postcode's country comes from the
// postcode directory, else from the armed forces practice list.
func (x *run) dmsEnglish() (bool, why) {
	p, open := x.practice()
	if !open || p.Commissioner != CodeArmedForces {
		return false, x.w("(none)")
	}
	if strings.HasPrefix(p.Postcode, "BF") {
		return false, x.w(p.Code, " is a BFPO (overseas) DMS practice")
	}
	if a, ok := x.ref.Postcode(p.Postcode); ok {
		return a.Country == refdata.CountryEngland, x.w(p.Code, " postcode country ", a.Country)
	}
	x.r.Tables |= 1 << tArmedForces
	if af, ok := x.ref.ArmedForcesPractice(p.Code); ok {
		return af.Country == refdata.CountryEngland, x.w(p.Code, " country ", af.Country, " (armed forces practice list)")
	}
	return false, x.w(p.Code, " practice postcode not in the postcode directory")
}

func welshLHB(c string) bool {
	switch c {
	case "7A1", "7A2", "7A3", "7A4", "7A5", "7A6", "7A7":
		return true
	}
	return false
}

// serviceCode is the activity's service code in the version's list. The
// sentinel 99999999 ("non-NHS England directly-commissioned") is treated as
// no service code: every flag is set on it.
func (x *run) serviceCode() (refdata.ServiceCode, bool) {
	if x.svcDone {
		return x.svc, x.svcOK
	}
	x.svcDone = true
	code := strings.ToUpper(strings.TrimSpace(x.act.GetServiceCode()))
	if code == "" || code == refdata.NonDirectServiceCode {
		return x.svc, false
	}
	x.r.Tables |= 1 << tServiceCodes
	x.svc, x.svcOK = x.ref.ServiceCode(x.v.ServiceYear, code)
	if x.svcOK && x.svc.To != "" && x.svc.To < x.v.From {
		// A retired line the year's list keeps (Effective_To before the
		// year): no service of the year, for C-0, B-1 and F alike.
		x.svcOK = false
	}
	return x.svc, x.svcOK
}

// specialised reports whether the service code is a specialised service
// line in the year (C, C-0): flagged specialised (or specialised mental
// health) with a delegation status. NOT APPLICABLE lines (public health,
// armed forces, H&J reporting codes) are not specialised.
func (x *run) specialised() (refdata.ServiceCode, bool) {
	s, ok := x.serviceCode()
	if !ok || !(s.Specialised || s.SpecialisedMH) {
		return s, false
	}
	switch s.Status {
	case refdata.StatusGreen, refdata.StatusRed, refdata.StatusBlue, refdata.StatusAmber:
		return s, true
	}
	return s, false
}

// responsible is the responsible sub-ICB location (p.11-12): the GP
// practice's sub-ICB; else the sub-ICB of the postcode of usual address;
// else (no usable postcode) the host. how is 1, 2 or 3 accordingly, 0 when
// none is found.
func (x *run) responsible() (code string, how int, because why) {
	gp := x.practiceCode()
	res := x.residence()
	var usePostcode why
	switch {
	case notRegistered(gp):
		usePostcode = x.w("GP practice ", orNone(gp), " is a no-registration code")
	case x.act.GetResidence().GetJusticeFacilityCode() != "":
		usePostcode = x.w("the postcode is a health and justice site")
	default:
		if ok, _ := x.dmsEnglish(); ok {
			usePostcode = x.w("registered with an English DMS practice")
		}
	}
	if usePostcode.n == 0 {
		p, open := x.practice()
		switch {
		case !open:
			usePostcode = x.w("practice ", gp, " not in epraccur as open on ", x.r.Date)
		case p.NationalGrouping == "W00":
			usePostcode = x.w("practice ", gp, " is Welsh (national grouping W00)")
		default:
			x.r.Tables |= 1 << tSubICBs
			if _, ok := x.ref.SubICBByCode(p.Commissioner); ok {
				return p.Commissioner, 1, x.w("practice ", gp, " open on ", x.r.Date, ", commissioner ", p.Commissioner)
			}
			usePostcode = x.w("practice ", gp, " commissioner ", orNone(p.Commissioner), " is not a sub-ICB")
		}
	}
	if res.kind == resKnown && res.subICB != "" {
		return res.subICB, 2, x.and(usePostcode, "; postcode sub-ICB ", res.subICB)
	}
	if h := x.hostArea(); h.ok {
		return h.subICB, 3, x.and(x.then(usePostcode, "; residence ", res.src), ": host ", h.trust, " main site sub-ICB ", h.subICB)
	}
	return "", 0, x.and(usePostcode, "; no postcode sub-ICB and no host for provider ", orNone(x.act.GetProviderCode()))
}

// directFor finds the direct-commissioning row of the patient by
// responsibility, as the reason codes number it: 1 the GP practice's
// sub-ICB, 2 the practice's ICB, 3 the residence sub-ICB, 4 the residence
// ICB, 5 the host sub-ICB; 0 when none is found.
//
// hub says which method: the specialised hub by GP practice (C-0b, C-6
// No), whose "responsible GP practice method" places the health and justice
// population and patients of English DMS practices by their postcode
// (p.14-15); or the public health region (F, p.21-22), which places a DMS
// practice's patients by the practice's postcode and has no health and
// justice clause. A practice code the look-up does not match (unknown, not
// A or P on the date, or Welsh) reverts to the provider method for the hub
// (p.15), whose hub is the host's (providerHub), so 5; and to the postcode
// for the region (p.22).
func (x *run) directFor(hub bool) (refdata.DirectCommissioner, int, why) {
	x.r.Tables |= 1 << tDirect
	gp := x.practiceCode()
	usePractice := !notRegistered(gp)
	dms := false
	if usePractice {
		dms, _ = x.dmsEnglish()
		if hub && (dms || x.act.GetResidence().GetJusticeFacilityCode() != "") {
			usePractice = false
		}
	}
	// noMatch: a registration code the hub method's epraccur look-up (national
	// grouping not W00, status A or P on the date) does not find, so it
	// "reverts to the provider method" (p.15); the region method reverts to
	// the postcode (p.22), as the responsible sub-ICB does (p.12).
	var noMatch why
	if usePractice {
		p, open := x.practice()
		if open && p.NationalGrouping != "W00" {
			sub := p.Commissioner
			if dms {
				if a, ok := x.ref.Postcode(p.Postcode); ok {
					sub = a.SubICB
				}
			}
			if d, ok := x.ref.DirectCommissioner(sub, x.tableDate); ok {
				return d, 1, x.w("practice ", gp, " sub-ICB ", sub)
			}
			if d, ok := x.ref.DirectCommissionerByICB(p.HighLevelHealthGeography); ok {
				return d, 2, x.w("practice ", gp, " ICB ", p.HighLevelHealthGeography)
			}
		} else if hub {
			noMatch = x.w("practice ", gp, " not in epraccur as open (A/P) and not W00 on ", x.r.Date, ": provider method (p.15); ")
		}
	}
	res := x.residence()
	if res.kind == resKnown && noMatch.n == 0 {
		if d, ok := x.ref.DirectCommissioner(res.subICB, x.tableDate); ok {
			return d, 3, x.w("postcode sub-ICB ", res.subICB)
		}
		if d, ok := x.ref.DirectCommissionerByICB(res.icb); ok {
			return d, 4, x.w("postcode ICB ", res.icb)
		}
	}
	if h := x.hostArea(); h.ok {
		if d, ok := x.ref.DirectCommissioner(h.subICB, x.tableDate); ok {
			return d, 5, x.and(noMatch, "host ", h.trust, " sub-ICB ", h.subICB)
		}
	}
	return refdata.DirectCommissioner{}, 0, x.and(noMatch, "no practice, postcode or host sub-ICB in the direct commissioning table")
}

// providerHub is the NHS England specialised commissioning hub holding the
// provider's contract. The ODS provider-to-hub mapping is not available, so
// (as the reason text of C_2_1 says the SQL tool does) the hub of the
// provider's host sub-ICB stands for it.
func (x *run) providerHub() (string, why) {
	h := x.hostArea()
	if !h.ok {
		return "", x.w("no host sub-ICB for provider ", orNone(x.act.GetProviderCode()))
	}
	x.r.Tables |= 1 << tDirect
	d, ok := x.ref.DirectCommissioner(h.subICB, x.tableDate)
	if !ok {
		return "", x.w("host sub-ICB ", h.subICB, " not in the direct commissioning table")
	}
	return d.Hub, x.w("host ", h.trust, " sub-ICB ", h.subICB, " hub ", d.Hub)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
