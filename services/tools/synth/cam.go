package synth

import (
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// CAM scenarios: activity made to take a given path through NHS England's
// Commissioner Assignment Method (the CAM 2025/26 flow chart and guidance,
// /work/shared/reference/docs), so that a normal run exercises every step.
// Each scenario says, worked out by hand from the guidance and the sample
// reference data (reference/sample), what commissioner assignment must make
// of it: the step that decides, the published (or dmic's own) reason code,
// the commissioner and the questions asked on the way. Nothing here runs the
// engine, so a test comparing the two catches an engine that strays from the
// guidance (and a scenario that does).
//
// The scenarios name real codes of the sample reference data, which every
// fuller reference folder also holds: GP practices H85030 (Sutton, 36L),
// B84019 (Calderdale, 02T), A91020 (Larkhill, an English DMS practice, 13Q),
// A91183 (Bielefeld, a BFPO DMS practice), ALD200 (Alderney, YAF), W00199
// (Brecon, Powys LHB 7A7); providers RVR (St Helier, SM5 1AA: host 36L, hub
// 13R), RCD (Harrogate, HG2 7SX: host 42D, hub 85J) and NVC (an independent
// provider, not in etr: no host); postcodes SM1 1AA (Sutton, 36L), HX1 1AA
// (Halifax, 02T), LD1 6SG (Powys, a Welsh border authority), LD7 1DY
// (Shropshire, M2L0M, in the border ICB QOC; delegated from 2024-04-01),
// LD8 2HH (Herefordshire, ICB QGH), TD1 2QB (Scottish Borders, board SB9),
// SM2 5PJ (HMP High Down, Appendix F site YDE39, H&J hub 97T; sub-ICB 92A);
// and pseudo postcodes ZZ99 4GZ (France, Appendix H table 1), ZZ99 6GZ
// (Australia, table 2), ZZ99 6CZ (a country with no agreement), ZZ99 2WZ
// (Northern Ireland, not specified), ZZ99 3VZ (no fixed abode).

// CAMExpectation is what commissioner assignment must make of a CAM
// scenario record.
type CAMExpectation struct {
	// Scenario says what the record exercises; Section the guidance it is
	// worked out from.
	Scenario, Section string
	// Version is the CAM version of the record's CAM date: "2024/25" or
	// "2025/26".
	Version string
	// Step, ReasonCode and Commissioner are the result: the step that
	// decides, the reason code, and the commissioner ("" for none).
	Step, ReasonCode, Commissioner string
	// Path is the flow chart's questions in the order asked, each followed
	// by + (Yes) or - (No), separated by spaces: "EXCL- A- B+ WB-1- ...". A
	// question asked twice running (its answer, then the input that settled
	// the commissioner) counts once, with its first answer.
	Path string
}

// DefaultCAMShare is the share of good provider activities that are CAM
// scenarios, beyond the one pass through every scenario a long enough run
// makes (see Config.CAMShare).
const DefaultCAMShare = 0.02

// camCoverFactor: a run of at least this many activities per scenario goes
// through every scenario at least once.
const camCoverFactor = 8

// Paths shared by many scenarios: an English resident registered with an
// English GP and living outside the border area reaches C-0 by WB-3; the
// English path for activity that is not specialised then asks D to J and
// ends at C-5.
const (
	pathEnglish    = "EXCL- A- B+ WB-1- WB-2- WB-3+"
	pathNotSpecial = " C-0- D- E- F- H- I- J- C-5-"
	pathGreenToC5  = " C-0+ C-0a- E- F- H- I- J- C-5+"
	pathDevolved   = "EXCL- A- B+ WB-1- WB-2- WB-3-"
)

// submitted stands for the record's own commissioner_code in an
// expectation: drug and device lines keep it.
const submitted = "(submitted)"

// camScenario is one scenario: the record's CAM inputs and the expected
// result.
type camScenario struct {
	name, section string
	ds            dmicv1.Dataset
	year          string // CAM version of the activity date: "2024/25" or "2025/26"
	provider      string // default RVR; the run must be given it (camBookFor)
	national      bool   // sent by the national exchange only (camBookFor)
	practice      string
	postcode      string
	admin         string // default 01
	charging      string // OVERSEAS VISITOR CHARGING CATEGORY, default A
	service       string // SERVICE CODE
	category      string // COMMISSIONED SERVICE CATEGORY CODE
	pod           string // point of delivery (a local flow's is required)
	localPH       string // local public health indicator
	tfc           string // treatment function, default 300
	diag, diag2   string // primary and secondary diagnoses (ICD-10)
	proc2         string // secondary procedures (OPCS-4)
	source        string // APC source of admission, default 19
	sex           byte   // '1', '2' or 0
	minAge, max   int    // default 18-90

	step, reason, comm, path string
}

const (
	apcDS = dmicv1.Dataset_DATASET_APC
	opDS  = dmicv1.Dataset_DATASET_OUTPATIENT
	ecDS  = dmicv1.Dataset_DATASET_EMERGENCY_CARE
	lfDS  = dmicv1.Dataset_DATASET_LOCAL_FLOW
	y2425 = "2024/25"
	y2526 = "2025/26"
)

// camBook is every scenario, in the order a run goes through them.
var camBook = []camScenario{
	// Drug and device lines are left to their contract lines (choice 1 of
	// docs/commissioner-assignment.md: the SQL tool v5.3 excludes POD
	// DRUG/DEVICE and service categories 31, 32, 41; the guidance is silent).
	{name: "high-cost drug line", section: "choice 1: service category 31 is outside CAM", ds: opDS, year: y2526,
		practice: "H85030", postcode: "SM1 1AA", category: "31",
		step: "EXCL", reason: "EXCL_1", comm: submitted, path: "EXCL+"},
	{name: "drugs local flow", section: "choice 1: point of delivery DRUG is outside CAM", ds: lfDS, year: y2526,
		practice: "H85030", postcode: "SM1 1AA", pod: "DRUG",
		step: "EXCL", reason: "EXCL_1", comm: submitted, path: "EXCL+"},

	// A (p.27): private patients and chargeable overseas visitors.
	{name: "private patient", section: "A (p.27): ADMINISTRATIVE CATEGORY 02", ds: apcDS, year: y2526,
		practice: "H85030", postcode: "SM1 1AA", admin: "02",
		step: "A", reason: "VPP00_A_1", comm: "VPP00", path: "EXCL- A+"},
	{name: "chargeable overseas visitor", section: "A (p.27): OVERSEAS VISITOR CHARGING CATEGORY D", ds: opDS, year: y2425,
		practice: "V81999", postcode: "ZZ99 6CZ", charging: "D",
		step: "A", reason: "VPP00_A_1", comm: "VPP00", path: "EXCL- A+"},

	// B to B-4 (p.27-34): not ordinarily resident.
	{name: "EEA resident, highly specialised", section: "B No (p.28), B-1 Yes, B-2 Yes: France is in Appendix H table 1 (p.31): hub of the provider", ds: apcDS, year: y2526,
		practice: "V81999", postcode: "ZZ99 4GZ", charging: "C", service: "NCBPS01A",
		step: "B-2", reason: "13R_B_2_1", comm: "13R", path: "EXCL- A- B- B-1+ B-2+"},
	{name: "non-EEA resident, highly specialised", section: "B-1 Yes, B-2 No (p.31: not an Appendix H country), B-3 No, B-4 No: host sub-ICB", ds: apcDS, year: y2425,
		practice: "V81999", postcode: "ZZ99 6CZ", charging: "E", service: "NCBPS01A",
		step: "B-4", reason: "36L_B_4_2", comm: "36L", path: "EXCL- A- B- B-1+ B-2- B-3- B-4-"},
	{name: "reciprocal agreement, not registered", section: "B-3 Yes (p.32); OSV guidance (p.25): not registered with an English GP, resident outside the UK: host sub-ICB", ds: opDS, year: y2526,
		practice: "V81999", postcode: "ZZ99 6GZ", charging: "C",
		step: "B-3", reason: "36L_B_3_2", comm: "36L", path: "EXCL- A- B- B-1- B-3+"},
	{name: "exempt visitor registered with an English GP", section: "B-3 No, B-4 Yes (p.34): responsible sub-ICB", ds: apcDS, year: y2425,
		practice: "B84019", postcode: "ZZ99 6CZ", charging: "E",
		step: "B-4", reason: "02T_B_4_1", comm: "02T", path: "EXCL- A- B- B-1- B-3- B-4+"},
	{name: "exempt visitor (immigration health surcharge), not registered", section: "B-4 No (p.34): host sub-ICB of the provider's main site (p.10)", ds: opDS, year: y2526,
		provider: "RCD", practice: "V81999", postcode: "ZZ99 6CZ", charging: "B",
		step: "B-4", reason: "42D_B_4_2", comm: "42D", path: "EXCL- A- B- B-1- B-3- B-4-"},
	{name: "BFPO armed forces practice", section: "B (p.28-29): a BFPO DMS practice means living overseas; B-4 (p.34): registered (A, not W00); p.32: a sub-ICB pays; 13Q is no sub-ICB, so the postcode (p.11)", ds: apcDS, year: y2526,
		practice: "A91183", postcode: "SM1 1AA",
		step: "B-4", reason: "36L_B_4_1", comm: "36L", path: "EXCL- A- B- B-1- B-3- B-4+"},
	{name: "Crown Dependency practice", section: "B (p.29): high level health geography YAF; B-4 No: not an English practice: host", ds: opDS, year: y2526,
		practice: "ALD200", postcode: "SM1 1AA",
		step: "B-4", reason: "36L_B_4_2", comm: "36L", path: "EXCL- A- B- B-1- B-3- B-4-"},

	// WB-1 to WB-3, C, C-1, WB-10, C-3 (p.35-45): the border and the
	// devolved administrations.
	{name: "Welsh GP, Powys resident", section: "WB-1 Yes (p.35), C No: resident in Wales, the LHB of the postcode (p.18-19)", ds: apcDS, year: y2526,
		practice: "W00199", postcode: "LD1 6SG",
		step: "C", reason: "7A7_C_1", comm: "7A7", path: "EXCL- A- B+ WB-1+ C-"},
	{name: "Welsh GP, Shropshire resident", section: "WB-1 Yes (p.35: ICB QOC), C No: English side of the border, the LHB of the GP practice (p.19)", ds: opDS, year: y2526,
		practice: "W00199", postcode: "LD7 1DY",
		step: "C", reason: "7A7_C_2", comm: "7A7", path: "EXCL- A- B+ WB-1+ C-"},
	{name: "Welsh GP, Powys resident, highly specialised", section: "C Yes, C-1 Yes (p.42): hub of the provider", ds: apcDS, year: y2526,
		practice: "W00199", postcode: "LD1 6SG", service: "NCBPS01A",
		step: "C-1", reason: "13R_C_1_1", comm: "13R", path: "EXCL- A- B+ WB-1+ C+ C-1+"},
	{name: "Welsh GP, Shropshire resident, specialised", section: "C-1 No, WB-10 Yes, C-3 No (p.45): not referred via RAS, NHS England hub (provider)", ds: opDS, year: y2526,
		practice: "W00199", postcode: "LD7 1DY", service: "NCBPS01C",
		step: "C-3", reason: "13R_C_3_2", comm: "13R", path: "EXCL- A- B+ WB-1+ C+ C-1- WB-10+ C-3-"},
	{name: "Scottish resident, specialised", section: "WB-3 No, C Yes, C-1 No, WB-10 No: NHS Scotland NSD SD002 (p.16)", ds: apcDS, year: y2526,
		practice: "V81999", postcode: "TD1 2QB", service: "NCBPS01C",
		step: "WB-10", reason: "SD002_WB_10_1", comm: "SD002", path: pathDevolved + " C+ C-1- WB-10-"},
	{name: "Welsh resident, specialised", section: "WB-3 No, C Yes, C-1 No, WB-10 No: WHSSC 7A5HC (p.19)", ds: opDS, year: y2425,
		practice: "V81999", postcode: "LD1 6SG", service: "NCBPS01C",
		step: "WB-10", reason: "7A5HC_WB_10_1", comm: "7A5HC", path: pathDevolved + " C+ C-1- WB-10-"},
	{name: "Scottish resident", section: "WB-3 No (p.37), C No: the Scottish Health Board of the postcode (p.17)", ds: opDS, year: y2526,
		practice: "V81999", postcode: "TD1 2QB",
		step: "C", reason: "SB9_C_1", comm: "SB9", path: pathDevolved + " C-"},
	{name: "Welsh resident, no GP", section: "WB-3 No (p.37), C No: the LHB of the postcode (p.18-19)", ds: apcDS, year: y2425,
		practice: "V81999", postcode: "LD1 6SG",
		step: "C", reason: "7A7_C_1", comm: "7A7", path: pathDevolved + " C-"},
	{name: "English GP, Herefordshire border resident", section: "WB-2 Yes (p.36: ICB QGH): English path; responsible sub-ICB by the GP practice (p.11)", ds: apcDS, year: y2526,
		practice: "H85030", postcode: "LD8 2HH",
		step: "C-5", reason: "36L_C_5_1", comm: "36L", path: "EXCL- A- B+ WB-1- WB-2+" + pathNotSpecial},
	{name: "Northern Ireland resident, address not given", section: "ZZ99 2WZ: the provider's main site, England (p.7, B p.30, WB-3 p.37); responsible sub-ICB: the host (p.11)", ds: opDS, year: y2526,
		practice: "V81999", postcode: "ZZ99 2WZ",
		step: "C-5", reason: "36L_C_5_1", comm: "36L", path: pathEnglish + pathNotSpecial},

	// C-0 to C-2 and C-5, C-6 (p.41-46): specialised services by
	// delegation status, both years.
	{name: "red service", section: "C-0 Yes, C-0a Yes (flow chart: red/blue), C-2 Yes (p.44): hub of the provider", ds: apcDS, year: y2526,
		practice: "H85030", postcode: "SM1 1AA", service: "NCBPS01A",
		step: "C-2", reason: "13R_C_2_1", comm: "13R", path: pathEnglish + " C-0+ C-0a+ C-2+"},
	{name: "blue service", section: "C-0a Yes (red/blue), C-2 Yes: hub of the provider (RCD: 42D, 85J)", ds: opDS, year: y2425,
		provider: "RCD", practice: "B84019", postcode: "HX1 1AA", service: "NCBPS01L_TOP",
		step: "C-2", reason: "85J_C_2_1", comm: "85J", path: pathEnglish + " C-0+ C-0a+ C-2+"},
	{name: "red service, provider with no NHS England contract", section: "C-2 No (p.44): N/A, no commissioner (C_2_X)", ds: apcDS, year: y2425,
		provider: independentProvider, national: true, practice: "H85030", postcode: "SM1 1AA", service: "NCBPS01A",
		step: "C-2", reason: "C_2_X", comm: "", path: pathEnglish + " C-0+ C-0a+ C-2-"},
	{name: "amber service 2024/25", section: "2024/25 amber (changes from 24/25, item 5): retained, hub of the GP practice (C-0b)", ds: apcDS, year: y2425,
		practice: "B84019", postcode: "HX1 1AA", service: "NCBPS01S",
		step: "C-0b", reason: "85J_C_0b_1", comm: "85J", path: pathEnglish + " C-0+ C-0a+ C-0b+"},
	{name: "green service, delegated 2025/26", section: "C-0a No, E-J No, C-5 Yes, C-6 Yes (p.46): every ICB delegated from April 2025", ds: apcDS, year: y2526,
		practice: "H85030", postcode: "SM1 1AA", service: "NCBPS01C",
		step: "C-6", reason: "36L_C_6_1", comm: "36L", path: pathEnglish + pathGreenToC5 + " C-6+"},
	{name: "green service, not delegated 2024/25", section: "C-6 No (p.46): 36L had no agreement in 2024/25: hub of the GP practice", ds: opDS, year: y2425,
		practice: "H85030", postcode: "SM1 1AA", service: "NCBPS01C",
		step: "C-6", reason: "13R_C_6_4", comm: "13R", path: pathEnglish + pathGreenToC5 + " C-6-"},
	{name: "green service, delegated 2024/25, by postcode", section: "C-6 Yes: M2L0M delegated from 2024-04-01; no GP, so the postcode (p.11)", ds: apcDS, year: y2425,
		practice: "V81999", postcode: "LD7 1DY", service: "NCBPS01C",
		step: "C-6", reason: "M2L0M_C_6_2", comm: "M2L0M", path: pathEnglish + pathGreenToC5 + " C-6+"},
	{name: "green service, no fixed abode", section: "ZZ99 3VZ: the provider's main site (p.7); C-6 Yes by the host (p.11)", ds: opDS, year: y2526,
		provider: "RCD", practice: "V81999", postcode: "ZZ99 3VZ", service: "NCBPS01C",
		step: "C-6", reason: "42D_C_6_3", comm: "42D", path: pathEnglish + pathGreenToC5 + " C-6+"},

	// D (p.48): secondary dental.
	{name: "oral surgery outpatient", section: "D (p.48): treatment function 144: responsible sub-ICB by the GP practice", ds: opDS, year: y2526,
		practice: "H85030", postcode: "SM1 1AA", tfc: "144",
		step: "D", reason: "36L_D_1", comm: "36L", path: pathEnglish + " C-0- D+"},
	{name: "paediatric maxillofacial surgery, no GP", section: "D (p.48): treatment function 217: responsible sub-ICB by the postcode", ds: apcDS, year: y2425,
		practice: "V81999", postcode: "HX1 1AA", tfc: "217", minAge: 2, max: 15,
		step: "D", reason: "02T_D_2", comm: "02T", path: pathEnglish + " C-0- D+"},

	// E (p.49-52): health and justice; A&E excluded.
	{name: "prisoner admitted from prison", section: "E (p.50-51): Appendix F postcode and source of admission 39: H&J hub", ds: apcDS, year: y2526,
		practice: "H85030", postcode: "SM2 5PJ", source: "39",
		step: "E", reason: "97T_E_1", comm: "97T", path: pathEnglish + " C-0- D- E+"},
	{name: "prisoner outpatient", section: "E (p.51): outpatients need only the Appendix F postcode", ds: opDS, year: y2425,
		practice: "V81998", postcode: "SM2 5PJ",
		step: "E", reason: "97T_E_1", comm: "97T", path: pathEnglish + " C-0- D- E+"},
	{name: "prisoner at A&E", section: "E (p.49): H&J does not commission A&E; A&E path; responsible sub-ICB by the postcode of an Appendix F site (p.11)", ds: ecDS, year: y2526,
		practice: "H85030", postcode: "SM2 5PJ",
		step: "J", reason: "92A_AE_1_1", comm: "92A", path: "EXCL- A&E-1+ J-"},
	{name: "prison postcode, admitted from home", section: "E No (p.51: APC needs source 39); responsible sub-ICB by the postcode of an Appendix F site (p.11)", ds: apcDS, year: y2526,
		practice: "H85030", postcode: "SM2 5PJ", source: "19",
		step: "C-5", reason: "92A_C_5_1", comm: "92A", path: pathEnglish + pathNotSpecial},

	// F and H (p.52-54): public health.
	{name: "breast screening", section: "F (p.52): section 7a service code: region of the GP practice (p.21-22)", ds: opDS, year: y2526,
		practice: "H85030", postcode: "SM1 1AA", service: "NCBPH24Y", sex: '2', minAge: 50, max: 70,
		step: "F", reason: "Y56_F_1", comm: "Y56", path: pathEnglish + " C-0- D- E- F+"},
	{name: "aortic aneurysm screening, no GP", section: "F (p.52): region of the postcode (p.21-22)", ds: opDS, year: y2425,
		practice: "V81999", postcode: "HX1 1AA", service: "NCBPH23Y", sex: '1', minAge: 65, max: 75,
		step: "F", reason: "Y63_F_3", comm: "Y63", path: pathEnglish + " C-0- D- E- F+"},
	{name: "local authority public health", section: "H (p.54): locally agreed rule: the local authority of residence (p.20-21)", ds: opDS, year: y2526,
		practice: "H85030", postcode: "SM1 1AA", localPH: "Y",
		step: "H", reason: "E09000029_H_1", comm: "E09000029", path: pathEnglish + " C-0- D- E- F- H+"},
	{name: "local authority public health, no fixed abode", section: "H (p.54); ZZ99 3VZ: the provider's main site is the residence (p.7): RCD in North Yorkshire", ds: opDS, year: y2526,
		provider: "RCD", practice: "V81999", postcode: "ZZ99 3VZ", localPH: "Y",
		step: "H", reason: "E06000065_H_1", comm: "E06000065", path: pathEnglish + " C-0- D- E- F- H+"},

	// I, I-1 (p.54-55): infertility; J (p.55-56): armed forces.
	{name: "infertility", section: "I (p.54): diagnosis N97; I-1 No: responsible sub-ICB", ds: apcDS, year: y2526,
		practice: "B84019", postcode: "HX1 1AA", diag: "N979", sex: '2', minAge: 25, max: 42,
		step: "I-1", reason: "02T_I_1_2", comm: "02T", path: pathEnglish + " C-0- D- E- F- H- I+ I-1-"},
	{name: "infertility procedure", section: "I (p.55): secondary procedure Q13.1; I-1 No: responsible sub-ICB", ds: opDS, year: y2425,
		practice: "H85030", postcode: "SM1 1AA", proc2: "Q131", sex: '2', minAge: 25, max: 42,
		step: "I-1", reason: "36L_I_1_2", comm: "36L", path: pathEnglish + " C-0- D- E- F- H- I+ I-1-"},
	{name: "infertility, armed forces", section: "I, I-1 Yes (Appendix E): registered with an English DMS practice: 13Q", ds: apcDS, year: y2526,
		practice: "A91020", postcode: "SM1 1AA", diag: "I10X", diag2: "Z311", sex: '1', minAge: 25, max: 42,
		step: "I-1", reason: "13Q_I_1_1", comm: "13Q", path: pathEnglish + " C-0- D- E- F- H- I+ I-1+"},
	{name: "armed forces practice", section: "J (p.55-56): commissioner 13Q, practice in England", ds: opDS, year: y2526,
		practice: "A91020", postcode: "SM1 1AA",
		step: "J", reason: "13Q_J_1", comm: "13Q", path: pathEnglish + " C-0- D- E- F- H- I- J+"},

	// The A&E path (flow chart, A&E-1 p.26).
	{name: "armed forces at A&E", section: "A&E-1 Yes, J Yes (flow chart)", ds: ecDS, year: y2425,
		practice: "A91020", postcode: "SM1 1AA",
		step: "J", reason: "13Q_J_1", comm: "13Q", path: "EXCL- A&E-1+ J+"},
	{name: "Scottish resident at A&E", section: "A&E-1 No (p.26): host sub-ICB", ds: ecDS, year: y2526,
		practice: "V81999", postcode: "TD1 2QB",
		step: "A&E-1", reason: "36L_AE_1_2", comm: "36L", path: "EXCL- A&E-1-"},
	{name: "English resident at A&E", section: "A&E-1 Yes, J No: responsible sub-ICB by the GP practice", ds: ecDS, year: y2526,
		practice: "B84019", postcode: "HX1 1AA",
		step: "J", reason: "02T_AE_1_1", comm: "02T", path: "EXCL- A&E-1+ J-"},
}

// independentProvider is an independent-sector provider, which no reference
// file knows (it has no host, so C-2 answers No), and which the run is not
// given: no door of the run takes its submissions, so its scenario comes as
// a national-only record, from the national exchange (which sends every
// provider's activity).
const independentProvider = "NVC"

// camBookFor is the scenarios of a run: of its datasets and its providers
// (a test may submit one provider's file), and the national-only one when
// the run makes national-only activities.
func camBookFor(c Config) []camScenario {
	on := map[dmicv1.Dataset]bool{}
	for _, d := range c.Datasets {
		on[d] = true
	}
	given := map[string]bool{}
	for _, p := range c.Providers {
		given[p] = true
	}
	var out []camScenario
	for _, s := range camBook {
		p := s.provider
		if p == "" {
			p = defaultCAMProvider
		}
		if on[s.ds] && (s.national && c.NationalOnlyShare > 0 || !s.national && given[p]) {
			out = append(out, s)
		}
	}
	return out
}

// defaultCAMProvider is the provider of a scenario that names none: St
// Helier (Epsom and St Helier), whose main site SM5 1AA is in Sutton (36L).
const defaultCAMProvider = "RVR"

// fyDays bounds the days of a CAM version's year, as days since 1970.
func fyDays(year string) (first, last int) {
	if year == y2425 {
		return daysFromCivil(2024, 4, 1), daysFromCivil(2025, 3, 31)
	}
	return daysFromCivil(2025, 4, 1), daysFromCivil(2026, 3, 31)
}

// camDay draws the scenario's activity day: in its year, and in the run's
// window when the two meet. A few days into the year, so that an admitted
// spell's start stays in it too.
func (g *generator) camDay(year string) int {
	lo, hi := fyDays(year)
	lo += 7
	if wlo, whi := g.startDay, g.startDay+g.span-1; wlo <= hi && whi >= lo {
		lo, hi = max(lo, wlo), min(hi, whi)
	}
	return lo + g.rng.IntN(hi-lo+1)
}

// camActivity makes the record of scenario s.
func (g *generator) camActivity(s *camScenario) activity {
	a := activity{ds: s.ds, lastInSpell: true}
	a.provider = s.provider
	if a.provider == "" {
		a.provider = defaultCAMProvider
	}
	a.day = g.camDay(s.year)
	g.identify(&a)

	minAge, maxAge := s.minAge, s.max
	if maxAge == 0 {
		minAge, maxAge = 18, 90
	}
	specific := &g.scratch
	specific.fields = specific.fields[:0]
	switch s.ds {
	case dmicv1.Dataset_DATASET_APC:
		g.camAPC(&a, s, specific, minAge, maxAge)
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		g.camOutpatient(&a, s, specific, minAge, maxAge)
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		a.pat = g.newPatient(a.day, minAge, maxAge, s.sex)
		g.emergencyCareFields(&a, specific)
	default:
		a.pat = g.newPatient(a.day, minAge, maxAge, s.sex)
		g.camLocalFlow(&a, s, specific)
	}
	a.pat.postcode, a.pat.practice = s.postcode, s.practice

	admin := s.admin
	if admin == "" {
		admin = "01"
	}
	charging := s.charging
	if charging == "" {
		charging = "A"
	}
	commissioner := g.commissioner()
	if admin == "02" || charging == "D" || charging == "F" {
		commissioner = privateCommissioner
	}
	cam := record{fields: g.camBuf[:0]}
	cam.add("overseas_visitor_charging_category", charging)
	cam.add("service_code", s.service)
	cam.add("commissioned_service_category_code", s.category)
	cam.add("local_public_health_indicator", s.localPH)
	if s.ds != dmicv1.Dataset_DATASET_LOCAL_FLOW {
		cam.add("point_of_delivery_code", s.pod)
	}
	g.camBuf = cam.fields
	a.rec = g.assemble(&a, a.provider+"01", commissioner, admin, legacyStatus[charging], cam.fields, specific)
	return a
}

// legacyStatus is the OVERSEAS VISITOR STATUS CLASSIFICATION that goes with
// a charging category, which providers send beside it: 8 not an overseas
// visitor, 1 exempt under a reciprocal agreement, 2 exempt otherwise, 4
// liable to all fees.
var legacyStatus = map[string]string{"A": "8", "B": "2", "C": "1", "D": "4", "E": "2", "F": "4"}

func (g *generator) camAPC(a *activity, s *camScenario, r *record, minAge, maxAge int) {
	los := 1 + g.rng.IntN(4)
	start := a.day - los
	a.pat = g.newPatient(start, minAge, maxAge, s.sex)
	tfc, diag, source := s.tfc, s.diag, s.source
	if tfc == "" {
		tfc = "300"
	}
	if diag == "" {
		diag = "J189"
	}
	if source == "" {
		source = "19"
	}
	r.add("cds_type", "130")
	r.add("hospital_provider_spell_number", g.digits(10))
	r.add("episode_number", "01")
	r.add("start_date_hospital_provider_spell", dateString(start))
	r.add("admission_method_code", "21")
	r.add("source_of_admission_code", source)
	r.add("start_date_episode", dateString(start))
	r.add("end_date_episode", dateString(a.day))
	r.add("discharge_date_hospital_provider_spell", dateString(a.day))
	r.add("discharge_method_code", "1")
	r.add("discharge_destination_code", "19")
	r.add("patient_classification_code", "1")
	r.add("treatment_function_code", tfc)
	r.add("primary_diagnosis_icd", diag)
	r.add("secondary_diagnoses_icd", s.diag2)
	r.add("secondary_procedures_opcs", s.proc2)
	r.add("hrg_code", "DZ11R")
}

func (g *generator) camOutpatient(a *activity, s *camScenario, r *record, minAge, maxAge int) {
	a.pat = g.newPatient(a.day, minAge, maxAge, s.sex)
	tfc := s.tfc
	if tfc == "" {
		tfc = "300"
	}
	r.add("attendance_identifier", "OP"+g.digits(10))
	r.add("appointment_date", dateString(a.day))
	r.add("attended_or_did_not_attend_code", "5")
	r.add("first_attendance_code", "1")
	r.add("treatment_function_code", tfc)
	r.add("priority_type_code", "1")
	r.add("primary_diagnosis_icd", s.diag)
	r.add("secondary_diagnoses_icd", s.diag2)
	r.add("secondary_procedures_opcs", s.proc2)
	r.add("hrg_code", "WF01B")
}

func (g *generator) camLocalFlow(a *activity, s *camScenario, r *record) {
	r.add("activity_date", dateString(a.day))
	r.add("point_of_delivery_code", s.pod)
	r.add("treatment_function_code", s.tfc)
	r.addNum("price_pence", 5000+g.rng.Int64N(245001))
	r.addNum("activity_count", 1)
}

// expectation is what the scenario's record must be assigned; commissioner
// is the record's submitted commissioner_code.
func (s *camScenario) expectation(commissioner string) *CAMExpectation {
	comm := s.comm
	if comm == submitted {
		comm = commissioner
	}
	return &CAMExpectation{Scenario: s.name, Section: s.section, Version: s.year,
		Step: s.step, ReasonCode: s.reason, Commissioner: comm, Path: s.path}
}

// camRate is the share of activities that are CAM scenarios: the
// configured share, raised in a run long enough (camCoverFactor activities
// per scenario) to go through every scenario at least once, with a margin
// for the scenario slots that fall on bad records and pass to the next.
func camRate(c Config, book int) float64 {
	// c has its defaults: a share of 0 here was asked for as none.
	if c.CAMShare <= 0 || book == 0 {
		return 0
	}
	rate := c.CAMShare
	if c.Records >= camCoverFactor*book {
		rate = max(rate, 1.1*float64(book)/float64(c.Records))
	}
	return rate
}
