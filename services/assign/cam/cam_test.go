package cam

import (
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// The table tests below are written from "Commissioner Assignment Method
// Flow Chart 2025/26: Accompanying Guidance and Reference Tables" v1.1;
// each case names the section (annotation step and page) it comes from.
// Dates are fixed days in 2024/25 and 2025/26: nothing depends on today.

var (
	sampleOnce sync.Once
	sampleRef  *refdata.Reference
	sampleErr  error
)

func sampleAssigner(tb testing.TB) *Assigner {
	tb.Helper()
	sampleOnce.Do(func() { sampleRef, sampleErr = refdata.LoadDir("../../../reference/sample") })
	if sampleErr != nil {
		tb.Fatalf("load reference sample: %v", sampleErr)
	}
	return NewAssigner(sampleRef)
}

type opt func(*dmicv1.DeidentifiedActivity)

// Residences as the de-identify stage derives them from the sample ONSPD.
var (
	sutton   = &dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "36L", Icb: "QWE", LocalAuthority: "E09000029", HealthArea: "E38000245", Region: "E40000003"}
	halifax  = &dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "02T", Icb: "QWO", LocalAuthority: "E08000033", HealthArea: "E38000025", Region: "E40000012"}
	powys    = &dmicv1.Residence{Country: refdata.CountryWales, LocalAuthority: "W06000023", HealthArea: "W11000024"}
	cardiff  = &dmicv1.Residence{Country: refdata.CountryWales, LocalAuthority: "W06000015", HealthArea: "W11000029"}
	wrexham  = &dmicv1.Residence{Country: refdata.CountryWales, LocalAuthority: "W06000006", HealthArea: "W11000023"}
	borders  = &dmicv1.Residence{Country: refdata.CountryScotland, LocalAuthority: "S12000026", HealthArea: "S03000004"}
	belfast  = &dmicv1.Residence{Country: refdata.CountryNorthernIreland, LocalAuthority: "N09000003", HealthArea: "ZC010"}
	shropsh  = &dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "M2L0M", Icb: "QOC", LocalAuthority: "E06000051"}
	highDown = &dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "92A", Icb: "QXU", LocalAuthority: "E07000211", JusticeFacilityCode: "YDE39", JusticeHub: "97T"}
	noFixed  = &dmicv1.Residence{Note: "no fixed abode", PseudoPostcode: "3VZ"}
	wales99  = &dmicv1.Residence{Country: refdata.CountryWales, Note: "Wales n.o.s.", PseudoPostcode: "3GZ"}
	france   = &dmicv1.Residence{Note: "overseas", PseudoPostcode: "4GZ"}
	usa      = &dmicv1.Residence{Note: "overseas", PseudoPostcode: "6CZ"}
)

func apc(date string, o ...opt) *dmicv1.DeidentifiedActivity {
	a := &dmicv1.DeidentifiedActivity{
		ProviderCode: "RVR", AdministrativeCategoryCode: "01", OverseasVisitorChargingCategory: "A",
		ActivityDate: date, Demographics: &dmicv1.Demographics{}, Residence: sutton,
		Activity: &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{CdsType: "130", DischargeDateHospitalProviderSpell: date,
			StartDateHospitalProviderSpell: date, TreatmentFunctionCode: "300", SourceOfAdmissionCode: "19"}},
	}
	for _, f := range o {
		f(a)
	}
	return a
}

func op(date string, o ...opt) *dmicv1.DeidentifiedActivity {
	a := apc(date)
	a.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AppointmentDate: date, TreatmentFunctionCode: "300"}}
	for _, f := range o {
		f(a)
	}
	return a
}

func ae(date string, o ...opt) *dmicv1.DeidentifiedActivity {
	a := apc(date)
	a.OverseasVisitorChargingCategory = ""
	a.Activity = &dmicv1.DeidentifiedActivity_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{EcArrivalDate: date}}
	for _, f := range o {
		f(a)
	}
	return a
}

