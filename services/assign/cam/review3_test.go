package cam

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// Cases from a third review, written as a reader of the published guidance
// would write them, box by box of the flow chart and page by page of
// "Commissioner Assignment Method Flow Chart 2025/26: Accompanying Guidance
// and Reference Tables" v1.1 (the ordinary case, each branch, each edge),
// each citing the page, table or appendix it comes from. The readings taken
// where the text is silent are numbered in docs/commissioner-assignment.md.

// "When to assign commissioner code" (p.6) names, for each CDS type of the
// "CDS scope" (p.5), the date CAM is applied at, and so the financial year
// whose rules apply: 31 March 2025 is 2024/25, 1 April 2025 is 2025/26. A
// green service of practice H85030 shows which year's rules were applied:
// its sub-ICB 36L has a delegation agreement from 1 April 2025 only, so
// 2024/25 is C-6 No, the London hub (13R_C_6_4), and 2025/26 C-6 Yes, 36L
// (36L_C_6_1). Every other date of each record is on the other side of the
// boundary, so only the date p.6 names can give the expected year.
func TestCAMDateByCDSTypeAtTheYearBoundary(t *testing.T) {
	spell := func(cds, start, discharge, other string) *dmicv1.DeidentifiedActivity {
		act := apc(other, gp("H85030"), svc("NCBPS01C"))
		p := act.GetApc()
		p.CdsType, p.StartDateHospitalProviderSpell, p.DischargeDateHospitalProviderSpell = cds, start, discharge
		return act
	}
	appointment := func(day, other string) *dmicv1.DeidentifiedActivity {
		act := op(other, gp("H85030"), svc("NCBPS01C"))
		act.GetOutpatient().AppointmentDate = day
		return act
	}
	arrival := func(day, other string) *dmicv1.DeidentifiedActivity {
		act := ae(other, gp("H85030"))
		act.GetEmergencyCare().EcArrivalDate = day
		return act
	}
	type tc struct {
		name, section string
		act           *dmicv1.DeidentifiedActivity
		date, version string
		reason        string
	}
	var cases []tc
	for _, cds := range []string{"120", "130", "140", "150", "160"} {
		cases = append(cases,
			tc{"CDS " + cds + " discharged 1 April", "p.6: CDS " + cds + ", DISCHARGE DATE (HOSPITAL PROVIDER SPELL); admitted 20 March",
				spell(cds, "2025-03-20", "2025-04-01", "2025-03-20"), "2025-04-01", "2025/26", "36L_C_6_1"},
			tc{"CDS " + cds + " discharged 31 March", "p.6: CDS " + cds + ", DISCHARGE DATE (HOSPITAL PROVIDER SPELL)",
				spell(cds, "2025-03-01", "2025-03-31", "2025-04-01"), "2025-03-31", "2024/25", "13R_C_6_4"})
	}
	for _, cds := range []string{"180", "190", "200"} {
		cases = append(cases,
			tc{"CDS " + cds + " admitted 31 March", "p.6: CDS " + cds + ", START DATE (HOSPITAL PROVIDER SPELL)",
				spell(cds, "2025-03-31", "", "2025-04-01"), "2025-03-31", "2024/25", "13R_C_6_4"},
			tc{"CDS " + cds + " admitted 1 April", "p.6: CDS " + cds + ", START DATE (HOSPITAL PROVIDER SPELL)",
				spell(cds, "2025-04-01", "", "2025-03-31"), "2025-04-01", "2025/26", "36L_C_6_1"})
	}
	cases = append(cases,
		tc{"outpatient appointment 31 March", "p.6: CDS 020, Appointment Date", appointment("2025-03-31", "2025-04-01"), "2025-03-31", "2024/25", "13R_C_6_4"},
		tc{"outpatient appointment 1 April", "p.6: CDS 020, Appointment Date", appointment("2025-04-01", "2025-03-31"), "2025-04-01", "2025/26", "36L_C_6_1"},
		tc{"emergency care arrival 31 March", "p.6: CDS 011, Emergency care arrival date", arrival("2025-03-31", "2025-04-01"), "2025-03-31", "2024/25", "36L_AE_1_1"},
		tc{"emergency care arrival 1 April", "p.6: CDS 011, Emergency care arrival date", arrival("2025-04-01", "2025-03-31"), "2025-04-01", "2025/26", "36L_AE_1_1"},
		// A finished episode of a spell that has not ended has no
		// discharge date: the spell's start date, as for an unfinished
		// one (choice 28).
		tc{"finished episode, spell not discharged", "p.6 (choice 28): no DISCHARGE DATE -> START DATE (HOSPITAL PROVIDER SPELL)",
			spell("130", "2025-03-31", "", "2025-04-01"), "2025-03-31", "2024/25", "13R_C_6_4"},
	)
	a := sampleAssigner(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r Result
			a.Decide(c.act, nil, &r)
			if r.Date != c.date || r.Version != c.version || r.ReasonCode != c.reason {
				t.Errorf("%s: CAM date %s under %s, %s; want %s under %s, %s\n%s",
					c.section, r.Date, r.Version, r.ReasonCode, c.date, c.version, c.reason, Explain(a.Explained(&r)))
			}
		})
	}
}

