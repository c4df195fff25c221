package cam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// Cases from an independent review of the engine against the published CAM
// 2025/26 guidance (v1.1) and flow chart, each citing its section. See
// docs/commissioner-assignment.md ("Choices") for the readings taken where
// the guidance is ambiguous.

// The "responsible GP practice method" of the NHS England Specialised
// Commissioning Hub (p.14-15), used at C-6 No (and 2024/25's C-0b): "If there
// is no match to a record in 'epraccur', then revert to the provider method"
// (p.15), where the responsible sub-ICB (p.12) and the public health region
// (p.22) revert to the postcode. The look-up is of practices with national
// grouping not W00 and status A or P on the assignment date, so an unknown,
// closed or Welsh practice is no match. The provider method's hub is the hub
// of the provider's host sub-ICB (choice 10), reason C_6_8 / C_0b_5.
func TestHubNoPracticeMatchUsesProvider(t *testing.T) {
	runCases(t, []camCase{
		{"unknown practice, green not delegated", "C-6 No (p.46); hub method p.15: no match in epraccur -> provider method: RVR's hub 13R, not the Halifax postcode's 85J",
			apc(d2425, gp("Z99999"), res(halifax), svc("NCBPS01C")), "2024/25", "C-6", "13R", "13R_C_6_8", "21"},
		{"closed practice, green not delegated", "C-6 No; p.15: B84002 closed 2021 is no match (status A/P on the assignment date) -> provider method: RCD's hub 85J, not Sutton's 13R",
			apc(d2425, gp("B84002"), res(sutton), svc("NCBPS01C"), provider("RCD")), "2024/25", "C-6", "85J", "85J_C_6_8", "21"},
		{"Welsh practice, English resident, green not delegated", "C-6 No; p.15: national grouping W00 is no match -> provider method: RVR's hub 13R, not Halifax's 85J",
			apc(d2425, gp("W00199"), res(halifax), svc("NCBPS01C")), "2024/25", "C-6", "13R", "13R_C_6_8", "21"},
		{"unknown practice, amber 2024/25", "C-0b (2024/25 amber, hub by GP practice); p.15: no match -> provider method",
			apc(d2425, gp("Z99999"), res(halifax), svc("NCBPS01S")), "2024/25", "C-0b", "13R", "13R_C_0b_5", "21"},
		// The postcode method still applies where p.15 says so: no
		// registered practice (V81999), before the no-match clause.
		{"no registered practice, green not delegated", "C-6 No; p.14-15: V81999 -> postcode methodology: Halifax 02T -> 85J",
			apc(d2425, gp("V81999"), res(halifax), svc("NCBPS01C")), "2024/25", "C-6", "85J", "85J_C_6_6", "21"},
		// The public health region (p.22) keeps the postcode for no match.
		{"unknown practice, section 7a", "F (p.52); region method p.22: no match in epraccur -> postcode methodology: Halifax -> Y63",
			op(d2526, gp("Z99999"), res(halifax), svc("NCBPH01F")), "", "F", "Y63", "Y63_F_3", "81"},
	})
}

// practiceRow is an epraccur row (27 quoted columns) of a Sutton practice
// commissioned by 36L, with the given code, open and close dates and status.
func practiceRow(code, open, close, status string) string {
	return `"` + code + `","REVIEW PRACTICE","Y56","QWE","","4 THROWLEY WAY","SUTTON","SURREY","","SM1 4AF","` + open + `","` + close + `","` + status +
		`","B","36L","20200401","","","","","","0","","36L","","4",""`
}

// assignerWith is the sample reference data with extra epraccur rows, for
// practice states the sample does not hold.
func assignerWith(t *testing.T, practices ...string) *Assigner {
	t.Helper()
	return assignerWithPractices(t, func(file string) string {
		return file + strings.Join(practices, "\n") + "\n"
	})
}