func gp(code string) opt {
	return func(a *dmicv1.DeidentifiedActivity) { a.Demographics.GeneralMedicalPracticeCode = code }
}
func res(r *dmicv1.Residence) opt { return func(a *dmicv1.DeidentifiedActivity) { a.Residence = r } }
func ovc(c string) opt {
	return func(a *dmicv1.DeidentifiedActivity) { a.OverseasVisitorChargingCategory = c }
}
func admin(c string) opt {
	return func(a *dmicv1.DeidentifiedActivity) { a.AdministrativeCategoryCode = c }
}
func svc(c string) opt      { return func(a *dmicv1.DeidentifiedActivity) { a.ServiceCode = c } }
func provider(c string) opt { return func(a *dmicv1.DeidentifiedActivity) { a.ProviderCode = c } }
func pod(c string) opt      { return func(a *dmicv1.DeidentifiedActivity) { a.PointOfDeliveryCode = c } }
func localPH() opt {
	return func(a *dmicv1.DeidentifiedActivity) { a.LocalPublicHealthIndicator = "Y" }
}
func submitted(c string) opt {
	return func(a *dmicv1.DeidentifiedActivity) { a.SubmittedCommissionerCode = c }
}
func legacyStatus(c string) opt {
	return func(a *dmicv1.DeidentifiedActivity) { a.OverseasVisitorStatusCode = c }
}
func tfc(c string) opt {
	return func(a *dmicv1.DeidentifiedActivity) {
		if p := a.GetApc(); p != nil {
			p.TreatmentFunctionCode = c
		}
		if p := a.GetOutpatient(); p != nil {
			p.TreatmentFunctionCode = c
		}
	}
}
func source(c string) opt {
	return func(a *dmicv1.DeidentifiedActivity) { a.GetApc().SourceOfAdmissionCode = c }
}
func diag(primary, secondary string) opt {
	return func(a *dmicv1.DeidentifiedActivity) {
		if p := a.GetApc(); p != nil {
			p.PrimaryDiagnosisIcd, p.SecondaryDiagnosesIcd = primary, secondary
		}
		if p := a.GetOutpatient(); p != nil {
			p.PrimaryDiagnosisIcd, p.SecondaryDiagnosesIcd = primary, secondary
		}
	}
}
func proc(secondary string) opt {
	return func(a *dmicv1.DeidentifiedActivity) { a.GetApc().SecondaryProceduresOpcs = secondary }
}

const (
	d2526 = "2025-06-15" // in 2025/26
	d2425 = "2024-06-15" // in 2024/25
)

type camCase struct {
	name    string
	section string // the guidance section the expectation comes from
	act     *dmicv1.DeidentifiedActivity
	version string
	step    string
	comm    string
	reason  string
	cat     string
}

func runCases(t *testing.T, cases []camCase) {
	t.Helper()
	runCasesWith(t, sampleAssigner(t), cases)
}

// runCasesWith runs the cases against a, for reference data the sample
// does not hold.
func runCasesWith(t *testing.T, a *Assigner, cases []camCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.section == "" {
				t.Fatal("every case cites a guidance section")
			}
			var r Result
			a.Decide(tc.act, nil, &r)
			if r.Step != tc.step || r.Commissioner != tc.comm || r.ReasonCode != tc.reason ||
				(tc.cat != "" && r.ServiceCategory != tc.cat) || (tc.version != "" && r.Version != tc.version) {
				t.Errorf("%s: got %s step %s, %s %q (cat %s, CAM %s), want %s step %s, %s (cat %s, CAM %s)\n%s",
					tc.section, r.Commissioner, r.Step, r.ReasonCode, r.Reason, r.ServiceCategory, r.Version,
					tc.comm, tc.step, tc.reason, tc.cat, tc.version, Explain(a.Explained(&r)))
			}
			if len(r.Trail()) == 0 {
				t.Error("no explanation trail")
			}
		})
	}
}

func TestPrivateAndOverseas(t *testing.T) { runCases(t, privateAndOverseasCases()) }