// "CDS scope" (p.5) and the flow chart's first box: admitted patient care
// (120-160, and the unfinished 180-200 of p.5-6) and outpatients (020) take
// the main path, which starts at A (private patient or chargeable overseas
// visitor, p.27); emergency care (011) takes the dashed A&E path, which
// starts at A&E-1 and never asks A. So ADMINISTRATIVE CATEGORY 02 gives
// VPP00 on the main path only.
func TestCDSScopeChoosesThePath(t *testing.T) {
	var cases []camCase
	for _, cds := range []string{"120", "130", "140", "150", "160", "180", "190", "200"} {
		act := apc(d2526, admin("02"), gp("H85030"))
		act.GetApc().CdsType = cds
		cases = append(cases, camCase{"APC CDS " + cds + " private patient", "p.5 CDS scope, flow chart (main path), A (p.27): ADMINISTRATIVE CATEGORY 02 -> VPP00",
			act, "", "A", "VPP00", "VPP00_A_1", ""})
	}
	cases = append(cases,
		camCase{"outpatient (020) private patient", "p.5, flow chart main path, A (p.27)", op(d2526, admin("02"), gp("H85030")), "", "A", "VPP00", "VPP00_A_1", ""},
		camCase{"emergency care (011) private patient", "p.5, flow chart: 011 starts at A&E-1 (p.26), A is not asked; J No -> responsible sub-ICB",
			ae(d2526, admin("02"), ovc("D"), gp("H85030")), "", "J", "36L", "36L_AE_1_1", "12"},
	)
	runCases(t, cases)
	a := sampleAssigner(t)
	var r Result
	a.Decide(ae(d2526, admin("02"), gp("H85030")), nil, &r)
	if got := r.Steps(nil); len(got) < 2 || got[1] != "A&E-1" || answer(&r, "A") != "" || answer(&r, "B") != "" {
		t.Errorf("flow chart: emergency care asks A&E-1 first (after the drug/device exclusion) and never A or B: %v", got)
	}
}

// Appendix H (p.66-67) lists, in its first table, the pseudo postcodes of
// the EU member states and the states with similar arrangements (starred:
// Norway, Switzerland). B-2 (p.31) is Yes for each of them: the provider's
// specialised hub (RVR: 13R). Its second table lists the non-EEA reciprocal
// arrangement countries, for which B-2 is No; with OVERSEAS VISITOR CHARGING
// CATEGORY C, B-3 is then Yes (choice 4) and the OSV guidance (p.25) gives
// the host for a patient resident outside the UK and not registered.
func TestAppendixHPseudoPostcodes(t *testing.T) { runCases(t, appendixHCases()) }

