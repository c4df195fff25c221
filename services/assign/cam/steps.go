package cam

import (
	"strings"

	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// excluded takes drug and device lines out of CAM: the 2025/26 guidance
// does not assign them, and NHS England's SQL tool v5.3 leaves point of
// delivery DRUG/DEVICE and service categories 31, 32 and 41 (high-cost
// drugs and devices) to their own contract lines (choice 1). The provider's
// commissioner is kept.
func (x *run) excluded() bool {
	pod := strings.ToUpper(strings.TrimSpace(x.act.GetPointOfDeliveryCode()))
	if pod == "" {
		pod = strings.ToUpper(strings.TrimSpace(x.act.GetLocalFlow().GetPointOfDeliveryCode()))
	}
	cat := strings.TrimSpace(x.act.GetCommissionedServiceCategoryCode())
	drug := pod == "DRUG" || pod == "DEVICE" || cat == "31" || cat == "32" || cat == "41"
	x.ask("EXCL", drug, "point of delivery / service category", x.w("POD ", orNone(pod), ", category ", orNone(cat)))
	if !drug {
		return false
	}
	comm := strings.ToUpper(strings.TrimSpace(x.act.GetSubmittedCommissionerCode()))
	x.assign("EXCL", "", "EXCL_1", TypeOther, "Excluded (drugs and devices)")
	x.r.Commissioner = comm
	x.r.ServiceCategory = cat
	return true
}

// emergencyCare is the A&E path of the flow chart (dashed lines): A&E-1,
// then J; no private patient, overseas visitor, specialised or health and
// justice question is asked (E: "do not commission accident and emergency
// care", p.49).
func (x *run) emergencyCare() {
	res := x.residence()
	england := res.country == refdata.CountryEngland
	x.ask("A&E-1", england, "usual place of residence", x.and(res.src, ", country ", orNone(res.country)))
	if !england {
		h := x.hostArea()
		if !h.ok {
			x.none("X", x.w("no host sub-ICB for provider ", orNone(x.act.GetProviderCode())))
			return
		}
		x.assign("A&E-1", h.subICB, "AE_1_2", TypeSubICB, "Sub-ICB (Host Mapped)")
		return
	}
	if x.armedForces() {
		return
	}
	x.responsibleSubICB("J", "AE_1_1", nil, "")
}

// admittedOrOutpatient is the main path (CDS 120-200 and 020): A, B, then
// the border questions.
func (x *run) admittedOrOutpatient() {
	// A (p.27): OVERSEAS VISITOR CHARGING CATEGORY D or F, or
	// ADMINISTRATIVE CATEGORY 02.
	ovc, ovcWhy := x.chargingCategory()
	admin := strings.TrimSpace(x.act.GetAdministrativeCategoryCode())
	private := admin == "02"
	chargeable := ovc == "D" || ovc == "F"
	x.ask("A", private || chargeable, "charging category / administrative category", x.and(ovcWhy, ", administrative category ", orNone(admin)))
	if private || chargeable {
		method := "Private Patient"
		if !private {
			method = "Non-reciprocal OSVs"
		}
		x.assign("A", CodePrivate, "A_1", TypePrivate, method)
		return
	}
	if x.ordinarilyResident(ovc) {
		x.border()
		return
	}
	x.overseas(ovc)
}

// chargingCategory is OVERSEAS VISITOR CHARGING CATEGORY. A record that
// carries only the older OVERSEAS VISITOR STATUS CLASSIFICATION has it
// mapped (choice 2): 8 not an overseas visitor -> A, 1 exempt (reciprocal)
// -> C, 2 exempt (other) -> E, 3 and 4 (fees) -> D.
func (x *run) chargingCategory() (string, why) {
	if c := strings.ToUpper(strings.TrimSpace(x.act.GetOverseasVisitorChargingCategory())); c != "" {
		return c, x.w("charging category ", c)
	}
	s := strings.TrimSpace(x.act.GetOverseasVisitorStatusCode())
	switch s {
	case "8":
		return "A", x.w("charging category A (from overseas visitor status 8)")
	case "1":
		return "C", x.w("charging category C (from overseas visitor status 1)")
	case "2":
		return "E", x.w("charging category E (from overseas visitor status 2)")
	case "3", "4":
		return "D", x.w("charging category D (from overseas visitor status ", s, ")")
	}
	return "", x.w("charging category not recorded")
}

// ordinarilyResident is step B (p.27-30).
func (x *run) ordinarilyResident(ovc string) bool {
	switch ovc {
	case "B", "C", "D", "E", "F":
		x.ask("B", false, "charging category", x.w(ovc, ": an overseas visitor"))
		return false
	case "A":
	default:
		// The guidance's rule for any value it does not name (p.9): a
		// question that needs a value to answer Yes is answered No.
		x.ask("B", false, "charging category", x.w("not A (", orNone(ovc), "): answered No, as the methodology says of unstated values"))
		return false
	}
	p, open := x.practice()
	if open && (strings.HasPrefix(p.Postcode, "BF1 ") || strings.HasPrefix(p.Postcode, "BF2 ")) {
		x.ask("B", false, "GP practice", x.w("practice ", p.Code, " has a BFPO (BF1/BF2) postcode"))
		return false
	}
	if open {
		switch p.HighLevelHealthGeography {
		case "YAC", "YAD", "YAE", "YAF":
			x.ask("B", false, "GP practice", x.w("practice ", p.Code, " high level health geography ", p.HighLevelHealthGeography, " (Crown Dependency)"))
			return false
		}
	}
	res := x.residence()
	uk := res.kind != resOverseas && ukCountry(res.country)
	x.ask("B", uk, "usual place of residence", x.and(x.then(x.w("charging category A, "), "", res.src), ", country ", orNone(res.country)))
	return uk
}

// ukCountry reports a UK home country (B, p.29: E92000001, W92000004,
// S92000003 or N92000002).
func ukCountry(c string) bool {
	switch c {
	case refdata.CountryEngland, refdata.CountryWales, refdata.CountryScotland, refdata.CountryNorthernIreland:
		return true
	}
	return false
}

// overseas is B-1 to B-4: not ordinarily resident in the UK.
func (x *run) overseas(ovc string) {
	// B-1 (p.31): a highly specialised line of the year. The list keeps
	// retired lines (status NOT APPLICABLE) that no identification rule of
	// the year derives; C/C-0 read them as not specialised, and so does B-1.
	s, spec := x.specialised()
	highly := spec && s.HighlySpecialised
	x.ask("B-1", highly, "service code", x.serviceWhy(s, s.Code != ""))
	if highly {
		code := x.act.GetResidence().GetPseudoPostcode()
		x.r.Tables |= 1 << tPseudo
		p, found := x.ref.PseudoPostcode("ZZ99 " + code)
		eea := found && p.EEA
		// The trail names the pseudo postcode by its code and country only:
		// the whole "ZZ99 nXZ" is the value submitted as the postcode.
		x.ask("B-2", eea, "pseudo postcode (Appendix H)", x.w("code ", orNone(code), " ", p.Country))
		if eea {
			hub, because := x.providerHub()
			if hub == "" {
				x.none("X", because)
				return
			}
			x.ask("B-2", true, "provider hub", because)
			x.assign("B-2", hub, "B_2_1", TypeNHSE, "NHSE (Contracted Specialised)")
			return
		}
	}
	// B-3: covered by a reciprocal healthcare agreement. The charging
	// category that says so is C (choice 4); the OSV guidance then makes a
	// sub-ICB pay, responsible or host (p.25).
	reciprocal := ovc == "C"
	x.ask("B-3", reciprocal, "charging category", x.w(orNone(ovc)))
	// B-4's methods are the responsible sub-ICB's own (practice, postcode
	// or host mapped, as it was found); B-3's are the SUS "Reciprocal OSVs".
	step, resp, host, method, hostMethod := "B-4", "B_4_1", "B_4_2", "", "Sub-ICB (Host Mapped)"
	if reciprocal {
		step, resp, host, method, hostMethod = "B-3", "B_3_1", "B_3_2", "Reciprocal OSVs", "Reciprocal OSVs"
	}
	// B-4: registered with an English GP -> responsible sub-ICB, else host
	// (p.34). Under B-3 the OSV guidance also counts a UK address (p.25):
	// a postcode of any of the four countries, Wales, Scotland and Northern
	// Ireland included (the responsible sub-ICB is then the host, p.12).
	english := x.englishPractice()
	res := x.residence()
	ukAddress := reciprocal && res.kind == resKnown && ukCountry(res.country)
	x.ask(step, english || ukAddress, "registered with an English GP practice", x.practiceWhy())
	if english || ukAddress {
		x.responsibleSubICB(step, resp, nil, method)
		return
	}
	h := x.hostArea()
	if !h.ok {
		x.none("X", x.w("no host sub-ICB for provider ", orNone(x.act.GetProviderCode())))
		return
	}
	x.assign(step, h.subICB, host, TypeSubICB, hostMethod)
}

// Cross-border area of the England-Wales protocol (WB-1, p.35): English
// ICBs on the border and Welsh unitary authorities.
func (x *run) borderArea() (bool, why) {
	res := x.residence()
	if res.kind != resKnown {
		return false, res.src
	}
	switch res.icb {
	case "QYG", "QOC", "QGH", "QR1", "QUY":
		return true, x.w("postcode ICB ", res.icb)
	}
	switch res.la {
	case "W06000005", "W06000006", "W06000023", "W06000021", "W06000004":
		return true, x.w("postcode unitary authority ", res.la)
	}
	return false, x.w("postcode ICB ", orNone(res.icb), ", local authority ", orNone(res.la))
}

// border is WB-1 to WB-3 (p.35-37).
func (x *run) border() {
	p, open := x.practice()
	inArea, areaWhy := x.borderArea()
	welshGP := open && welshLHB(p.Commissioner)
	x.ask("WB-1", welshGP && inArea, "Welsh GP and border residence", x.then(x.practiceWhy(), "; ", areaWhy))
	if welshGP && inArea {
		x.devolved(true)
		return
	}
	englishGP := open && !welshLHB(p.Commissioner) && p.NationalGrouping != "W00"
	switch p.HighLevelHealthGeography {
	case "Q99", "YAC", "YAD", "YAE", "YAF":
		englishGP = false
	}
	x.ask("WB-2", englishGP && inArea, "English GP and border residence", x.then(x.practiceWhy(), "; ", areaWhy))
	if englishGP && inArea {
		x.english()
		return
	}
	res := x.residence()
	england := res.country == refdata.CountryEngland
	x.ask("WB-3", england, "usual place of residence", x.and(res.src, ", country ", orNone(res.country)))
	if england {
		x.english()
		return
	}
	x.devolved(false)
}

// devolved is the devolved-administration branch: C, C-1, WB-10, C-3.
// welshBorder is true when WB-1 brought the patient here.
func (x *run) devolved(welshBorder bool) {
	s, spec := x.specialised()
	x.ask("C", spec, "service code", x.serviceWhy(s, s.Code != ""))
	if !spec {
		x.devolvedBody(welshBorder)
		return
	}
	// C-1: a pre-1991 highly specialised service (Appendix C). Appendix C is
	// in the supporting workbook, which is not available; the service
	// list's "Highly Specialised Service" flag stands for it (choice 5).
	x.ask("C-1", s.HighlySpecialised, "highly specialised service", x.w(s.Code))
	if s.HighlySpecialised {
		x.providerHubStep("C-1", "C_1_1")
		return
	}
	inArea, areaWhy := x.borderArea()
	p, open := x.practice()
	wb10 := open && welshLHB(p.Commissioner) && inArea
	x.ask("WB-10", wb10, "Welsh GP and border residence", x.then(x.practiceWhy(), "; ", areaWhy))
	if wb10 {
		// C-3: referred via the Referral Assessment Service? No CDS item
		// carries it, so the answer is No (p.9) and NHS England pays.
		x.ask("C-3", false, "referred via RAS", x.w("not recorded in the CDS"))
		x.providerHubStep("C-3", "C_3_2")
		return
	}
	res := x.residence()
	switch res.country {
	case refdata.CountryWales:
		x.assign("WB-10", CodeWHSSC, "WB_10_1", TypeDevolved, "Devolved Administration")
	case refdata.CountryScotland:
		x.assign("WB-10", CodeNSD, "WB_10_1", TypeDevolved, "Devolved Administration")
	case refdata.CountryNorthernIreland:
		// The NI Health and Social Care Board's code is not in the
		// reference data; its Local Commissioning Group stands for it
		// (choice 7).
		if lcg := x.niLCG(); lcg != "" {
			x.assign("WB-10", lcg, "WB_10_1", TypeDevolved, "Devolved Administration")
			return
		}
		x.none("X", x.w("Northern Ireland resident with no Local Commissioning Group"))
	default:
		x.none("X", x.w("residence country ", orNone(res.country), " has no devolved commissioner"))
	}
}

// devolvedBody is C answered No: the Welsh LHB, Scottish health board or NI
// LCG (p.17-19). welshBorder is true when WB-1 brought the patient here.
func (x *run) devolvedBody(welshBorder bool) {
	x.r.Tables |= 1 << tDevolved
	res := x.residence()
	if welshBorder && res.country != refdata.CountryWales {
		// Resident on the English side of the border and registered with a
		// Welsh GP: the LHB of the GP practice's postcode (p.19), which is
		// the practice's epraccur commissioner. A Welsh resident's LHB is
		// that of their own postcode, whoever their GP (p.18-19, below).
		p, _ := x.practice()
		x.ask("C", false, "LHB of the Welsh border GP practice", x.w(p.Code, " commissioner ", p.Commissioner))
		x.assign("C", p.Commissioner, "C_2", TypeDevolved, "Devolved Administration")
		return
	}
	switch res.country {
	case refdata.CountryWales:
		x.r.Tables |= 1 << tWales
		lhb := x.ref.WelshLHB(res.la)
		if lhb == "" {
			if d, ok := x.ref.DevolvedByONS(res.area); ok {
				lhb = d.Code
			}
		}
		if lhb == "" {
			x.ask("C", false, "LHB of residence", x.w("local authority ", orNone(res.la), " has no LHB: Welsh Government"))
			lhb = CodeWelshGov
		} else {
			x.ask("C", false, "LHB of residence", x.w("local authority ", res.la, " -> ", lhb))
		}
		x.assign("C", lhb, "C_1", TypeDevolved, "Devolved Administration")
	case refdata.CountryScotland:
		x.r.Tables |= 1 << tScotland
		hb := x.ref.ScottishHealthBoard(res.la)
		if hb == "" {
			x.none("X", x.w("Scottish council area ", orNone(res.la), " has no health board code"))
			return
		}
		x.ask("C", false, "Scottish health board of residence", x.w("council area ", res.la, " -> ", hb))
		x.assign("C", hb, "C_1", TypeDevolved, "Devolved Administration")
	case refdata.CountryNorthernIreland:
		if lcg := x.niLCG(); lcg != "" {
			x.ask("C", false, "NI Local Commissioning Group of residence", x.w(lcg))
			x.assign("C", lcg, "C_1", TypeDevolved, "Devolved Administration")
			return
		}
		x.none("X", x.w("Northern Ireland resident with no Local Commissioning Group"))
	default:
		x.none("X", x.w("residence country ", orNone(res.country), " has no devolved commissioner"))
	}
}

// niLCG is the NI Local Commissioning Group of the postcode (the ONSPD's
// sub-ICB column holds ZC010-ZC050 for NI).
func (x *run) niLCG() string {
	a := strings.ToUpper(x.residence().area)
	if strings.HasPrefix(a, "ZC0") {
		return a
	}
	return ""
}

// english is the English path from C-0 to C-6.
func (x *run) english() {
	s, spec := x.specialised()
	x.ask("C-0", spec, "service code", x.serviceWhy(s, s.Code != ""))
	if spec {
		switch s.Status {
		case refdata.StatusRed, refdata.StatusBlue:
			// C-0a Yes (red/blue, flow chart) -> C-2: the provider's hub.
			x.ask("C-0a", true, "delegation status", x.w(s.Code, " ", s.Status, " in ", x.v.ServiceYear))
			x.providerHubStep("C-2", "C_2_1")
			return
		case refdata.StatusAmber:
			if x.v.Amber {
				x.ask("C-0a", true, "delegation status", x.w(s.Code, " AMBER in ", x.v.ServiceYear, ": retained, hub of the GP practice"))
				x.hubByResponsibility("C-0b", suffixC0b[:], "C_0b_X")
				return
			}
		}
		// Green: not red or blue, so on to E (flow chart C-0a No).
		x.ask("C-0a", false, "delegation status", x.w(s.Code, " ", s.Status, " in ", x.v.ServiceYear))
	} else {
		// D: secondary dental by treatment function (p.48).
		tfc := x.treatmentFunction()
		dental := isDentalTFC(tfc)
		x.ask("D", dental, "treatment function", x.w(orNone(tfc)))
		if dental {
			x.responsibleSubICB("D", "", suffixD[:], "Sub-ICB (Delegated Sec Dent)")
			return
		}
	}
	if x.justice() || x.publicHealth() || x.infertility() || x.armedForces() {
		return
	}
	// C-5: a green (delegated) specialised service?
	green := spec && s.Status == refdata.StatusGreen
	x.ask("C-5", green, "delegation status", x.serviceWhy(s, s.Code != ""))
	if !green {
		x.responsibleSubICB("C-5", "C_5_1", nil, "")
		return
	}
	// C-6: has the responsible sub-ICB's ICB a delegation agreement in
	// place on the CAM date (cam_subicb_to_direct_commissioner)?
	sub, how, because := x.responsible()
	if how == 0 {
		x.none("C_5_X", because)
		return
	}
	x.r.Tables |= 1 << tDirect
	d, ok := x.ref.DirectCommissioner(sub, x.tableDate)
	delegated := ok && d.Delegated
	x.ask("C-6", delegated, "delegation agreement", because, x.delegationWhy(d, ok, x.tableDate))
	if delegated {
		x.assign("C-6", sub, suffixC6[how], TypeSubICB, "Sub-ICB (Delegated Spec Comm)")
		return
	}
	x.hubByResponsibility("C-6", suffixC6[3:], "C_5_X")
}

// Reason suffixes by number, so that none is built per record.
var (
	suffixC6  = [...]string{"", "C_6_1", "C_6_2", "C_6_3", "C_6_4", "C_6_5", "C_6_6", "C_6_7", "C_6_8"}
	suffixC0b = [...]string{"", "C_0b_1", "C_0b_2", "C_0b_3", "C_0b_4", "C_0b_5"}
	suffixF   = [...]string{"", "F_1", "F_2", "F_3", "F_4", "F_5"}
	suffixD   = [...]string{"", "D_1", "D_2", "D_3"}
)

func (x *run) delegationWhy(d refdata.DirectCommissioner, ok bool, date string) why {
	if !ok {
		return x.w("; sub-ICB not in the direct commissioning table")
	}
	state := "No"
	if d.Delegated {
		state = "Yes"
	}
	return x.w("; sub-ICB ", d.SubICB, " delegation ", state, " from ", d.From, " to ", d.To, " (CAM date ", date, ")")
}

// isDentalTFC is the secondary dental treatment functions of D (p.48).
func isDentalTFC(tfc string) bool {
	switch tfc {
	case "140", "141", "142", "143", "144", "145", "217", "450", "451":
		return true
	}
	return false
}

// treatmentFunction is ACTIVITY TREATMENT FUNCTION CODE, trimmed as the
// other codes CAM reads are.
func (x *run) treatmentFunction() string {
	switch {
	case x.act.GetApc() != nil:
		return strings.TrimSpace(x.act.GetApc().GetTreatmentFunctionCode())
	case x.act.GetOutpatient() != nil:
		return strings.TrimSpace(x.act.GetOutpatient().GetTreatmentFunctionCode())
	case x.act.GetLocalFlow() != nil:
		return strings.TrimSpace(x.act.GetLocalFlow().GetTreatmentFunctionCode())
	}
	return ""
}

// justice is E (p.49-52): the postcode of usual address is an Appendix F
// site and, for admitted care, the source of admission is a penal
// establishment. The logic names code 39, the narrative above it code 40;
// both are accepted (choice 6).
func (x *run) justice() bool {
	res := x.act.GetResidence()
	site := res.GetJusticeFacilityCode()
	yes := site != ""
	because := x.w("postcode is not an Appendix F site")
	if yes {
		because = x.w("postcode is Appendix F site ", site, " (hub ", orNone(res.GetJusticeHub()), ")")
		if apc := x.act.GetApc(); apc != nil {
			src := strings.TrimSpace(apc.GetSourceOfAdmissionCode())
			yes = src == "39" || src == "40"
			because = x.and(because, ", source of admission ", orNone(src))
		}
	}
	x.r.Tables |= 1 << tJustice
	x.ask("E", yes, "health and justice population", because)
	if !yes {
		return false
	}
	if hub := res.GetJusticeHub(); hub != "" {
		x.assign("E", hub, "E_1", TypeNHSE, "NHSE (Offender Health)")
	} else {
		x.none("E_X", x.w("Appendix F site with no hub"))
	}
	return true
}

// publicHealth is F and H (p.52-54).
func (x *run) publicHealth() bool {
	s, ok := x.serviceCode()
	s7a := ok && s.PublicHealth
	x.ask("F", s7a, "section 7a service code", x.serviceWhy(s, ok))
	if s7a {
		d, n, because := x.directFor(false)
		if n == 0 || d.Region == "" {
			x.none("F_X", because)
			return true
		}
		x.ask("F", true, "responsible region", x.and(because, " -> region ", d.Region))
		x.assign("F", d.Region, suffixF[n], TypeNHSE, "NHSE (Public Health Screening)")
		return true
	}
	// H has no national identification (p.54); a locally agreed rule sets
	// the record's local public health indicator (choice 8).
	flag := strings.EqualFold(strings.TrimSpace(x.act.GetLocalPublicHealthIndicator()), "Y")
	x.ask("H", flag, "local public health indicator", x.w(orNone(x.act.GetLocalPublicHealthIndicator())))
	if !flag {
		return false
	}
	la := x.residence().la
	if la == "" {
		x.none("X", x.w("no local authority of residence"))
		return true
	}
	x.assign("H", la, "H_1", TypeLA, "Local Authority")
	return true
}

// infertility is I and I-1 (p.54-55).
func (x *run) infertility() bool {
	code, yes := x.infertilityCode()
	x.ask("I", yes, "diagnosis / procedure codes", x.w(orNone(code)))
	if !yes {
		return false
	}
	// I-1: NHS England armed forces eligibility is notified to the
	// provider case by case (Appendix E); the record shows only the DMS
	// registration, which is Appendix E's first question (choice 9).
	dms, because := x.dmsEnglish()
	x.ask("I-1", dms, "registered with an English DMS practice", because)
	if dms {
		x.assign("I-1", CodeArmedForces, "I_1_1", TypeNHSE, "NHSE (Military Personnel)")
		return true
	}
	x.responsibleSubICB("I-1", "I_1_2", nil, "")
	return true
}

// infertilityCode finds an infertility diagnosis (N46*, N97*, Z31*, Z350)
// or procedure (N34.1-6, Q13.1-9, Q21.1/8/9, Q38.2-3, Q48.1-4/8/9,
// Q56.1-2, Y96.1-6/8-9) among the record's codes (p.54).
func (x *run) infertilityCode() (string, bool) {
	var diags, procs [2]string
	switch {
	case x.act.GetApc() != nil:
		a := x.act.GetApc()
		diags = [2]string{a.GetPrimaryDiagnosisIcd(), a.GetSecondaryDiagnosesIcd()}
		procs = [2]string{a.GetPrimaryProcedureOpcs(), a.GetSecondaryProceduresOpcs()}
	case x.act.GetOutpatient() != nil:
		o := x.act.GetOutpatient()
		diags = [2]string{o.GetPrimaryDiagnosisIcd(), o.GetSecondaryDiagnosesIcd()}
		procs = [2]string{o.GetPrimaryProcedureOpcs(), o.GetSecondaryProceduresOpcs()}
	default:
		return "", false
	}
	for _, list := range diags {
		if c, ok := eachCode(list, infertilityDiagnosis); ok {
			return c, true
		}
	}
	for _, list := range procs {
		if c, ok := eachCode(list, infertilityProcedure); ok {
			return c, true
		}
	}
	return "", false
}

// eachCode applies match to each code of a ";"-separated list (also
// accepting "," and spaces), normalised: upper case, no dot.
func eachCode(list string, match func(string) bool) (string, bool) {
	for list != "" {
		i := strings.IndexAny(list, ";, ")
		c := list
		if i >= 0 {
			c, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		if c == "" {
			continue
		}
		n := strings.ToUpper(strings.ReplaceAll(c, ".", ""))
		if match(n) {
			return c, true
		}
	}
	return "", false
}

func infertilityDiagnosis(c string) bool {
	return strings.HasPrefix(c, "N46") || strings.HasPrefix(c, "N97") || strings.HasPrefix(c, "Z31") || strings.HasPrefix(c, "Z350")
}

func infertilityProcedure(c string) bool {
	if len(c) < 4 {
		return false
	}
	d := c[3]
	in := func(s string) bool { return strings.IndexByte(s, d) >= 0 }
	switch c[:3] {
	case "N34":
		return in("123456")
	case "Q13":
		return in("123456789")
	case "Q21":
		return in("189")
	case "Q38":
		return in("23")
	case "Q48":
		return in("123489")
	case "Q56":
		return in("12")
	case "Y96":
		return in("12345689")
	}
	return false
}

// armedForces is J (p.55-56).
func (x *run) armedForces() bool {
	dms, because := x.dmsEnglish()
	x.ask("J", dms, "registered with an English DMS practice (13Q)", because)
	if dms {
		x.assign("J", CodeArmedForces, "J_1", TypeNHSE, "NHSE (Military Personnel)")
	}
	return dms
}

// Methods of the responsible sub-ICB by how it was found (p.11-12): GP
// practice, residence, host.
var methodByHow = [...]string{"", "Sub-ICB (Practice Mapped)", "Sub-ICB (Postcode Mapped)", "Sub-ICB (Host Mapped)"}

// responsibleSubICB assigns the responsible sub-ICB. The reason suffix is
// byHow[how] when byHow is given ("D_1" GP practice, "D_2" residence, "D_3"
// host), else suffix. When no sub-ICB is found the reason is the published
// "unable to" row of the step: D_X at D; else X. C_5_X ("Unable to determine
// GREEN services Commissioner") is C-6's, for a green service (choice 24):
// C-5 No is no green service.
func (x *run) responsibleSubICB(step, suffix string, byHow []string, method string) {
	sub, how, because := x.responsible()
	x.ask(step, how != 0, "responsible sub-ICB", because)
	if how == 0 {
		fallback := "X"
		if step == "D" {
			fallback = "D_X"
		}
		x.none(fallback, because)
		return
	}
	if byHow != nil {
		suffix = byHow[how]
	}
	if method == "" {
		method = methodByHow[how]
	}
	x.assign(step, sub, suffix, TypeSubICB, method)
}

// hubByResponsibility assigns the specialised hub of the patient's GP
// practice, residence or host (C-0b, and C-6 answered No). suffixes[n] is
// the reason suffix of directFor's n (1-5): C_0b_1-5, C_6_4-8.
func (x *run) hubByResponsibility(step string, suffixes []string, fallback string) {
	d, n, because := x.directFor(true)
	if n == 0 || d.Hub == "" {
		x.none(fallback, because)
		// The step that found no hub decides, as its reason (C_0b_X) says,
		// not the question before it.
		x.r.Step = step
		return
	}
	x.ask(step, true, "responsible specialised hub", x.and(because, " -> hub ", d.Hub))
	x.assign(step, d.Hub, suffixes[n], TypeNHSE, "NHSE (NCA Specialised)")
}

// providerHubStep assigns the hub holding the provider's contract.
func (x *run) providerHubStep(step, suffix string) {
	hub, because := x.providerHub()
	x.ask(step, hub != "", "provider hub", because)
	if hub == "" {
		fallback := "X"
		if step == "C-2" {
			fallback = "C_2_X"
		}
		x.none(fallback, because)
		return
	}
	x.assign(step, hub, suffix, TypeNHSE, "NHSE (Contracted Specialised)")
}

func (x *run) serviceWhy(s refdata.ServiceCode, ok bool) why {
	code := strings.TrimSpace(x.act.GetServiceCode())
	switch {
	case code == "":
		return x.w("no service code")
	case !ok && x.svc.Code != "":
		return x.w(x.svc.Code, " retired (to ", x.svc.To, ") in the ", x.v.ServiceYear, " service code list")
	case !ok:
		return x.w(code, " not in the ", x.v.ServiceYear, " service code list")
	}
	return x.w(s.Code, " ", s.Status, " in ", x.v.ServiceYear)
}

func (x *run) practiceWhy() why {
	gp := x.practiceCode()
	if notRegistered(gp) {
		return x.w("GP practice ", orNone(gp), " (not registered)")
	}
	p, open := x.practice()
	if p.Code == "" {
		return x.w("practice ", gp, " not in epraccur")
	}
	if !open {
		return x.w("practice ", gp, " not open on ", x.r.Date)
	}
	return x.w("practice ", gp, " open on ", x.r.Date, ", commissioner ", orNone(p.Commissioner), ", grouping ", orNone(p.NationalGrouping))
}