func privateAndOverseasCases() []camCase {
	return []camCase{
		{"private patient", "A, p.27: ADMINISTRATIVE CATEGORY 02", apc(d2526, admin("02"), gp("H85030")), "2025/26", "A", "VPP00", "VPP00_A_1", ""},
		{"chargeable overseas visitor D", "A, p.27: OVERSEAS VISITOR CHARGING CATEGORY D or F", op(d2526, ovc("D"), res(usa)), "", "A", "VPP00", "VPP00_A_1", ""},
		{"chargeable overseas visitor F", "A, p.27", apc(d2425, ovc("F")), "2024/25", "A", "VPP00", "VPP00_A_1", ""},
		{"legacy status 4 is chargeable", "A, p.27 (status 4 all fees = category D, choice 2)", apc(d2526, ovc(""), legacyStatus("4")), "", "A", "VPP00", "VPP00_A_1", ""},
		{"exempt visitor registered with an English GP", "B (p.28) No, B-3 No, B-4 Yes (p.34): responsible sub-ICB", apc(d2526, ovc("B"), gp("H85030"), res(usa)), "", "B-4", "36L", "36L_B_4_1", "12"},
		{"exempt visitor not registered", "B-4 No (p.34): host sub-ICB", apc(d2526, ovc("E"), res(usa)), "", "B-4", "36L", "36L_B_4_2", "12"},
		{"exempt visitor not registered, Harrogate provider", "B-4 No (p.34): host sub-ICB of the provider's main site (p.10)", op(d2526, ovc("E"), res(usa), provider("RCD")), "", "B-4", "42D", "42D_B_4_2", "12"},
		{"reciprocal agreement", "B-3 Yes: OSV guidance (p.25), not registered -> host", op(d2526, ovc("C"), res(usa), provider("RCD")), "", "B-3", "42D", "42D_B_3_2", "12"},
		{"reciprocal agreement with English GP", "B-3 Yes: OSV guidance (p.25), registered -> responsible", op(d2526, ovc("C"), gp("B84019"), res(usa)), "", "B-3", "02T", "02T_B_3_1", "12"},
		{"EEA resident, highly specialised", "B-1 Yes, B-2 Yes (p.31): hub by provider", apc(d2526, ovc("C"), res(france), svc("NCBPS01A")), "", "B-2", "13R", "13R_B_2_1", "21"},
		{"non-EEA resident, highly specialised", "B-2 No -> B-3 (p.31)", apc(d2526, ovc("E"), res(usa), svc("NCBPS01A")), "", "B-4", "36L", "36L_B_4_2", ""},
		{"BFPO practice is overseas", "B, p.29: practice postcode BF1/BF2 -> No; B-4 (p.34) literal: grouping Y99, active -> registered; 13Q is no sub-ICB -> postcode", apc(d2526, gp("A91183"), res(sutton)), "", "B-4", "36L", "36L_B_4_1", ""},
		{"Crown Dependency practice", "B, p.29: high level health geography YAC-YAF -> No", apc(d2526, gp("ALD200"), res(sutton)), "", "B-4", "36L", "36L_B_4_2", ""},
		{"charging category missing", "Methodology p.9: an unstated value answers No; B -> B-4", apc(d2526, ovc(""), gp("H85030")), "", "B-4", "36L", "36L_B_4_1", ""},
	}
}

func TestBorderAndDevolved(t *testing.T) { runCases(t, borderAndDevolvedCases()) }