func appendixHCases() []camCase {
	table1 := []struct{ country, pc string }{
		{"Austria", "4MZ"}, {"Belgium", "2DZ"}, {"Bulgaria", "4UZ"}, {"Croatia", "5VZ"}, {"Cyprus (Southern)", "6AZ"},
		{"Czechia", "5XZ"}, {"Denmark", "4FZ"}, {"Estonia", "7LZ"}, {"Finland", "4BZ"}, {"France", "4GZ"},
		{"Germany", "4QZ"}, {"Greece", "4RZ"}, {"Hungary", "4XZ"}, {"Italy", "4LZ"}, {"Latvia", "7RZ"},
		{"Lithuania", "7SZ"}, {"Luxembourg", "2EZ"}, {"Malta", "5BZ"}, {"Netherlands", "4EZ"}, {"Norway*", "2AZ"},
		{"Poland", "4YZ"}, {"Portugal", "4JZ"}, {"Republic of Ireland", "3AZ"}, {"Romania", "4ZZ"}, {"Slovakia", "5YZ"},
		{"Slovenia", "5UZ"}, {"Spain", "4HZ"}, {"Sweden", "2CZ"}, {"Switzerland*", "4PZ"},
	}
	table2 := []struct{ country, pc string }{
		{"Anguilla, Bermuda, British Virgin Islands, Cayman Islands, Montserrat, Turks and Caicos Islands", "6RZ"},
		{"Ascension, Falkland Islands, St Helena, Tristan da Cunha", "6UZ"}, {"Australia", "6GZ"},
		{"Bosnia and Herzegovina", "5NZ"}, {"Faroe Islands", "4WZ"}, {"Gibraltar", "5AZ"}, {"Guernsey", "3EZ"},
		{"Isle of Man", "3BZ"}, {"Israel", "9AZ"}, {"Jersey", "3FZ"}, {"Kosovo, Montenegro, Serbia", "9SZ"},
		{"New Zealand", "6HZ"}, {"North Macedonia", "5QZ"}, {"Pitcairn Islands", "6JZ"},
	}
	var cases []camCase
	for _, c := range table1 {
		overseas := &dmicv1.Residence{Note: "overseas", PseudoPostcode: c.pc}
		cases = append(cases, camCase{c.country + " ZZ99 " + c.pc, "Appendix H table 1 (p.66), B-1 Yes and B-2 Yes (p.31): NHS England specialised hub (provider)",
			apc(d2526, ovc("E"), res(overseas), svc("NCBPS01A")), "", "B-2", "13R", "13R_B_2_1", "21"})
	}
	for _, c := range table2 {
		overseas := &dmicv1.Residence{Note: "overseas", PseudoPostcode: c.pc}
		cases = append(cases, camCase{c.country + " ZZ99 " + c.pc, "Appendix H table 2 (p.67): B-2 No (p.31); B-3 Yes (category C, choice 4): OSV guidance (p.25), not registered and resident outside the UK -> host",
			apc(d2526, ovc("C"), res(overseas), svc("NCBPS01A")), "", "B-3", "36L", "36L_B_3_2", "12"})
	}
	return cases
}

// The published reason table (cam_commissioner_assignment_reason.csv) has
// "C_5_X, C-5 -Unable to determine GREEN services Commissioner": it is the
// reason of a green service (C-5 Yes) for which C-6 finds no responsible
// sub-ICB and no hub. A record that is not for a green service (C-5 No) and
// has no responsible sub-ICB either (no GP, no usable postcode, a provider
// not in etr so no host, p.10-12) is "X, Unable to assign Commissioner".
func TestUnableToAssignReasons(t *testing.T) {
	noHost := provider("ZZZ99")
	cases := []camCase{
		{"not specialised, nothing to place", "C-5 No (p.46-47): responsible sub-ICB (p.11-12): no GP, ZZ99 3VZ -> provider main site, none -> X",
			apc(d2526, res(noFixed), noHost), "", "C-5", "", "X", ""},
		{"unknown service code, nothing to place", "C-0 No (not in the year's list), C-5 No: X",
			op(d2526, res(noFixed), noHost, svc("NCBZZ99Z")), "", "C-5", "", "X", ""},
		{"green service, nothing to place", "C-5 Yes; C-6 (p.47) needs the responsible sub-ICB: none -> C_5_X",
			apc(d2526, res(noFixed), noHost, svc("NCBPS01C")), "", "C-5", "", "C_5_X", ""},
		{"green service, sub-ICB with no agreement and no hub", "C-6 No (p.47): the postcode's sub-ICB ZZY has no agreement; no hub by GP practice, residence or host -> C_5_X",
			apc(d2526, res(&dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "ZZY", Icb: "ZZI"}), noHost, svc("NCBPS01C")), "", "C-6", "", "C_5_X", ""},
	}
	runCases(t, cases)
	a := sampleAssigner(t)
	for _, c := range cases {
		var r Result
		a.Decide(c.act, nil, &r)
		if r.CommissionerType != TypeUnknown || r.Method != "Not Assigned" {
			t.Errorf("%s: type %q method %q, want %q %q", c.name, r.CommissionerType, r.Method, TypeUnknown, "Not Assigned")
		}
	}
}