// assignerWithPractices is the sample reference data with its epraccur file
// rewritten by edit, on a copy in a temporary directory.
func assignerWithPractices(t *testing.T, edit func(file string) string) *Assigner {
	t.Helper()
	const sample = "../../../reference/sample"
	dir := t.TempDir()
	entries, err := os.ReadDir(sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sample, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == refdata.PracticesFile {
			b = []byte(edit(string(b)))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := refdata.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return NewAssigner(ref)
}

// "Status Code in the national GP file 'epraccur' of either A (active) or P
// (proposed) on the assignment date" (Responsible sub-ICB, p.12; likewise
// B p.29, B-4 p.34, WB-1 p.35, J p.55). epraccur holds today's status and the
// open and close dates: a practice counts up to its close date; a dormant one
// (D) is not A or P; a proposed one (P) is, though it has not opened yet.
func TestPracticeStatusOnTheAssignmentDate(t *testing.T) {
	a := assignerWith(t,
		practiceRow("Z90001", "19740401", "", "D"),         // dormant
		practiceRow("Z90002", "20251001", "", "P"),         // proposed, opens after the CAM date
		practiceRow("Z90003", "19740401", "20250630", "C"), // closed after the CAM date
		practiceRow("Z90004", "19740401", "20250531", "C"), // closed before the CAM date
	)
	cases := []struct {
		name, section, gp, comm, how string
	}{
		{"dormant practice", "p.12: status D is not A or P -> postcode methodology (Halifax 02T)", "Z90001", "02T", "postcode"},
		{"proposed practice", "p.12: status P counts on the assignment date -> practice's commissioner 36L", "Z90002", "36L", "practice"},
		{"practice closed after the CAM date", "p.12: it was A on the assignment date -> 36L", "Z90003", "36L", "practice"},
		{"practice closed before the CAM date", "p.12: not A or P on the assignment date -> postcode (02T)", "Z90004", "02T", "postcode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Result
			a.Decide(apc(d2526, gp(tc.gp), res(halifax)), nil, &r)
			if r.Step != "C-5" || r.Commissioner != tc.comm || r.ReasonCode != tc.comm+"_C_5_1" {
				t.Errorf("%s: got %s by %s (%s), want %s by C-5 (%s_C_5_1), by the %s\n%s",
					tc.section, r.Commissioner, r.Step, r.ReasonCode, tc.comm, tc.comm, tc.how, Explain(a.Explained(&r)))
			}
		})
	}
}

// The pseudo postcodes the guidance sends to the provider's main site, with
// England as the country: ZZ99 3WZ and 3VZ (unable to be allocated), 3CZ
// (England n.o.s.), 3GZ (Wales), 1WZ (Scotland), 2WZ (Northern Ireland), and
// a missing postcode (p.7, Responsible sub-ICB p.12, A&E-1 p.26-27, B p.30,
// WB-3 p.37). Residences as the de-identify stage makes them.
func TestUKPseudoPostcodesUseTheProviderSite(t *testing.T) {
	var cases []camCase
	for _, r := range []*dmicv1.Residence{
		{Note: "address not known", PseudoPostcode: "3WZ"},
		{Note: "no fixed abode", PseudoPostcode: "3VZ"},
		{Country: refdata.CountryEngland, Note: "England n.o.s.", PseudoPostcode: "3CZ"},
		{Country: refdata.CountryWales, Note: "Wales n.o.s.", PseudoPostcode: "3GZ"},
		{Country: refdata.CountryScotland, Note: "Scotland n.o.s.", PseudoPostcode: "1WZ"},
		{Country: refdata.CountryNorthernIreland, Note: "Northern Ireland n.o.s.", PseudoPostcode: "2WZ"},
		{Note: "postcode missing"},
	} {
		cases = append(cases,
			camCase{"APC ZZ99 " + r.PseudoPostcode + " " + r.Note, "B (p.30) Yes and WB-3 (p.37) Yes: the provider's main site, England; responsible sub-ICB (p.12): no GP, so the host RCD 42D",
				apc(d2526, res(r), provider("RCD")), "", "C-5", "42D", "42D_C_5_1", "12"},
			camCase{"A&E ZZ99 " + r.PseudoPostcode + " " + r.Note, "A&E-1 (p.26-27): 'In these cases, the answer to question 2 is Yes'; J No: responsible sub-ICB, the host 42D",
				ae(d2526, res(r), provider("RCD")), "", "J", "42D", "42D_AE_1_1", "12"},
		)
	}
	runCases(t, cases)
}

// B-2 (p.31, Appendix H): a pseudo postcode of an EEA member state, or of a
// starred state with a similar arrangement (Norway, Switzerland), is Yes; a
// non-EEA reciprocal country of Appendix H's second table is not.
func TestEEAPseudoPostcodes(t *testing.T) {
	runCases(t, []camCase{
		{"Norway", "B-2 Yes (p.31; Appendix H: Norway* ZZ99 2AZ): hub of the provider",
			apc(d2526, ovc("C"), res(&dmicv1.Residence{Note: "overseas", PseudoPostcode: "2AZ"}), svc("NCBPS01A")), "", "B-2", "13R", "13R_B_2_1", "21"},
		{"Switzerland", "B-2 Yes (Appendix H: Switzerland* ZZ99 4PZ)",
			apc(d2526, ovc("C"), res(&dmicv1.Residence{Note: "overseas", PseudoPostcode: "4PZ"}), svc("NCBPS01A")), "", "B-2", "13R", "13R_B_2_1", "21"},
		{"Republic of Ireland", "B-2 Yes (Appendix H: ZZ99 3AZ)",
			apc(d2526, ovc("E"), res(&dmicv1.Residence{Note: "overseas", PseudoPostcode: "3AZ"}), svc("NCBPS01A")), "", "B-2", "13R", "13R_B_2_1", "21"},
		{"Australia", "B-2 No (Australia ZZ99 6GZ is a non-EEA reciprocal country, Appendix H second table), B-3 Yes (category C): OSV guidance, host (p.25)",
			apc(d2526, ovc("C"), res(&dmicv1.Residence{Note: "overseas", PseudoPostcode: "6GZ"}), svc("NCBPS01A")), "", "B-3", "36L", "36L_B_3_2", "12"},
		{"EEA resident, not highly specialised", "B-1 No (p.31): B-2 is not asked; B-3 No, B-4 No: host",
			apc(d2526, ovc("E"), res(france), svc("NCBPS01C")), "", "B-4", "36L", "36L_B_4_2", "12"},
	})
}

// WB-1 (p.35): the cross-border area is the English ICBs QYG, QOC, QGH, QR1
// and QUY and the Welsh unitary authorities W06000005 Flintshire, W06000006
// Wrexham, W06000023 Powys, W06000021 Monmouthshire and W06000004
// Denbighshire. C No (p.19): on the English side the LHB of the Welsh GP
// practice (W00199: 7A7); in Wales the LHB of the postcode.
func TestWelshBorderArea(t *testing.T) {
	var cases []camCase
	for _, icb := range []string{"QYG", "QOC", "QGH", "QR1", "QUY"} {
		r := &dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "M2L0M", Icb: icb, LocalAuthority: "E06000051"}
		cases = append(cases, camCase{"English border ICB " + icb, "WB-1 Yes (p.35: ICB " + icb + "), C No: the LHB of the Welsh GP practice (p.19)",
			apc(d2526, gp("W00199"), res(r)), "", "C", "7A7", "7A7_C_2", ""})
	}
	for _, ua := range []struct{ code, lhb string }{
		{"W06000005", "7A1"}, {"W06000006", "7A1"}, {"W06000023", "7A7"}, {"W06000021", "7A6"}, {"W06000004", "7A1"},
	} {
		r := &dmicv1.Residence{Country: refdata.CountryWales, LocalAuthority: ua.code}
		cases = append(cases, camCase{"Welsh border authority " + ua.code, "WB-1 Yes (p.35: " + ua.code + "), C No: resident in Wales, the LHB of the postcode (p.18-19)",
			apc(d2526, gp("W00199"), res(r)), "", "C", ua.lhb, ua.lhb + "_C_1", ""})
	}
	cases = append(cases,
		camCase{"Welsh GP, English resident outside the area", "WB-1 No (p.35: QWE is not a border ICB), WB-2 No (a Welsh GP), WB-3 Yes: English path; responsible sub-ICB: W00 practice -> postcode 36L (p.12)",
			apc(d2526, gp("W00199"), res(sutton)), "", "C-5", "36L", "36L_C_5_1", "12"},
		camCase{"Welsh GP, Welsh resident outside the area", "WB-1 No (p.35: Cardiff W06000015 is not a border authority), WB-2 No, WB-3 No, C No: LHB of the postcode",
			apc(d2526, gp("W00199"), res(cardiff)), "", "C", "7A4", "7A4_C_1", ""},
	)
	runCases(t, cases)
}