func borderAndDevolvedCases() []camCase {
	return []camCase{
		{"Welsh GP, Powys resident, not specialised", "WB-1 Yes (p.35), C No: a resident of Wales, LHB of residence (Welsh Local Health Board, p.18-19)", apc(d2526, gp("W00199"), res(powys)), "", "C", "7A7", "7A7_C_1", ""},
		{"Welsh GP in Powys, Wrexham resident", "WB-1 Yes (p.35: Wrexham W06000006 is in the border area), C No: resident in Wales, so the LHB of the patient's postcode (p.18-19: 7A1 Betsi Cadwaladr), not the GP's (7A7)", apc(d2526, gp("W00199"), res(wrexham)), "", "C", "7A1", "7A1_C_1", ""},
		{"Welsh GP, Shropshire resident", "WB-1 Yes: English border ICB QOC (p.35)", op(d2526, gp("W00199"), res(shropsh)), "", "C", "7A7", "7A7_C_2", ""},
		{"Welsh GP, border, highly specialised", "C Yes, C-1 Yes (p.42): hub by provider", apc(d2526, gp("W00199"), res(powys), svc("NCBPS01A")), "", "C-1", "13R", "13R_C_1_1", "21"},
		{"Welsh GP, border, specialised, not via RAS", "C-1 No, WB-10 Yes, C-3 No (p.45): NHS England hub (provider)", apc(d2526, gp("W00199"), res(powys), svc("NCBPS01C")), "", "C-3", "13R", "13R_C_3_2", "21"},
		{"Welsh resident, no Welsh GP", "WB-3 No (p.37), C No: LHB of residence (p.19)", apc(d2526, res(cardiff)), "", "C", "7A4", "7A4_C_1", ""},
		{"Welsh resident, specialised", "C-1 No, WB-10 No: WHSSC 7A5HC (p.19)", apc(d2526, res(cardiff), svc("NCBPS01C")), "", "WB-10", "7A5HC", "7A5HC_WB_10_1", ""},
		{"Scottish resident", "WB-3 No, C No: Scottish Health Board of residence (p.17)", op(d2526, res(borders)), "", "C", "SB9", "SB9_C_1", ""},
		{"Scottish resident, specialised", "WB-10 No: NHS Scotland NSD SD002 (p.16)", apc(d2526, res(borders), svc("NCBPS01C")), "", "WB-10", "SD002", "SD002_WB_10_1", ""},
		{"Scottish resident registered in England", "WB-2 No (outside border area), WB-3 No -> C (p.36-37)", apc(d2526, gp("H85030"), res(borders)), "", "C", "SB9", "SB9_C_1", ""},
		{"NI resident", "C No: NI Local Commissioning Group of residence (p.18)", apc(d2526, res(belfast)), "", "C", "ZC010", "ZC010_C_1", ""},
		{"English GP, Welsh border resident", "WB-2 Yes (p.36): English path, responsible sub-ICB by GP", apc(d2526, gp("H85030"), res(powys)), "", "C-5", "36L", "36L_C_5_1", "12"},
		{"Wales pseudo postcode", "WB-3 (p.37): ZZ99 3GZ -> provider main site, England", apc(d2526, res(wales99)), "", "C-5", "36L", "36L_C_5_1", ""},
	}
}

func TestSpecialised(t *testing.T) { runCases(t, specialisedCases()) }

func specialisedCases() []camCase {
	return []camCase{
		{"red service", "C-0 Yes, C-0a red (p.43), C-2 Yes: hub of the provider (p.44)", apc(d2526, gp("H85030"), svc("NCBPS01A")), "", "C-2", "13R", "13R_C_2_1", "21"},
		{"blue service", "C-0a: the flow chart's red/blue -> C-2", op(d2526, gp("B84019"), svc("NCBPS01L_TOP"), provider("RCD")), "", "C-2", "85J", "85J_C_2_1", "21"},
		{"red, provider with no host", "C-2 No (p.44): N/A, C_2_X", apc(d2526, gp("H85030"), svc("NCBPS01A"), provider("ZZZ99")), "", "C-2", "", "C_2_X", "21"},
		{"green service, delegated sub-ICB 2025/26", "C-0a No -> E..J, C-5 Yes, C-6 Yes (p.46): responsible sub-ICB", apc(d2526, gp("H85030"), svc("NCBPS01C")), "2025/26", "C-6", "36L", "36L_C_6_1", "25"},
		{"green service, not yet delegated 2024/25", "C-6 No (p.46): hub by GP practice", apc(d2425, gp("H85030"), svc("NCBPS01C")), "2024/25", "C-6", "13R", "13R_C_6_4", "21"},
		{"green service by residence", "C-6 Yes, responsible sub-ICB by postcode (p.11)", op(d2526, svc("NCBPS01C"), res(halifax)), "", "C-6", "02T", "02T_C_6_2", "25"},
		{"green service, no fixed abode", "C-6 Yes, host (p.11: ZZ99 3VZ -> provider main site)", op(d2526, svc("NCBPS01C"), res(noFixed)), "", "C-6", "36L", "36L_C_6_3", "25"},
		{"amber service 2024/25", "2024/25 amber: retained, hub by GP practice (C-0b)", apc(d2425, gp("B84019"), svc("NCBPS01S")), "2024/25", "C-0b", "85J", "85J_C_0b_1", "21"},
		{"same service green in 2025/26", "2025/26 removed amber (changes item 5): C-6", apc(d2526, gp("B84019"), svc("NCBPS01S")), "2025/26", "C-6", "02T", "02T_C_6_1", "25"},
		{"unknown service code", "C-0 No: not in the year's list", apc(d2526, gp("H85030"), svc("NCBZZ99Z")), "", "C-5", "36L", "36L_C_5_1", "12"},
		{"sentinel 99999999", "C-0 No: 99999999 is non-NHS England", apc(d2526, gp("H85030"), svc("99999999")), "", "C-5", "36L", "36L_C_5_1", "12"},
	}
}