// B-4 (p.34) Yes is the responsible sub-ICB location (p.11-12), which is
// found by the practice, the postcode or the host; its method label says
// which, as at every other responsible sub-ICB step. A BFPO DMS practice
// (A91183, commissioner 13Q, no sub-ICB) meets B-4's logic (choice 18), and
// its patient's responsible sub-ICB is the postcode's.
func TestOverseasVisitorMethodLabels(t *testing.T) {
	a := sampleAssigner(t)
	for _, c := range []struct {
		name, section string
		act           *dmicv1.DeidentifiedActivity
		reason, typ   string
		method        string
	}{
		{"registered with an English GP", "B-4 Yes (p.34): responsible sub-ICB by the GP practice (p.12)",
			apc(d2526, ovc("E"), gp("H85030"), res(usa)), "36L_B_4_1", TypeSubICB, "Sub-ICB (Practice Mapped)"},
		{"registered with a BFPO DMS practice", "B-4 Yes (p.34, choice 18): 13Q is no sub-ICB, so the postcode's (p.12)",
			apc(d2526, gp("A91183"), res(halifax)), "02T_B_4_1", TypeSubICB, "Sub-ICB (Postcode Mapped)"},
		{"not registered", "B-4 No (p.34): host sub-ICB (p.10)",
			apc(d2526, ovc("E"), res(usa)), "36L_B_4_2", TypeSubICB, "Sub-ICB (Host Mapped)"},
		{"reciprocal, not registered", "B-3 Yes (p.25): host",
			apc(d2526, ovc("C"), res(usa)), "36L_B_3_2", TypeSubICB, "Reciprocal OSVs"},
		{"chargeable", "A Yes (p.27): VPP00",
			apc(d2526, ovc("F")), "VPP00_A_1", TypePrivate, "Non-reciprocal OSVs"},
	} {
		var r Result
		a.Decide(c.act, nil, &r)
		if r.ReasonCode != c.reason || r.CommissionerType != c.typ || r.Method != c.method {
			t.Errorf("%s (%s): %s type %q method %q, want %s %q %q\n%s", c.name, c.section, r.ReasonCode, r.CommissionerType, r.Method,
				c.reason, c.typ, c.method, Explain(a.Explained(&r)))
		}
	}
}