// WB-2 (p.36): an English GP practice is one whose high level health
// geography is not Q99, YAC, YAD, YAE or YAF. A DMS practice (A91020, Q99)
// is not one, so its border resident goes on by WB-3 (p.37).
func TestWB2EnglishPracticeExcludesQ99(t *testing.T) {
	a := sampleAssigner(t)
	var r Result
	a.Decide(apc(d2526, gp("A91020"), res(shropsh)), nil, &r)
	if got := answer(&r, "WB-2"); got != "No" {
		t.Errorf("WB-2 (p.36): A91020 has high level health geography Q99: answered %q, want No\n%s", got, Explain(a.Explained(&r)))
	}
	if got := answer(&r, "WB-3"); got != "Yes" || r.ReasonCode != "13Q_J_1" {
		t.Errorf("WB-3 (p.37) Yes, then J (p.55): got WB-3 %q, %s\n%s", got, r.ReasonCode, Explain(a.Explained(&r)))
	}
}

// answer is the first answer to step in the trail ("" if not asked).
func answer(r *Result, step string) string {
	for _, d := range r.Trail() {
		if d.Step == step {
			return d.Answer
		}
	}
	return ""
}

// D (p.48): ACTIVITY TREATMENT FUNCTION CODE 140, 141, 142, 143, 144, 145,
// 217, 450 or 451 is secondary dental care; any other value is No.
func TestSecondaryDentalTreatmentFunctions(t *testing.T) {
	var cases []camCase
	for _, c := range []string{"140", "141", "142", "143", "144", "145", "217", "450", "451"} {
		cases = append(cases, camCase{"TFC " + c, "D Yes (p.48): responsible sub-ICB by the GP practice",
			op(d2526, gp("H85030"), tfc(c)), "", "D", "36L", "36L_D_1", "55"})
	}
	for _, c := range []string{"100", "146", "218", "452", ""} {
		cases = append(cases, camCase{"TFC " + c + " not dental", "D No (p.48: not listed; p.9: any other value, blank included, is No)",
			apc(d2526, gp("H85030"), tfc(c)), "", "C-5", "36L", "36L_C_5_1", "12"})
	}
	runCases(t, cases)
}