func TestDentalJusticePublicHealthInfertilityArmedForces(t *testing.T) {
	runCases(t, populationCases())
}

func populationCases() []camCase {
	return []camCase{
		{"secondary dental", "D (p.48): TFC 140-145, 217, 450, 451 -> responsible sub-ICB", op(d2526, gp("H85030"), tfc("144")), "", "D", "36L", "36L_D_1", "55"},
		{"secondary dental by residence", "D (p.48)", apc(d2425, tfc("217"), res(halifax)), "2024/25", "D", "02T", "02T_D_2", "55"},
		{"dental TFC not in list", "D No: 146 is not listed", op(d2526, gp("H85030"), tfc("146")), "", "C-5", "36L", "36L_C_5_1", ""},
		{"prisoner admitted from prison", "E (p.51): Appendix F postcode and source of admission 39", apc(d2526, res(highDown), source("39")), "", "E", "97T", "97T_E_1", "71"},
		{"prisoner, source 40", "E (p.50): '40' penal establishment (choice 6)", apc(d2526, res(highDown), source("40")), "", "E", "97T", "97T_E_1", "71"},
		{"prison postcode, admitted from home", "E (p.51): APC needs source 39", apc(d2526, res(highDown), source("19")), "", "C-5", "92A", "92A_C_5_1", ""},
		{"prisoner outpatient", "E (p.51-52): outpatients need only the postcode", op(d2526, res(highDown), gp("H85030")), "", "E", "97T", "97T_E_1", "71"},
		{"prisoner at A&E", "E (p.49): A&E is not commissioned by H&J", ae(d2526, res(highDown)), "", "J", "92A", "92A_AE_1_1", ""},
		{"section 7a screening", "F (p.52): public health service code -> region", op(d2526, gp("H85030"), svc("NCBPH01F")), "", "F", "Y56", "Y56_F_1", "81"},
		{"section 7a, no GP", "F (p.22): no registered GP -> region of residence", op(d2526, svc("NCBPH01F"), res(halifax)), "", "F", "Y63", "Y63_F_3", "81"},
		{"section 7a, prison postcode, admitted from home", "E No (p.51: source 19); F (p.21-22): a registered patient's region is the GP practice's; unlike the hub method (p.14-15), the region method has no health and justice clause", apc(d2526, gp("H85030"), res(highDown), source("19"), svc("NCBPH24Y")), "", "F", "Y56", "Y56_F_1", "81"},
		{"amber 2024/25, English DMS practice", "C-0b: the hub method places patients of English DMS practices by their postcode (p.14-15): Halifax 02T -> 85J", apc(d2425, gp("A91020"), res(halifax), svc("NCBPS01S")), "2024/25", "C-0b", "85J", "85J_C_0b_3", "21"},
		{"green service not delegated, prison postcode", "C-6 No (p.46): hub by the responsible GP practice method, which places the health and justice population by postcode (p.14-15): 92A -> 14G", apc(d2425, gp("H85030"), res(highDown), source("19"), svc("NCBPS01C")), "2024/25", "C-6", "14G", "14G_C_6_6", "21"},
		{"local authority public health", "H (p.54): local rule -> LA of residence", op(d2526, gp("H85030"), localPH()), "", "H", "E09000029", "E09000029_H_1", ""},
		{"local authority public health, no fixed abode", "H (p.54), Responsible Local Authority (p.21); ZZ99 3VZ: the provider's main site is the usual place of residence for payment (p.7), so the LA of RCD's site (Harrogate HG2 7SX, North Yorkshire E06000065)", op(d2526, gp("H85030"), res(noFixed), provider("RCD"), localPH()), "", "H", "E06000065", "E06000065_H_1", ""},
		{"infertility, civilian", "I (p.54) Z31 diagnosis, I-1 No -> responsible sub-ICB", apc(d2526, gp("H85030"), diag("Z318", "")), "", "I-1", "36L", "36L_I_1_2", "12"},
		{"infertility by procedure", "I (p.55): OPCS Q13.1", apc(d2526, gp("B84019"), proc("X401;Q131")), "", "I-1", "02T", "02T_I_1_2", ""},
		{"infertility, DMS patient", "I-1 Yes (Appendix E): armed forces hub", op(d2526, gp("A91020"), res(sutton), diag("N979", "")), "", "I-1", "13Q", "13Q_I_1_1", "61"},
		{"not infertility: Z36", "I (p.54): Z35.0 only, not Z36", apc(d2526, gp("H85030"), diag("Z360", "")), "", "C-5", "36L", "36L_C_5_1", ""},
		{"armed forces practice", "J (p.55): 13Q practice in England", apc(d2526, gp("A91020")), "", "J", "13Q", "13Q_J_1", "61"},
		{"armed forces at A&E", "A&E-1 Yes, J Yes (flow chart, A&E path)", ae(d2526, gp("A91020")), "", "J", "13Q", "13Q_J_1", "61"},
		{"armed forces, specialised red", "C-2 comes before J (p.4 hierarchy)", apc(d2526, gp("A91020"), svc("NCBPS01A")), "", "C-2", "13R", "13R_C_2_1", ""},
	}
}