// The hub by GP practice (C-6 No, and 2024/25's C-0b: p.14-15, p.47) and the
// public health region (F: p.21-22) are looked up in the order the reason
// table numbers them: the GP practice's sub-ICB, the practice's ICB, the
// residence sub-ICB, the residence ICB, the provider's host sub-ICB. Z90010
// is an open practice of ICB QWE whose commissioner (ZZX) is in no table, so
// only its ICB places it; residence ZZY/QWO is a postcode whose sub-ICB is in
// no table, so only its ICB (Calderdale's, 85J / Y63) places it.
func TestHubAndRegionLookUpOrder(t *testing.T) {
	a := assignerWith(t, strings.ReplaceAll(practiceRow("Z90010", "19740401", "", "A"), `"36L"`, `"ZZX"`))
	icbOnly := res(&dmicv1.Residence{Country: refdata.CountryEngland, SubIcb: "ZZY", Icb: "QWO", LocalAuthority: "E08000033"})
	cases := []camCase{
		{"F by the practice's sub-ICB", "F (p.22): epraccur region of the practice (36L -> Y56)", op(d2526, gp("H85030"), svc("NCBPH01F")), "", "F", "Y56", "Y56_F_1", "81"},
		{"F by the practice's ICB", "F (p.22): practice Z90010, ICB QWE -> Y56", op(d2526, gp("Z90010"), svc("NCBPH01F")), "", "F", "Y56", "Y56_F_2", "81"},
		{"F by the residence sub-ICB", "F (p.22): V81999 -> postcode (02T -> Y63)", op(d2526, gp("V81999"), res(halifax), svc("NCBPH01F")), "", "F", "Y63", "Y63_F_3", "81"},
		{"F by the residence ICB", "F (p.22): V81999 -> postcode, ICB QWO -> Y63", op(d2526, gp("V81999"), icbOnly, svc("NCBPH01F")), "", "F", "Y63", "Y63_F_4", "81"},
		{"F by the host", "F (p.22), p.7: ZZ99 3VZ -> provider main site (RCD 42D -> Y63)", op(d2526, gp("V81999"), res(noFixed), provider("RCD"), svc("NCBPH01F")), "", "F", "Y63", "Y63_F_5", "81"},
		{"C-6 No by the practice's sub-ICB", "C-6 No (p.47): hub by GP practice (p.15): 36L -> 13R", apc(d2425, gp("H85030"), svc("NCBPS01C")), "2024/25", "C-6", "13R", "13R_C_6_4", "21"},
		{"C-6 No by the practice's ICB", "C-6 No (p.47): practice Z90010, ICB QWE -> 13R", apc(d2425, gp("Z90010"), svc("NCBPS01C")), "2024/25", "C-6", "13R", "13R_C_6_5", "21"},
		{"C-6 No by the residence sub-ICB", "C-6 No: V81999 -> postcode (p.15): 02T -> 85J", apc(d2425, gp("V81999"), res(halifax), svc("NCBPS01C")), "2024/25", "C-6", "85J", "85J_C_6_6", "21"},
		{"C-6 No by the residence ICB", "C-6 No: V81999 -> postcode, ICB QWO -> 85J", apc(d2425, gp("V81999"), icbOnly, svc("NCBPS01C")), "2024/25", "C-6", "85J", "85J_C_6_7", "21"},
		{"C-6 No by the host", "C-6 No: ZZ99 3VZ -> provider main site (RCD 42D -> 85J)", apc(d2425, gp("V81999"), res(noFixed), provider("RCD"), svc("NCBPS01C")), "2024/25", "C-6", "85J", "85J_C_6_8", "21"},
		{"C-0b by the practice's sub-ICB", "2024/25 amber, hub by GP practice (p.15): 02T -> 85J", apc(d2425, gp("B84019"), svc("NCBPS01S")), "2024/25", "C-0b", "85J", "85J_C_0b_1", "21"},
		{"C-0b by the practice's ICB", "2024/25 amber: practice Z90010, ICB QWE -> 13R", apc(d2425, gp("Z90010"), svc("NCBPS01S")), "2024/25", "C-0b", "13R", "13R_C_0b_2", "21"},
		{"C-0b by the residence sub-ICB", "2024/25 amber: V81999 -> postcode 02T -> 85J", apc(d2425, gp("V81999"), res(halifax), svc("NCBPS01S")), "2024/25", "C-0b", "85J", "85J_C_0b_3", "21"},
		{"C-0b by the residence ICB", "2024/25 amber: V81999 -> postcode, ICB QWO -> 85J", apc(d2425, gp("V81999"), icbOnly, svc("NCBPS01S")), "2024/25", "C-0b", "85J", "85J_C_0b_4", "21"},
		{"C-0b by the host", "2024/25 amber: ZZ99 3VZ -> RCD 42D -> 85J", apc(d2425, gp("V81999"), res(noFixed), provider("RCD"), svc("NCBPS01S")), "2024/25", "C-0b", "85J", "85J_C_0b_5", "21"},
		// The responsible sub-ICB (p.11-12) has no ICB step: a practice
		// whose commissioner is no sub-ICB is placed by the postcode.
		{"C-6 Yes, practice commissioner no sub-ICB", "C-6 Yes (p.47): responsible sub-ICB (p.12): ZZX is no sub-ICB -> postcode 36L", apc(d2526, gp("Z90010"), svc("NCBPS01C")), "2025/26", "C-6", "36L", "36L_C_6_2", "25"},
		{"D, practice commissioner no sub-ICB", "D Yes (p.48): responsible sub-ICB (p.23, p.12) by the postcode", op(d2526, gp("Z90010"), tfc("140")), "", "D", "36L", "36L_D_2", "55"},
		{"D by the host", "D Yes (p.48): no GP, ZZ99 3VZ -> RCD's 42D", op(d2526, gp("V81997"), res(noFixed), provider("RCD"), tfc("451")), "", "D", "42D", "42D_D_3", "55"},
	}
	runCasesWith(t, a, cases)
}

// local is a line of a local contract-monitoring flow, dated day.
// Options that set APC fields do not apply to it.
func local(day string, o ...opt) *dmicv1.DeidentifiedActivity {
	a := apc(day, o...)
	a.Activity = &dmicv1.DeidentifiedActivity_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{ActivityDate: day, TreatmentFunctionCode: "300"}}
	return a
}