// E (p.49-51): for admitted care the source of admission must be the penal
// establishment's; "NHS England is not responsible for paying for secondary
// care for persons detained in and referred from police custody suites, other
// places of temporary secure accommodation such as courts" (p.49).
func TestJusticeSourceOfAdmission(t *testing.T) {
	runCases(t, []camCase{
		{"admitted from court", "E No (p.49: courts are not H&J; p.51 needs source 39): responsible sub-ICB by the Appendix F postcode (p.12)",
			apc(d2526, res(highDown), source("37"), gp("H85030")), "", "C-5", "92A", "92A_C_5_1", "12"},
		{"admitted from a police station", "E No (p.49: police custody suites are not H&J)",
			apc(d2526, res(highDown), source("42"), gp("H85030")), "", "C-5", "92A", "92A_C_5_1", "12"},
		{"no source of admission", "E No (p.51; p.9: a blank is No)",
			apc(d2526, res(highDown), source(""), gp("H85030")), "", "C-5", "92A", "92A_C_5_1", "12"},
		{"prisoner, specialised red service", "C-0 Yes, C-0a Yes (flow chart): C-2 comes before E",
			apc(d2526, res(highDown), source("39"), svc("NCBPS01A")), "", "C-2", "13R", "13R_C_2_1", "21"},
		{"prisoner, green service", "C-0a No -> E (flow chart): H&J hub",
			apc(d2526, res(highDown), source("39"), svc("NCBPS01C")), "", "E", "97T", "97T_E_1", "71"},
	})
}

// I (p.54-55): the diagnosis and procedure codes of infertility, at their
// edges, in the primary or a secondary field.
func TestInfertilityCodes(t *testing.T) {
	primaryProc := func(c string) opt {
		return func(a *dmicv1.DeidentifiedActivity) { a.GetApc().PrimaryProcedureOpcs = c }
	}
	yes := func(name string, o opt) camCase {
		return camCase{name, "I Yes (p.54-55), I-1 No: responsible sub-ICB", apc(d2526, gp("H85030"), o), "", "I-1", "36L", "36L_I_1_2", "12"}
	}
	no := func(name string, o opt) camCase {
		return camCase{name, "I No (p.54-55: not listed), J No, C-5 No", apc(d2526, gp("H85030"), o), "", "C-5", "36L", "36L_C_5_1", "12"}
	}
	runCases(t, []camCase{
		yes("N46 without a fourth character", diag("N46", "")),
		yes("N97.9 with a dot, secondary", diag("I10X", "E119;N97.9")),
		yes("Z31.0", diag("Z310", "")),
		yes("Z35.0", diag("Z350", "")),
		no("Z35.1 (only Z35.0 is listed)", diag("Z351", "")),
		no("N47 (not N46)", diag("N47X", "")),
		yes("primary procedure N34.1", primaryProc("N341")),
		yes("N34.6", proc("N346")),
		no("N34.7", proc("N347")),
		yes("Q13.9", proc("Q139")),
		yes("Q21.1", proc("Q211")),
		no("Q21.2", proc("Q212")),
		yes("Q21.8", proc("Q218")),
		yes("Q38.3", proc("Q383")),
		no("Q38.4", proc("Q384")),
		yes("Q48.4", proc("Q484")),
		no("Q48.5", proc("Q485")),
		yes("Q48.9", proc("Q489")),
		yes("Q56.2", proc("Q562")),
		no("Q56.3", proc("Q563")),
		yes("Y96.6", proc("Y966")),
		no("Y96.7", proc("Y967")),
		yes("Y96.8", proc("Y968")),
	})
}