func TestResponsibleAndEmergency(t *testing.T) { runCases(t, responsibleAndEmergencyCases()) }

func responsibleAndEmergencyCases() []camCase {
	return []camCase{
		{"practice as at the date", "Responsible sub-ICB (p.11): epraccur practice", apc(d2526, gp("B84019"), res(sutton)), "", "C-5", "02T", "02T_C_5_1", "12"},
		{"closed practice, activity after close", "p.11: practice must be A/P on the assignment date -> postcode", apc(d2526, gp("B84002"), res(sutton)), "", "C-5", "36L", "36L_C_5_1", ""},
		{"closed practice, activity before close", "p.11: open on the assignment date", apc("2020-06-15", gp("B84002"), res(sutton)), "2024/25", "C-5", "02T", "02T_C_5_1", ""},
		{"no registered GP", "p.11: V81999 -> postcode", apc(d2526, gp("V81999"), res(halifax)), "", "C-5", "02T", "02T_C_5_1", ""},
		{"no fixed abode, no GP", "p.11: ZZ99 3VZ -> provider main site (host)", apc(d2526, res(noFixed), provider("RCD")), "", "C-5", "42D", "42D_C_5_1", ""},
		{"Welsh practice, English resident", "p.11: national grouping W00 excluded -> postcode", apc(d2526, gp("W00199"), res(halifax)), "", "C-5", "02T", "02T_C_5_1", ""},
		{"unassignable", "C-5 No: no GP, no postcode, no host -> X (C_5_X is for green services, choice 24)", apc(d2526, res(noFixed), provider("ZZZ99")), "", "C-5", "", "X", ""},
		{"A&E, English resident", "A&E-1 Yes, J No -> responsible sub-ICB", ae(d2526, gp("B84019")), "", "J", "02T", "02T_AE_1_1", "12"},
		{"A&E, Scottish resident", "A&E-1 No -> host sub-ICB (flow chart)", ae(d2526, res(borders)), "", "A&E-1", "36L", "36L_AE_1_2", "12"},
		{"A&E, no fixed abode", "A&E-1 (p.26): ZZ99 3VZ -> Yes, provider site", ae(d2526, res(noFixed)), "", "J", "36L", "36L_AE_1_1", ""},
		{"A&E private patient is not asked A", "flow chart: ECDS starts at A&E-1", ae(d2526, admin("02"), gp("H85030")), "", "J", "36L", "36L_AE_1_1", ""},
		{"drug line excluded", "choice 1: POD DRUG outside CAM", apc(d2526, gp("H85030"), pod("DRUG"), submitted("36L")), "", "EXCL", "36L", "EXCL_1", ""},
	}
}