// E, F, H, I and J against their annotations, by the records each applies to,
// and in the order the flow chart asks them (p.4: health and justice before
// public health before armed forces; chart: D, E, F, H, I, J, C-5).
func TestPopulationStepsByRecordAndOrder(t *testing.T) { runCases(t, populationOrderCases()) }

func populationOrderCases() []camCase {
	return []camCase{
		// E (p.49-52): admitted care needs the source of admission as well
		// as the Appendix F postcode; outpatients only the postcode; A&E is
		// not commissioned by health and justice (p.49), and its path
		// (flow chart) has no E.
		{"E, admitted from the prison", "E (p.51): APC, Appendix F postcode and SOURCE OF ADMISSION 39", apc(d2526, res(highDown), source("39"), gp("H85030")), "", "E", "97T", "97T_E_1", "71"},
		{"E, outpatient", "E (p.51-52): outpatients, Appendix F postcode", op(d2526, res(highDown), gp("B84019")), "", "E", "97T", "97T_E_1", "71"},
		{"E, local flow", "E (p.51-52), choice 29: a record with no source of admission is read as an outpatient one", local(d2526, res(highDown), gp("H85030")), "", "E", "97T", "97T_E_1", "71"},
		{"E, emergency care", "E (p.49): A&E not commissioned by H&J; A&E path: J No -> responsible sub-ICB, which for the health and justice population is the Appendix F postcode's, whatever the GP (p.11-12)", ae(d2526, res(highDown), gp("B84019")), "", "J", "92A", "92A_AE_1_1", "12"},
		// H (p.54): any main-path record the local rule marks; never A&E.
		{"H, admitted care", "H (p.54): local authority of residence (p.21)", apc(d2526, gp("B84019"), res(halifax), localPH()), "", "H", "E08000033", "E08000033_H_1", ""},
		{"H, outpatient", "H (p.54): local authority of residence (p.21)", op(d2526, gp("H85030"), localPH()), "", "H", "E09000029", "E09000029_H_1", ""},
		{"H, emergency care", "A&E path (flow chart): H is not asked", ae(d2526, gp("H85030"), localPH()), "", "J", "36L", "36L_AE_1_1", "12"},
		// I (p.54-55): the diagnosis and procedure fields of admitted care
		// and outpatients.
		{"I, outpatient diagnosis", "I (p.54): N97 plus any 4th character; I-1 No: responsible sub-ICB", op(d2526, gp("B84019"), diag("", "Z371;N970")), "", "I-1", "02T", "02T_I_1_2", "12"},
		{"I, Z35.0", "I (p.54): Z35.0", apc(d2526, gp("H85030"), diag("Z350", "")), "", "I-1", "36L", "36L_I_1_2", "12"},
		{"I, Z35.1 is not", "I (p.54): Z35.0 only", apc(d2526, gp("H85030"), diag("Z351", "")), "", "C-5", "36L", "36L_C_5_1", "12"},
		{"I-1 No, not registered", "I-1 No (p.55): responsible sub-ICB, by the postcode (p.12)", apc(d2526, gp("V81999"), res(halifax), diag("N46X", "")), "", "I-1", "02T", "02T_I_1_2", "12"},
		// J (p.56-57) on both paths.
		{"J, outpatient", "J (p.56): English 13Q practice", op(d2526, gp("A91020")), "", "J", "13Q", "13Q_J_1", "61"},
		{"J, emergency care", "A&E-1 Yes, J (p.56) Yes", ae(d2526, gp("A91020")), "", "J", "13Q", "13Q_J_1", "61"},
		// The order of the questions.
		{"D before E", "flow chart: C-0 No -> D; D Yes (p.48): responsible sub-ICB, by the Appendix F postcode (p.12)", op(d2526, res(highDown), gp("H85030"), tfc("144")), "", "D", "92A", "92A_D_2", "55"},
		{"E before F", "p.4: health and justice before public health", op(d2526, res(highDown), gp("H85030"), svc("NCBPH01F")), "", "E", "97T", "97T_E_1", "71"},
		{"F before H", "flow chart: F Yes ends before H", op(d2526, gp("H85030"), svc("NCBPH01F"), localPH()), "", "F", "Y56", "Y56_F_1", "81"},
		{"H before I", "flow chart: H Yes ends before I", op(d2526, gp("H85030"), localPH(), diag("Z318", "")), "", "H", "E09000029", "E09000029_H_1", ""},
		{"I before J", "flow chart: I Yes -> I-1 (an English DMS patient: choice 9), before J", op(d2526, gp("A91020"), diag("Z318", "")), "", "I-1", "13Q", "13Q_I_1_1", "61"},
		// The region of a DMS practice is that of its postcode (p.22); the
		// sample postcode directory lacks Larkhill's SP4 8QY, so the
		// residence's region places the patient.
		{"F before J", "p.4: public health between armed forces and health and justice: F before J; region method (p.22)", op(d2526, gp("A91020"), svc("NCBPH01F")), "", "F", "Y56", "Y56_F_3", "81"},
	}
}