// J (p.55-56): the practice's postcode must be in England. A BFPO DMS
// practice (A91183, BF1) is not: at A&E (where B is not asked) J answers No
// and the responsible sub-ICB follows, the practice's 13Q being no sub-ICB
// (p.12), so the postcode.
func TestArmedForcesPracticeMustBeEnglish(t *testing.T) {
	runCases(t, []camCase{
		{"BFPO DMS practice at A&E", "A&E-1 Yes, J No (p.55-56: BF1 postcode not E92000001): responsible sub-ICB by the postcode",
			ae(d2526, gp("A91183"), res(halifax)), "", "J", "02T", "02T_AE_1_1", "12"},
		{"English DMS practice, Welsh border resident", "WB-2 No (Q99), WB-3 Yes, ..., J Yes (p.55): 13Q",
			apc(d2526, gp("A91020"), res(shropsh)), "", "J", "13Q", "13Q_J_1", "61"},
	})
}

// Every reason code the engine gives that is in NHS England's published
// reason table (cam_commissioner_assignment_reason.csv) carries that row's
// text and service category.
func TestPublishedReasonTextAndCategory(t *testing.T) {
	a := sampleAssigner(t)
	published := 0
	for _, tc := range allCases() {
		var r Result
		a.Decide(tc.act, nil, &r)
		row, ok := a.ref.ReasonByCode(r.ReasonCode)
		if !ok {
			continue
		}
		published++
		if r.Reason != row.Reason || r.ServiceCategory != row.ServiceCategory {
			t.Errorf("%s: reason %s %q category %q, the published row says %q category %q",
				tc.name, r.ReasonCode, r.Reason, r.ServiceCategory, row.Reason, row.ServiceCategory)
		}
	}
	if published < 20 {
		t.Errorf("only %d cases end in a published reason code", published)
	}
}

// "When to assign commissioner code" (p.6): the date CAM is applied at, by
// CDS type, selects the financial year's rules.
func TestCAMDateSelectsTheYear(t *testing.T) {
	a := sampleAssigner(t)
	finished := apc("2025-03-01")
	finished.GetApc().DischargeDateHospitalProviderSpell = "2025-04-01"
	unfinished := apc("2025-03-31")
	unfinished.GetApc().CdsType, unfinished.GetApc().DischargeDateHospitalProviderSpell = "190", ""
	delivery := apc("2025-03-30")
	delivery.GetApc().CdsType, delivery.GetApc().DischargeDateHospitalProviderSpell = "140", "2025-04-02"
	for _, tc := range []struct {
		name, section, date, version string
		act                          *dmicv1.DeidentifiedActivity
	}{
		{"finished APC discharged in 2025/26", "p.6: CDS 130, DISCHARGE DATE (HOSPITAL PROVIDER SPELL)", "2025-04-01", "2025/26", finished},
		{"delivery episode", "p.6: CDS 140, the discharge date", "2025-04-02", "2025/26", delivery},
		{"unfinished APC", "p.6: CDS 190, START DATE (HOSPITAL PROVIDER SPELL)", "2025-03-31", "2024/25", unfinished},
		{"outpatient", "p.6: CDS 020, the appointment date", "2025-04-01", "2025/26", op("2025-04-01")},
		{"emergency care", "p.6: CDS 011, the arrival date", "2025-03-31", "2024/25", ae("2025-03-31")},
	} {
		var r Result
		a.Decide(tc.act, nil, &r)
		if r.Date != tc.date || r.Version != tc.version {
			t.Errorf("%s (%s): CAM date %s under %s, want %s under %s", tc.name, tc.section, r.Date, r.Version, tc.date, tc.version)
		}
	}
	if v, exact := VersionFor("2026-04-01"); v.Name != "2025/26" || exact {
		t.Errorf("a date after 2025/26 gets the latest version, not exactly: %s %v", v.Name, exact)
	}
}