func allCases() []camCase {
	var all []camCase
	for _, set := range [][]camCase{privateAndOverseasCases(), borderAndDevolvedCases(), specialisedCases(), populationCases(), responsibleAndEmergencyCases()} {
		all = append(all, set...)
	}
	return all
}

// AppendProto writes the very message Proto builds: the stage sends the
// one, explain and tests read the other.
func TestAppendProtoIsProto(t *testing.T) {
	a := sampleAssigner(t)
	var r Result // one Result for every case, as the stage reuses one
	for _, tc := range allCases() {
		a.Decide(tc.act, nil, &r)
		b, err := a.AppendProto([]byte("prefix"), &r)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(b[:6]) != "prefix" {
			t.Fatalf("%s: AppendProto did not append", tc.name)
		}
		var got dmicv1.Assignment
		if err := proto.Unmarshal(b[6:], &got); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := a.Proto(&r)
		if !proto.Equal(&got, want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, &got, want)
		}
		// The trail is not sent (it is derived again to explain a
		// record); Explained has it, each decision with its input.
		if len(got.GetTrail()) != 0 {
			t.Errorf("%s: the trail is on the wire", tc.name)
		}
		if ex := a.Explained(&r).GetTrail(); len(ex) == 0 || ex[len(ex)-1].GetInput() == "" {
			t.Errorf("%s: the explained trail's inputs are missing", tc.name)
		}
	}
}

// The trail of one record never leaks into the next: a reused Result gives
// what a new one gives.
func TestResultReuse(t *testing.T) {
	a := sampleAssigner(t)
	var reused Result
	for _, tc := range allCases() {
		var fresh Result
		a.Decide(tc.act, nil, &fresh)
		a.Decide(tc.act, nil, &reused)
		if !proto.Equal(a.Explained(&fresh), a.Explained(&reused)) {
			t.Errorf("%s: a reused Result differs from a new one", tc.name)
		}
	}
}

// Deciding builds the explanation without allocating: the trail is kept as
// pieces of text that already exist (issue 14: within 2x of the first
// cut's cost). Reason codes dmic makes up are built on first use only.
func TestDecideAllocatesNothing(t *testing.T) {
	a := sampleAssigner(t)
	acts := []*dmicv1.DeidentifiedActivity{
		apc(d2526, gp("H85030")),
		apc(d2526, gp("V81999"), res(halifax)),
		apc(d2526, provider("RVR00"), res(noFixed)),
		apc(d2526, gp("H85030"), svc("NCBPS01C")),
		apc(d2425, gp("H85030"), svc("NCBPS01C")),
		apc(d2526, gp("H85030"), svc("NCBPS01A")),
		op(d2526, gp("H85030"), tfc("144")),
		ae(d2526, gp("B84019")),
		ae(d2526, res(borders)),
		apc(d2526, ovc("E"), gp("B84019"), res(usa)),
		apc(d2526, gp("W00199"), res(powys), svc("NCBPS01C")),
		op(d2526, res(borders)),
		op(d2526, res(highDown), gp("H85030")),
		op(d2526, gp("H85030"), svc("NCBPH01F")),
		apc(d2526, gp("A91020")),
	}
	var r Result
	for _, act := range acts {
		a.Decide(act, nil, &r) // warm: the Result's storage, made-up reason codes
		buf, _ := a.AppendProto(nil, &r)
		if n := testing.AllocsPerRun(50, func() {
			a.Decide(act, nil, &r)
			buf, _ = a.AppendProto(buf[:0], &r)
		}); n != 0 {
			t.Errorf("Decide and AppendProto of %s allocate %.0f times per record, want 0\n%s", r.ReasonCode, n, Explain(a.Explained(&r)))
		}
	}
}

func TestVersionByDate(t *testing.T) {
	tests := []struct{ date, want string }{
		{"2024-04-01", "2024/25"}, {"2025-03-31", "2024/25"}, {"2025-04-01", "2025/26"}, {"2026-03-31", "2025/26"},
	}
	for _, tt := range tests {
		if v, exact := VersionFor(tt.date); v.Name != tt.want || !exact {
			t.Errorf("VersionFor(%s) = %s %v, want %s", tt.date, v.Name, exact, tt.want)
		}
	}
	if v, exact := VersionFor("2019-01-01"); v.Name != "2024/25" || exact {
		t.Errorf("before the first version: %s %v", v.Name, exact)
	}
}