// Host sub-ICB location (p.10): "establish main site of the healthcare
// provider from ORGANISATION CODE (CODE OF PROVIDER)", a trust's code or one
// of its sites' (RCD02 is a site of Harrogate RCD), then etr's postcode and
// the postcode directory's sub-ICB (HG2 7SX: 42D).
func TestHostFromTheProviderCode(t *testing.T) {
	runCases(t, []camCase{
		{"trust code", "p.10: RCD -> etr HG2 7SX -> 42D; no GP and no fixed abode (p.12) -> host", apc(d2526, res(noFixed), provider("RCD")), "", "C-5", "42D", "42D_C_5_1", "12"},
		{"site code", "p.10: RCD02 is a site of trust RCD -> 42D", apc(d2526, res(noFixed), provider("RCD02")), "", "C-5", "42D", "42D_C_5_1", "12"},
		{"A&E-1 No, site code", "A&E-1 No (p.26): host sub-ICB of the provider's main site", ae(d2526, res(borders), provider("RCD02")), "", "A&E-1", "42D", "42D_AE_1_2", "12"},
	})
}

// Every published reason the engine gives names the commissioner it gives
// (the table's Comm column; none for the "unable to" rows), and a
// commissioner of the type the reason's step assigns (p.10-25): a sub-ICB at
// C-5, C-6 Yes and D; an NHS England hub or region at C-0b, C-2, C-6 No, E, F
// and J. (TestPublishedReasonTextAndCategory checks the text and category.)
func TestPublishedReasonsNameTheirCommissioner(t *testing.T) {
	a := sampleAssigner(t)
	subICB := map[string]bool{"C_5_1": true, "C_6_1": true, "C_6_2": true, "C_6_3": true, "D_1": true, "D_2": true, "D_3": true}
	seen := map[string]bool{}
	for _, tc := range append(append(allCases(), appendixHCases()...), populationOrderCases()...) {
		var r Result
		a.Decide(tc.act, nil, &r)
		row, ok := a.ref.ReasonByCode(r.ReasonCode)
		if !ok {
			continue
		}
		suffix := strings.TrimPrefix(r.ReasonCode, row.Commissioner+"_")
		seen[suffix] = true
		want := TypeNHSE
		switch {
		case row.Commissioner == "":
			want = TypeUnknown
		case subICB[suffix]:
			want = TypeSubICB
		}
		if r.Commissioner != row.Commissioner || r.CommissionerType != want {
			t.Errorf("%s: %s gives %q of type %q; the published row names %q, of type %q",
				tc.name, r.ReasonCode, r.Commissioner, r.CommissionerType, row.Commissioner, want)
		}
	}
	for _, s := range []string{"C_5_1", "C_6_1", "C_6_4", "C_2_1", "C_0b_1", "D_1", "E_1", "F_1", "J_1", "C_2_X"} {
		if !seen[s] {
			t.Errorf("no table case ends in a published %s reason", s)
		}
	}
}