// B-3 Yes, "See OSV guidance" (p.25): the sub-ICB location pays for a charge
// exempt overseas visitor registered with an English GP "or who is not
// currently registered with a GP in England, but who gives a UK address";
// the host for one not registered and resident outside the UK. A Welsh or
// Scottish address is a UK address: the responsible sub-ICB, which for a
// postcode with no English sub-ICB is the host (p.12), by reason B_3_1.
func TestReciprocalVisitorWithAUKAddress(t *testing.T) {
	runCases(t, []camCase{
		{"English address", "B-3 Yes; p.25: UK address -> responsible sub-ICB (the postcode's, p.12)",
			op(d2526, ovc("C"), res(halifax), provider("RCD")), "", "B-3", "02T", "02T_B_3_1", "12"},
		{"Welsh address", "B-3 Yes; p.25: a Welsh address is a UK address -> responsible sub-ICB; no English sub-ICB for it, so the host (p.12)",
			op(d2526, ovc("C"), res(cardiff), provider("RCD")), "", "B-3", "42D", "42D_B_3_1", "12"},
		{"Scottish address", "B-3 Yes; p.25: UK address -> responsible sub-ICB, the host",
			op(d2526, ovc("C"), res(borders), provider("RCD")), "", "B-3", "42D", "42D_B_3_1", "12"},
		{"resident overseas, not registered", "B-3 Yes; p.25: resident outside the UK, not registered -> the host",
			op(d2526, ovc("C"), res(usa), provider("RCD")), "", "B-3", "42D", "42D_B_3_2", "12"},
	})
}

// The last resort of each method is the provider's main site (p.7, p.10,
// p.12), and the published "unable to determine" reasons when there is none
// (an independent provider, not in etr, with no GP and no usable postcode).
func TestHostFallbacksAndUnableReasons(t *testing.T) {
	noHost := provider("ZZZ99")
	runCases(t, []camCase{
		{"section 7a, no fixed abode", "F (p.52); region method (p.22): no GP, ZZ99 3VZ -> the provider's main site (p.7): RCD's 42D -> Y63, reason F_5",
			op(d2526, gp("V81999"), res(noFixed), provider("RCD"), svc("NCBPH01F")), "", "F", "Y63", "Y63_F_5", "81"},
		{"green not delegated, no fixed abode", "C-6 No (p.46); hub method (p.14-15) by the provider's main site: RCD 42D -> 85J, reason C_6_8",
			op(d2425, gp("V81999"), res(noFixed), provider("RCD"), svc("NCBPS01C")), "2024/25", "C-6", "85J", "85J_C_6_8", "21"},
		{"dental, nothing to place", "D Yes (p.48); no GP, no postcode, no host: D_X",
			op(d2526, res(noFixed), noHost, tfc("144")), "", "D", "", "D_X", "55"},
		{"section 7a, nothing to place", "F Yes (p.52); no region: F_X",
			op(d2526, res(noFixed), noHost, svc("NCBPH01F")), "", "F", "", "F_X", "81"},
		{"amber 2024/25, nothing to place", "C-0b; no hub: C_0b_X",
			op(d2425, res(noFixed), noHost, svc("NCBPS01S")), "2024/25", "C-0b", "", "C_0b_X", "21"},
		{"Appendix F site with no hub", "E Yes (p.51) but no hub for the site: E_X",
			op(d2526, gp("H85030"), res(&dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "92A", Icb: "QXU", JusticeFacilityCode: "YXX99"})), "", "E", "", "E_X", "71"},
		{"A&E, overseas resident, no host", "A&E-1 No (p.26): host sub-ICB; none: X",
			ae(d2526, res(usa), noHost), "", "A&E-1", "", "X", ""},
	})
}

// Codes are compared as the CDS states them, surrounding spaces aside, as
// the engine already does for the GP practice, service code and categories.
func TestCodesAreTrimmed(t *testing.T) {
	runCases(t, []camCase{
		{"dental TFC with spaces", "D (p.48): ' 144 ' is 144", op(d2526, gp("H85030"), tfc(" 144 ")), "", "D", "36L", "36L_D_1", "55"},
		{"source of admission with spaces", "E (p.51): ' 39' is 39", apc(d2526, res(highDown), source(" 39")), "", "E", "97T", "97T_E_1", "71"},
	})
}