func TestCAMDateByDataset(t *testing.T) {
	a := apc("2025-03-20")
	a.GetApc().DischargeDateHospitalProviderSpell = "2025-04-02"
	if got := record.CAMDate(a, a.GetActivityDate()); got != "2025-04-02" {
		t.Errorf("finished APC: CAM date %s, want the discharge date (p.6)", got)
	}
	a.GetApc().CdsType = "190"
	if got := record.CAMDate(a, a.GetActivityDate()); got != "2025-03-20" {
		t.Errorf("unfinished APC: CAM date %s, want the spell start (p.6)", got)
	}
}

func TestExplainAndVintages(t *testing.T) {
	a := sampleAssigner(t)
	var r Result
	a.Decide(apc(d2526, gp("H85030"), svc("NCBPS01C")), nil, &r)
	got := a.Explained(&r)
	if got.GetReasonCode() != "36L_C_6_1" || got.GetCamVersion() != "2025/26" || got.GetRuleId() != "CAM-C-6" {
		t.Fatalf("Explained = %v", got)
	}
	text := Explain(got)
	for _, want := range []string{"C-0", "C-5", "C-6", "practice H85030", "NCBPS01C GREEN in 25/26", "cam_service_codes"} {
		if !strings.Contains(text, want) {
			t.Errorf("explanation lacks %q:\n%s", want, text)
		}
	}
	if len(got.GetReferenceVintages()) == 0 || !strings.Contains(strings.Join(got.GetReferenceVintages(), " "), "epraccur.csv=ODS") {
		t.Errorf("vintages = %v", got.GetReferenceVintages())
	}
}

func TestRerunUnderOtherVersion(t *testing.T) {
	a := sampleAssigner(t)
	v, _ := VersionNamed("2024/25")
	var r Result
	a.Decide(apc(d2526, gp("H85030"), svc("NCBPS01C")), v, &r)
	if r.Version != "2024/25" || r.ReasonCode != "13R_C_6_4" {
		t.Errorf("2025/26 activity under 2024/25 rules: %s %s", r.Version, r.ReasonCode)
	}
}

func TestNilInputs(t *testing.T) {
	if got := NewAssigner(nil).Assign(apc(d2526)); got.GetReasonCode() != "X" {
		t.Errorf("no reference data: %v", got)
	}
	if got := sampleAssigner(t).Assign(nil); got.GetReasonCode() != "X" {
		t.Errorf("nil activity: %v", got)
	}
}

func BenchmarkDecide(b *testing.B) {
	a := sampleAssigner(b)
	acts := []*dmicv1.DeidentifiedActivity{
		apc(d2526, gp("H85030")),
		apc(d2526, gp("V81999"), res(halifax)),
		apc(d2526, provider("RVR00"), res(noFixed)),
	}
	b.ReportAllocs()
	var r Result
	i := 0
	for b.Loop() {
		a.Decide(acts[i%len(acts)], nil, &r)
		i++
	}
}

// BenchmarkAppendProto is what the stage does per record: decide and
// write the assignment, trail and all, as protobuf.
func BenchmarkAppendProto(b *testing.B) {
	a := sampleAssigner(b)
	acts := []*dmicv1.DeidentifiedActivity{
		apc(d2526, gp("H85030")),
		apc(d2526, gp("V81999"), res(halifax)),
		apc(d2526, provider("RVR00"), res(noFixed)),
	}
	b.ReportAllocs()
	var r Result
	var buf []byte
	i := 0
	for b.Loop() {
		a.Decide(acts[i%len(acts)], nil, &r)
		buf, _ = a.AppendProto(buf[:0], &r)
		i++
	}
}

func BenchmarkAssign(b *testing.B) {
	a := sampleAssigner(b)
	acts := []*dmicv1.DeidentifiedActivity{
		apc(d2526, gp("H85030")),
		apc(d2526, gp("V81999"), res(halifax)),
		apc(d2526, provider("RVR00"), res(noFixed)),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.Assign(acts[i%len(acts)])
		i++
	}
}