// Choice 25: a specialised mental health line is a specialised line at C-0
// (p.38-41), and the flow chart assigns it a commissioner like any other;
// the reason table's MH_Delegated / MH_Non_Delegated rows, which name none,
// are not produced. Choice 26: a patient with OVERSEAS VISITOR CHARGING
// CATEGORY B (the Immigration Health Surcharge of Appendix E, p.59) is not
// ordinarily resident (B, p.29), so is never asked I; B-3 No (choice 4),
// B-4 Yes with an English GP (p.34).
func TestMentalHealthLinesAndSurchargePatients(t *testing.T) {
	runCases(t, []camCase{
		{"specialised MH green line, delegated", "C-0 Yes (specialised MH, p.38-42), C-0a No, C-5 Yes, C-6 Yes (p.47); choice 25",
			apc(d2526, gp("H85030"), svc("NCBPS22E")), "2025/26", "C-6", "36L", "36L_C_6_1", "25"},
		{"specialised MH line amber in 2024/25", "2024/25 amber: hub by GP practice (C-0b); choice 25",
			apc(d2425, gp("H85030"), svc("NCBPS22E")), "2024/25", "C-0b", "13R", "13R_C_0b_1", "21"},
		{"specialised MH red line", "C-0a Yes (red), C-2 (p.45): hub of the provider; choice 25",
			op(d2526, gp("B84019"), svc("NCBPS22B"), provider("RCD")), "", "C-2", "85J", "85J_C_2_1", "21"},
		{"Immigration Health Surcharge, infertility", "B No (p.29: category B), B-1 No, B-3 No, B-4 Yes (p.34): responsible sub-ICB; I is not asked (choice 26)",
			apc(d2526, ovc("B"), gp("H85030"), diag("N970", "")), "", "B-4", "36L", "36L_B_4_1", "12"},
	})
}

// Appendix F (p.61; the SQL tool's cam_health_justice_facilities.csv stands
// for its supporting table): "take the postcode value from the CDS field
// POSTCODE OF USUAL ADDRESS and look this up in Appendix F" (p.24). Every
// site with a postcode is found at it with its hub, whether or not it has a
// prison code (Oasis Restore, ME1 3ND, has none), and E (p.51-52) gives that
// hub with a published E_1 reason and category 71 (Appendix J).
func TestAppendixFSitesAndHubs(t *testing.T) {
	a := sampleAssigner(t)
	f, err := os.Open(filepath.Join("../../../reference/sample", refdata.JusticeFacilitiesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sites := 0
	for _, row := range rows[1:] {
		name, pc, hub := row[2], strings.ToUpper(strings.TrimSpace(row[3])), row[4]
		if pc == "" {
			continue // a site not yet open, with no address to match
		}
		sites++
		j, ok := a.ref.JusticeFacilityByPostcode(pc)
		if !ok || j.Hub != hub {
			t.Errorf("%s at %s: found %v with hub %q, want hub %s", name, pc, ok, j.Hub, hub)
			continue
		}
		act := op(d2526, gp("H85030"), res(&dmicv1.Residence{Country: refdata.CountryEngland, JusticeFacilityCode: "site", JusticeHub: j.Hub}))
		var r Result
		a.Decide(act, nil, &r)
		reason, published := a.ref.ReasonByCode(r.ReasonCode)
		if r.Step != "E" || r.Commissioner != hub || r.ReasonCode != hub+"_E_1" || !published || r.ServiceCategory != "71" || reason.ServiceCategory != "71" {
			t.Errorf("%s (hub %s): E gives %s %s (published %v) category %s", name, hub, r.Commissioner, r.ReasonCode, published, r.ServiceCategory)
		}
	}
	if sites < 140 {
		t.Errorf("only %d Appendix F sites with a postcode", sites)
	}
}

// An explanation never contradicts itself: where a step is asked again to
// find the commissioner its answer leads to (C-5 No, then the responsible
// sub-ICB; C-6 No, then the hub by GP practice; C-3 No, then the provider's
// hub), the second entry names that question, not the step's own again, so
// that "C-5: green service? No" is not followed by "C-5: green service? Yes".
func TestExplanationNeverAnswersAQuestionTwiceDifferently(t *testing.T) {
	a := sampleAssigner(t)
	cases := append(append(allCases(), appendixHCases()...), populationOrderCases()...)
	cases = append(cases,
		camCase{name: "C-3 No", act: apc(d2526, gp("W00199"), res(powys), svc("NCBPS01C"))},
		camCase{name: "C-6 No", act: apc(d2425, gp("H85030"), svc("NCBPS01C"))})
	for _, tc := range cases {
		var r Result
		a.Decide(tc.act, nil, &r)
		answers := map[string]string{}
		for _, d := range a.Explained(&r).GetTrail() {
			q := d.GetQuestion()
			if q == "" {
				q = Question(d.GetStep())
			}
			if prev, ok := answers[q]; ok && prev != d.GetAnswer() {
				t.Errorf("%s: %s %q answered %s and then %s\n%s", tc.name, d.GetStep(), q, prev, d.GetAnswer(), Explain(a.Explained(&r)))
			}
			answers[q] = d.GetAnswer()
		}
	}
}
