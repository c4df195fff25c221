package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/nhs"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
	"github.com/dmic-nhs/dmic/services/tools/leakguard"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

// The grader's view of commissioner assignment: records written by hand
// from single statements of "Commissioner Assignment Method Flow Chart
// 2025/26: Accompanying Guidance and Reference Tables" (v1.1; page numbers
// are the page footers of /work/shared/reference/docs/cam-guidance-2025-26.txt),
// submitted to ingest over HTTPS with the provider's certificate as a
// provider would, and read back from activity_current as an analyst would.
// The expected results are worked out from the guidance and the sample
// reference tables (reference/sample), never by running the engine:
//
//   - provider RVR (St Helier): etr postcode SM5 1AA, ONSPD sub-ICB
//     E38000245 = 36L, so host 36L; cam_subicb_to_direct_commissioner: 36L
//     is in ICB QWE, hub 13R, region Y56, not delegated 2024-04-01..
//     2025-03-31, delegated from 2025-04-01;
//   - practices: H85030 (Sutton, commissioner 36L), B84019 (Calderdale,
//     02T; 02T's hub 85J, region Y63), B84002 (02T, closed 2021-01-31),
//     A91020 (Larkhill, an English DMS practice, 13Q), A91183 (Bielefeld,
//     a BFPO DMS practice), W00199 (Brecon, grouping W00, Powys LHB 7A7);
//   - postcodes: SM1 1AA (Sutton, 36L, LA E09000029), HX1 1AA (Halifax,
//     02T), SM2 5PJ (HMP High Down, Appendix F site; 92A, H&J hub 97T),
//     LD1 6SG (Powys, W06000023), LD7 1DY (Shropshire, border ICB QOC),
//     TD1 2QB (Scottish Borders, health board SB9); pseudo postcodes
//     ZZ99 4GZ (France, Appendix H table 1), ZZ99 6GZ (Australia, Appendix
//     H table 2), ZZ99 6CZ (no agreement), ZZ99 3VZ (no fixed abode),
//     ZZ99 3WZ (address not known);
//   - service codes of cam_service_codes_2024-25_2025-26.csv: NCBPS01C
//     (GREEN both years, not highly specialised), NCBPS01A (RED, highly
//     specialised), NCBPS01L_TOP (BLUE), NCBPS01S (AMBER in 24/25, GREEN in
//     25/26), NCBPH01F (Public Health flag);
//   - reason codes and service categories of
//     cam_commissioner_assignment_reason.csv.

// camProvider is the provider whose certificate submits every case.
const camProvider = "RVR"

// camCase is one record and what an analyst must then see.
type camCase struct {
	uid, why string // CDS unique identifier; the guidance statement it tests
	ds       string // apc, outpatient, emergency_care, local_flow
	day      string // the CAM date the case means (discharge, appointment, arrival)
	set      map[string]string
	drop     []string // fields left out of the record altogether
	// Expected in activity_current.
	version, step, reason, comm, category string
	// method is the assignment_method label, checked where not "".
	method string
	// refuse is the rule validation must refuse the record by (then
	// nothing is expected in activity_current).
	refuse string
	// dataset is the record's dataset field as written, when not ds.
	dataset string
	// notFlagged is a rule the record must not be reported by.
	notFlagged string
	// nulls are sent as JSON null, numbers as JSON numbers (NDJSON only).
	nulls, numbers []string
}

// jsonValues is the record as its NDJSON line writes it: strings, but for
// the case's nulls and numbers.
func (c camCase) jsonValues(r map[string]string) map[string]any {
	out := make(map[string]any, len(r))
	for k, v := range r {
		out[k] = v
	}
	for _, k := range c.nulls {
		out[k] = nil
	}
	for _, k := range c.numbers {
		out[k] = json.Number(r[k])
	}
	return out
}

// camGraderCases: each from one statement of the guidance (page in why).
func camGraderCases() []camCase {
	const (
		d2526 = "2025-06-15"
		d2425 = "2024-06-15"
	)
	return []camCase{
		// p.10-11: the responsible sub-ICB is the sub-ICB of the patient's
		// registered GP; C-5 (p.46) No gives it. No service code: C-0 No.
		{uid: "G01", why: "p.46 C-5 No, responsible sub-ICB by GP practice", ds: "apc", day: d2526,
			version: "2025/26", step: "C-5", reason: "36L_C_5_1", comm: "36L", category: "12", method: "Sub-ICB (Practice Mapped)"},
		// p.27 A: private patients (administrative category 02) → VPP00.
		{uid: "G02", why: "p.27 A, administrative category 02", ds: "apc", day: d2526,
			set:     map[string]string{"administrative_category_code": "02"},
			version: "2025/26", step: "A", reason: "VPP00_A_1", comm: "VPP00"},
		// p.27 A: a chargeable overseas visitor (charging category D).
		{uid: "G03", why: "p.27 A, charging category D", ds: "outpatient", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": "D", "postcode_of_usual_address": "ZZ99 6CZ"},
			version: "2025/26", step: "A", reason: "VPP00_A_1", comm: "VPP00"},
		// p.31 B-1, B-2: exempt overseas visitor, highly specialised
		// service, EEA resident (France, Appendix H table 1) → the hub of
		// the provider (host 36L → 13R).
		{uid: "G04", why: "p.31 B-2 Yes, Appendix H pseudo postcode", ds: "apc", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": "E", "postcode_of_usual_address": "ZZ99 4GZ", "service_code": "NCBPS01A", "general_medical_practice_code": "V81997"},
			version: "2025/26", step: "B-2", reason: "13R_B_2_1", comm: "13R"},
		// p.32 B-3: reciprocal agreement (category C) with an English GP:
		// the responsible sub-ICB.
		{uid: "G05", why: "p.32 B-3 Yes, English GP", ds: "outpatient", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": "C", "postcode_of_usual_address": "ZZ99 6GZ"},
			version: "2025/26", step: "B-3", reason: "36L_B_3_1", comm: "36L"},
		// p.34 B-4: no agreement, no GP: the host sub-ICB.
		{uid: "G06", why: "p.34 B-4 No, host", ds: "apc", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": "E", "postcode_of_usual_address": "ZZ99 6CZ", "general_medical_practice_code": "V81997"},
			version: "2025/26", step: "B-4", reason: "36L_B_4_2", comm: "36L"},
		// p.34 B-4: registered with an English GP (B84019, 02T): the
		// responsible sub-ICB by the practice.
		{uid: "G07", why: "p.34 B-4 Yes, English GP", ds: "apc", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": "E", "postcode_of_usual_address": "ZZ99 6CZ", "general_medical_practice_code": "B84019"},
			version: "2025/26", step: "B-4", reason: "02T_B_4_1", comm: "02T"},
		// p.9: a blank value answers No: a charging category sent empty
		// takes B No, as one left out does (G09), then B-4 with an English GP.
		{uid: "G08", why: "p.9 blank charging category answers B No", ds: "apc", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": ""},
			version: "2025/26", step: "B-4", reason: "36L_B_4_1", comm: "36L"},
		{uid: "G09", why: "p.9 missing charging category answers B No", ds: "apc", day: d2526,
			drop:    []string{"overseas_visitor_charging_category"},
			version: "2025/26", step: "B-4", reason: "36L_B_4_1", comm: "36L"},
		// p.17-19, C: a Welsh resident (Powys) with a Welsh border GP:
		// WB-1 Yes, C No: the LHB of the residence.
		{uid: "G10", why: "p.35 WB-1 Yes, p.38 C No, Welsh resident: LHB", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "LD1 6SG", "general_medical_practice_code": "W00199"},
			version: "2025/26", step: "C", reason: "7A7_C_1", comm: "7A7"},
		// p.19: an English resident of the border area (Shropshire) with a
		// Welsh border GP: the LHB of the GP practice.
		{uid: "G11", why: "p.19 English side of the border, Welsh GP: the practice's LHB", ds: "outpatient", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "LD7 1DY", "general_medical_practice_code": "W00199"},
			version: "2025/26", step: "C", reason: "7A7_C_2", comm: "7A7"},
		// p.37 WB-3 No, p.38 C No: a Scottish resident: the health board
		// of the council area. No practice field at all.
		{uid: "G12", why: "p.37 WB-3 No, C No: Scottish health board", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "TD1 2QB"},
			drop:    []string{"general_medical_practice_code"},
			version: "2025/26", step: "C", reason: "SB9_C_1", comm: "SB9"},
		// p.44 WB-10: a Scottish resident, specialised but not highly
		// specialised: NHS Scotland NSD.
		{uid: "G13", why: "p.44 WB-10 No: NSD Scotland", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "TD1 2QB", "service_code": "NCBPS01C"},
			drop:    []string{"general_medical_practice_code"},
			version: "2025/26", step: "WB-10", reason: "SD002_WB_10_1", comm: "SD002"},
		// p.42 C-1: a Scottish resident, highly specialised: the hub of the
		// provider.
		{uid: "G14", why: "p.42 C-1 Yes: hub of the provider", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "TD1 2QB", "service_code": "NCBPS01A"},
			drop:    []string{"general_medical_practice_code"},
			version: "2025/26", step: "C-1", reason: "13R_C_1_1", comm: "13R"},
		// p.46-47 C-5, C-6: a green service, the practice's sub-ICB
		// delegated in 2025/26.
		{uid: "G15", why: "p.47 C-6 Yes, green, delegated", ds: "apc", day: d2526,
			set:     map[string]string{"service_code": "NCBPS01C"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L", category: "25", method: "Sub-ICB (Delegated Spec Comm)"},
		// p.47 C-6 No: the same in 2024/25, 36L not delegated: its hub.
		{uid: "G16", why: "p.47 C-6 No, 2024/25: hub by GP practice", ds: "apc", day: d2425,
			set:     map[string]string{"service_code": "NCBPS01C"},
			version: "2024/25", step: "C-6", reason: "13R_C_6_4", comm: "13R", category: "21"},
		// p.45 C-2: a blue service: the hub of the provider's host sub-ICB.
		{uid: "G17", why: "p.45 C-2, BLUE", ds: "outpatient", day: d2526,
			set:     map[string]string{"service_code": "NCBPS01L_TOP", "general_medical_practice_code": "B84019", "postcode_of_usual_address": "HX1 1AA"},
			version: "2025/26", step: "C-2", reason: "13R_C_2_1", comm: "13R", category: "21"},
		// p.45 C-2: a red service, English resident.
		{uid: "G18", why: "p.45 C-2, RED", ds: "apc", day: d2526,
			set:     map[string]string{"service_code": "NCBPS01A"},
			version: "2025/26", step: "C-2", reason: "13R_C_2_1", comm: "13R", category: "21"},
		// 2024/25 guidance's amber services (2025/26 "changes from 24/25"):
		// C-0b, the hub of the GP practice.
		{uid: "G19", why: "C-0b, AMBER in 2024/25: hub of the practice", ds: "apc", day: d2425,
			set:     map[string]string{"service_code": "NCBPS01S"},
			version: "2024/25", step: "C-0b", reason: "13R_C_0b_1", comm: "13R", category: "21"},
		{uid: "G20", why: "no amber in 2025/26: NCBPS01S GREEN, C-6", ds: "apc", day: d2526,
			set:     map[string]string{"service_code": "NCBPS01S"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L", category: "25"},
		// p.48 D: secondary dental TFC 144: the responsible sub-ICB.
		{uid: "G21", why: "p.48 D Yes, TFC 144, by practice", ds: "outpatient", day: d2526,
			set:     map[string]string{"treatment_function_code": "144"},
			version: "2025/26", step: "D", reason: "36L_D_1", comm: "36L", category: "55"},
		// p.10-11: V81999 (GP not known) uses the postcode: HX1 1AA → 02T.
		{uid: "G22", why: "p.48 D, p.11 V81999: by residence", ds: "outpatient", day: d2526,
			set:     map[string]string{"treatment_function_code": "145", "general_medical_practice_code": "V81999", "postcode_of_usual_address": "HX1 1AA"},
			version: "2025/26", step: "D", reason: "02T_D_2", comm: "02T", category: "55"},
		// p.49-52 E: a prisoner (Appendix F site) admitted from a prison
		// (source of admission 39): the site's health and justice hub.
		{uid: "G23", why: "p.51 E Yes, APC, Appendix F site and source 39", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "SM2 5PJ", "source_of_admission_code": "39"},
			version: "2025/26", step: "E", reason: "97T_E_1", comm: "97T", category: "71"},
		// p.52 E: outpatients need only the Appendix F postcode.
		{uid: "G24", why: "p.52 E Yes, outpatient at an Appendix F site", ds: "outpatient", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "SM2 5PJ"},
			version: "2025/26", step: "E", reason: "97T_E_1", comm: "97T", category: "71"},
		// p.52-53 F: a section 7a public health service: the region of the
		// GP practice's sub-ICB (36L → Y56).
		{uid: "G25", why: "p.52 F Yes, section 7a: region by practice", ds: "outpatient", day: d2526,
			set:     map[string]string{"service_code": "NCBPH01F"},
			version: "2025/26", step: "F", reason: "Y56_F_1", comm: "Y56", category: "81"},
		// p.54 I: infertility (N97.9) with a civilian practice: I-1 No, the
		// responsible sub-ICB.
		{uid: "G26", why: "p.54-55 I Yes, I-1 No", ds: "outpatient", day: d2526,
			set:     map[string]string{"primary_diagnosis_icd": "N979", "person_gender_code": "2"},
			version: "2025/26", step: "I-1", reason: "36L_I_1_2", comm: "36L"},
		// p.55 I-1: infertility, registered with a DMS practice: 13Q.
		{uid: "G27", why: "p.55 I-1 Yes, DMS practice", ds: "outpatient", day: d2526,
			set:     map[string]string{"primary_diagnosis_icd": "N979", "person_gender_code": "2", "general_medical_practice_code": "A91020"},
			version: "2025/26", step: "I-1", reason: "13Q_I_1_1", comm: "13Q"},
		// p.56 J: an armed forces (13Q) practice: 13Q.
		{uid: "G28", why: "p.56 J Yes", ds: "outpatient", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "A91020"},
			version: "2025/26", step: "J", reason: "13Q_J_1", comm: "13Q", category: "61"},
		// p.26 A&E-1 Yes, then J (p.56) No: the responsible sub-ICB. J is
		// the question that decides (the A&E path's last box), with dmic's
		// reason AE_1_1 (the published table has no A&E codes).
		{uid: "G29", why: "p.26 A&E-1 Yes, J No", ds: "emergency_care", day: d2526,
			version: "2025/26", step: "J", reason: "36L_AE_1_1", comm: "36L"},
		// p.26 A&E-1 No: resident in Scotland: the host sub-ICB.
		{uid: "G30", why: "p.26 A&E-1 No, Scottish resident: host", ds: "emergency_care", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "TD1 2QB"},
			version: "2025/26", step: "A&E-1", reason: "36L_AE_1_2", comm: "36L"},
		// p.7: ZZ99 3WZ (address not known) defaults to England: A&E-1 Yes.
		{uid: "G31", why: "p.7 ZZ99 3WZ defaults to England", ds: "emergency_care", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "ZZ99 3WZ", "general_medical_practice_code": "B84019"},
			version: "2025/26", step: "J", reason: "02T_AE_1_1", comm: "02T"},
		// p.10-11: no GP (V81997) and no fixed abode (ZZ99 3VZ): the postcode
		// method falls back to the host.
		{uid: "G32", why: "p.7, p.11 no GP, ZZ99 3VZ: host", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "V81997", "postcode_of_usual_address": "ZZ99 3VZ"},
			version: "2025/26", step: "C-5", reason: "36L_C_5_1", comm: "36L", method: "Sub-ICB (Host Mapped)"},
		// p.11: no GP, a real postcode: the sub-ICB of residence.
		{uid: "G33", why: "p.11 no GP: sub-ICB of residence", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "V81997", "postcode_of_usual_address": "HX1 1AA"},
			version: "2025/26", step: "C-5", reason: "02T_C_5_1", comm: "02T", method: "Sub-ICB (Postcode Mapped)"},
		// p.6: APC by DISCHARGE DATE: admitted 28 March, discharged 31 March
		// 2025 is 2024/25 (36L not delegated); discharged 1 April is 2025/26.
		{uid: "G34", why: "p.6 APC discharged 2025-03-31: 2024/25", ds: "apc", day: "2025-03-31",
			set:     map[string]string{"service_code": "NCBPS01C", "start_date_hospital_provider_spell": "2025-03-28", "start_date_episode": "2025-03-28"},
			version: "2024/25", step: "C-6", reason: "13R_C_6_4", comm: "13R", category: "21"},
		{uid: "G35", why: "p.6 APC discharged 2025-04-01: 2025/26", ds: "apc", day: "2025-04-01",
			set:     map[string]string{"service_code": "NCBPS01C", "start_date_hospital_provider_spell": "2025-03-28", "start_date_episode": "2025-03-28"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L", category: "25"},
		// p.6: outpatients by APPOINTMENT DATE.
		{uid: "G36", why: "p.6 outpatient 2025-03-31: 2024/25", ds: "outpatient", day: "2025-03-31",
			set:     map[string]string{"service_code": "NCBPS01C"},
			version: "2024/25", step: "C-6", reason: "13R_C_6_4", comm: "13R"},
		{uid: "G37", why: "p.6 outpatient 2025-04-01: 2025/26", ds: "outpatient", day: "2025-04-01",
			set:     map[string]string{"service_code": "NCBPS01C"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L"},
		// p.6: emergency care by ARRIVAL DATE.
		{uid: "G38", why: "p.6 emergency care arrival 2025-03-31: 2024/25", ds: "emergency_care", day: "2025-03-31",
			version: "2024/25", step: "J", reason: "36L_AE_1_1", comm: "36L"},
		{uid: "G39", why: "p.6 emergency care arrival 2025-04-01: 2025/26", ds: "emergency_care", day: "2025-04-01",
			version: "2025/26", step: "J", reason: "36L_AE_1_1", comm: "36L"},
		// p.6: an unfinished episode (CDS 190) by START DATE (HOSPITAL
		// PROVIDER SPELL): started 2025-03-20, still in hospital, so 2024/25.
		{uid: "G40", why: "p.6 CDS 190 by spell start", ds: "apc", day: "2025-03-20",
			set: map[string]string{"cds_type": "190", "service_code": "NCBPS01C", "start_date_hospital_provider_spell": "2025-03-20",
				"start_date_episode": "2025-03-20", "cds_applicable_date_time": "2025-04-02T09:00:00Z"},
			drop:    []string{"end_date_episode", "discharge_date_hospital_provider_spell", "discharge_method_code", "discharge_destination_code"},
			version: "2024/25", step: "C-6", reason: "13R_C_6_4", comm: "13R"},
		// Spelling of the same inputs: a postcode in lower case without its
		// space, a practice code in lower case, values padded with spaces, a
		// service code in lower case. Each must be G33, G15 or G01 again.
		{uid: "G41", why: "G33 with postcode hx11aa", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "V81997", "postcode_of_usual_address": "hx11aa"},
			version: "2025/26", step: "C-5", reason: "02T_C_5_1", comm: "02T", method: "Sub-ICB (Postcode Mapped)"},
		{uid: "G42", why: "G33 with postcode HX11AA", ds: "outpatient", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "V81997", "postcode_of_usual_address": "HX11AA"},
			version: "2025/26", step: "C-5", reason: "02T_C_5_1", comm: "02T", method: "Sub-ICB (Postcode Mapped)"},
		{uid: "G43", why: "G01 with practice b84019 (02T)", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "b84019"},
			version: "2025/26", step: "C-5", reason: "02T_C_5_1", comm: "02T", method: "Sub-ICB (Practice Mapped)"},
		{uid: "G44", why: "G15 padded with spaces", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "  H85030 ", "postcode_of_usual_address": " SM1 1AA  ", "service_code": " NCBPS01C "},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L", category: "25"},
		{uid: "G45", why: "G15 with service code ncbps01c", ds: "apc", day: d2526,
			set:     map[string]string{"service_code": "ncbps01c"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L", category: "25"},
		{uid: "G46", why: "G04 with pseudo postcode zz994gz", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "zz994gz", "overseas_visitor_charging_category": "E", "service_code": "NCBPS01A", "general_medical_practice_code": "V81997"},
			version: "2025/26", step: "B-2", reason: "13R_B_2_1", comm: "13R"},
		// A charging category in lower case is not a code of the Data
		// Dictionary's list: validation refuses it, by name (CODE-030 is
		// case-exact by design, docs/specifications.md "code_list"), rather
		// than CAM reading it as No at A and B (p.9).
		{uid: "G48", why: "charging category e: refused, not read as No", ds: "apc", day: d2526,
			set:    map[string]string{"overseas_visitor_charging_category": "e"},
			refuse: "CODE-030"},
		// p.11: a practice not open (status A or P) on the assignment date
		// has no match: revert to the postcode method. B84002 (02T) closed
		// on 2021-01-31; the patient lives in Sutton (36L).
		{uid: "G49", why: "p.11 closed practice: postcode method", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "B84002"},
			version: "2025/26", step: "C-5", reason: "36L_C_5_1", comm: "36L", method: "Sub-ICB (Postcode Mapped)"},
		// p.11: the health and justice population (an Appendix F postcode)
		// takes the postcode method even with a GP: E No (source of
		// admission 19, p.51), then C-5 by the prison's sub-ICB, 92A.
		{uid: "G50", why: "p.11 Appendix F postcode: postcode method whatever the GP", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "SM2 5PJ"},
			version: "2025/26", step: "C-5", reason: "92A_C_5_1", comm: "92A", method: "Sub-ICB (Postcode Mapped)"},
		// p.11: a practice code left blank is the postcode method.
		{uid: "G51", why: "p.11 blank practice code: postcode method", ds: "outpatient", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "", "postcode_of_usual_address": "HX1 1AA"},
			version: "2025/26", step: "C-5", reason: "02T_C_5_1", comm: "02T", method: "Sub-ICB (Postcode Mapped)"},
		// p.11: G9999981 (no registered GP) has no match in epraccur:
		// postcode method.
		{uid: "G52", why: "p.11 G9999981: postcode method", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "G9999981", "postcode_of_usual_address": "HX1 1AA"},
			version: "2025/26", step: "C-5", reason: "02T_C_5_1", comm: "02T", method: "Sub-ICB (Postcode Mapped)"},
		// p.7, p.11: ZZ99 2WZ (Northern Ireland, not specified) defaults to
		// England at the provider's main site; the practice decides.
		{uid: "G53", why: "p.7 ZZ99 2WZ: England, practice decides", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "ZZ99 2WZ"},
			version: "2025/26", step: "C-5", reason: "36L_C_5_1", comm: "36L", method: "Sub-ICB (Practice Mapped)"},
		// p.6: an unfinished episode is dated by the SPELL's start, not the
		// episode's: a second episode started 2025-04-05 of a spell that
		// began 2025-03-20 is 2024/25.
		{uid: "G54", why: "p.6 CDS 190: spell start, not episode start", ds: "apc", day: "2025-03-20",
			set: map[string]string{"cds_type": "190", "episode_number": "02", "service_code": "NCBPS01C", "start_date_hospital_provider_spell": "2025-03-20",
				"start_date_episode": "2025-04-05", "cds_applicable_date_time": "2025-04-08T09:00:00Z"},
			drop:    []string{"end_date_episode", "discharge_date_hospital_provider_spell", "discharge_method_code", "discharge_destination_code"},
			version: "2024/25", step: "C-6", reason: "13R_C_6_4", comm: "13R"},
		// p.6: a finished episode is dated by the SPELL's discharge: an
		// episode that ended 2025-03-31 in a spell discharged 2025-04-02 is
		// 2025/26.
		{uid: "G55", why: "p.6 CDS 130: spell discharge, not episode end", ds: "apc", day: "2025-04-02",
			set: map[string]string{"service_code": "NCBPS01C", "start_date_hospital_provider_spell": "2025-03-25",
				"start_date_episode": "2025-03-25", "end_date_episode": "2025-03-31"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L", category: "25"},
		// p.6, CDS 120 (birth episode): also by discharge date.
		{uid: "G56", why: "p.6 CDS 120 by discharge date", ds: "apc", day: "2025-04-01",
			set:     map[string]string{"cds_type": "120", "start_date_hospital_provider_spell": "2025-03-31", "start_date_episode": "2025-03-31", "person_birth_date": "2025-03-31", "service_code": "NCBPS01C"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L"},
		// p.26 A&E-1: a Welsh resident is not resident in England: host.
		{uid: "G57", why: "p.26 A&E-1 No, Welsh resident: host", ds: "emergency_care", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "LD1 6SG", "general_medical_practice_code": "W00199"},
			version: "2025/26", step: "A&E-1", reason: "36L_AE_1_2", comm: "36L"},
		// p.54 I reads secondary diagnoses too: Z31.1 as a secondary.
		{uid: "G58", why: "p.54 I Yes on a secondary diagnosis Z31.1", ds: "apc", day: d2526,
			set:     map[string]string{"secondary_diagnoses_icd": "I10X;Z311", "person_gender_code": "2"},
			version: "2025/26", step: "I-1", reason: "36L_I_1_2", comm: "36L"},
		// A local flow line of a green service (choice 29: read as an
		// outpatient record), dated by its activity date.
		{uid: "G59", why: "local flow, green service, 2025/26", ds: "local_flow", day: d2526,
			set:     map[string]string{"service_code": "NCBPS01C"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L", category: "25"},
		{uid: "G60", why: "local flow at an Appendix F site: E (choice 29)", ds: "local_flow", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "SM2 5PJ"},
			version: "2025/26", step: "E", reason: "97T_E_1", comm: "97T", category: "71"},
		// A postcode in the ONSPD's 8-character form (two spaces).
		// p.11: the Appendix F site of a postcode written in lower case
		// without its space (G24 again).
		{uid: "G62", why: "G24 with postcode sm25pj", ds: "outpatient", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "sm25pj"},
			version: "2025/26", step: "E", reason: "97T_E_1", comm: "97T", category: "71"},
		// Data set names and their aliases in any case
		// (docs/record-format.md): G29 as "ECDS", G21 as "OP" with its
		// treatment function padded.
		{uid: "G63", why: "G29 with dataset ECDS", ds: "emergency_care", dataset: "ECDS", day: d2526,
			version: "2025/26", step: "J", reason: "36L_AE_1_1", comm: "36L"},
		{uid: "G64", why: "G21 with dataset OP and TFC ' 144 '", ds: "outpatient", dataset: "OP", day: d2526,
			set:     map[string]string{"treatment_function_code": " 144 "},
			version: "2025/26", step: "D", reason: "36L_D_1", comm: "36L", category: "55"},
		// p.54 I: ICD-10 Z31.1 and OPCS-4 Q13.1 written with their dots in
		// the secondary lists (a warning, CLIN-006/007): still infertility.
		{uid: "G65", why: "p.54 I on secondary diagnosis written Z31.1", ds: "apc", day: d2526,
			set:     map[string]string{"secondary_diagnoses_icd": "Z31.1", "person_gender_code": "2"},
			version: "2025/26", step: "I-1", reason: "36L_I_1_2", comm: "36L"},
		{uid: "G66", why: "p.54 I on secondary procedure written Q13.1", ds: "outpatient", day: d2526,
			set:     map[string]string{"secondary_procedures_opcs": "Q13.1", "person_gender_code": "2"},
			version: "2025/26", step: "I-1", reason: "36L_I_1_2", comm: "36L"},
		// p.54 H: a local public health service by local agreement: the
		// local authority of residence (Sutton, E09000029).
		{uid: "G67", why: "p.54 H Yes: local authority of residence", ds: "outpatient", day: d2526,
			set:     map[string]string{"local_public_health_indicator": "Y"},
			version: "2025/26", step: "H", reason: "E09000029_H_1", comm: "E09000029"},
		// p.28-29 B: charging category A, but the practice is a BFPO DMS
		// practice (A91183, BF1 0AP): not ordinarily resident, B No. B-3
		// (p.32): such patients are charge-exempt and a sub-ICB pays; B-4
		// (p.34) Yes (grouping Y99, active), and as its commissioner 13Q is
		// no sub-ICB, the responsible sub-ICB is the postcode's (36L).
		{uid: "G68", why: "p.29 B No for a BFPO practice; p.34 B-4 Yes", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "A91183"},
			version: "2025/26", step: "B-4", reason: "36L_B_4_1", comm: "36L"},
		// p.28: charging category P (pending) is not A: B No, then B-4 with
		// an English GP.
		{uid: "G69", why: "p.28 category P: B No, B-4 Yes", ds: "outpatient", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": "P"},
			version: "2025/26", step: "B-4", reason: "36L_B_4_1", comm: "36L"},
		// Outside the two versions: a CAM date after 2025/26 uses 2025/26,
		// one before 2024/25 uses 2024/25, each reading its dated tables
		// (36L's delegation) within its own year
		// (docs/commissioner-assignment.md, versions).
		{uid: "G70", why: "CAM date 2026-06-15: 2025/26 rules", ds: "outpatient", day: "2026-06-15",
			set:     map[string]string{"service_code": "NCBPS01C"},
			version: "2025/26", step: "C-6", reason: "36L_C_6_1", comm: "36L", category: "25"},
		{uid: "G71", why: "CAM date 2023-06-15: 2024/25 rules", ds: "outpatient", day: "2023-06-15",
			set:     map[string]string{"service_code": "NCBPS01C"},
			version: "2024/25", step: "C-6", reason: "13R_C_6_4", comm: "13R", category: "21"},
		// The provider code written in lower case: the host is RVR's, and
		// the identifier BRVR... still starts with B and the provider code.
		{uid: "G72", why: "G32 with provider_code rvr", ds: "apc", day: d2526, notFlagged: "CDS-002",
			set:     map[string]string{"provider_code": "rvr", "general_medical_practice_code": "V81997", "postcode_of_usual_address": "ZZ99 3VZ"},
			version: "2025/26", step: "C-5", reason: "36L_C_5_1", comm: "36L", method: "Sub-ICB (Host Mapped)"},
		// p.36 WB-2: a Powys resident (border area) registered with an
		// English GP: English path; C-5 by the practice.
		{uid: "G73", why: "p.36 WB-2 Yes: Powys resident, English GP", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "LD1 6SG"},
			version: "2025/26", step: "C-5", reason: "36L_C_5_1", comm: "36L", method: "Sub-ICB (Practice Mapped)"},
		// p.36: in the border area but without a GP: WB-2 No, WB-3 No
		// (Wales), C No: the LHB of the residence.
		{uid: "G74", why: "p.36 WB-2 No without a GP; C No: LHB", ds: "apc", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "LD1 6SG", "general_medical_practice_code": "V81997"},
			version: "2025/26", step: "C", reason: "7A7_C_1", comm: "7A7"},
		// p.35, p.42-46: Welsh border GP, English border resident, a
		// specialised (not highly specialised) service: C Yes, C-1 No,
		// WB-10 Yes (as WB-1), C-3 No (no RAS in the CDS): NHS England, the
		// hub of the provider.
		{uid: "G75", why: "p.44-46 WB-10 Yes, C-3 No: hub of the provider", ds: "outpatient", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "LD7 1DY", "general_medical_practice_code": "W00199", "service_code": "NCBPS01C"},
			version: "2025/26", step: "C-3", reason: "13R_C_3_2", comm: "13R"},
		// p.35-37, p.11: a Welsh GP (W00199, grouping W00), resident in
		// Sutton, outside the border area: WB-1 No, WB-2 No (Q99), WB-3 Yes;
		// the responsible sub-ICB excludes W00 practices: by postcode.
		{uid: "G76", why: "p.11 W00 practice outside the border: postcode method", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "W00199"},
			version: "2025/26", step: "C-5", reason: "36L_C_5_1", comm: "36L", method: "Sub-ICB (Postcode Mapped)"},
		// p.26 and p.11: a postcode sent empty is a missing one: the
		// provider's main site, in England (A&E-1 Yes); the practice decides.
		{uid: "G77", why: "p.26 A&E-1 with an empty postcode", ds: "emergency_care", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "", "general_medical_practice_code": "B84019"},
			version: "2025/26", step: "J", reason: "02T_AE_1_1", comm: "02T"},
		// p.11: no GP and no postcode field at all: the host.
		{uid: "G78", why: "p.11 no GP, postcode missing: host", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "V81999"},
			drop:    []string{"postcode_of_usual_address"},
			version: "2025/26", step: "C-5", reason: "36L_C_5_1", comm: "36L", method: "Sub-ICB (Host Mapped)"},
		// p.49: E is not asked at A&E; p.11: a patient at an Appendix F site
		// takes the postcode method: the prison's sub-ICB, 92A.
		{uid: "G79", why: "p.11, p.49 prisoner at A&E: postcode method", ds: "emergency_care", day: d2526,
			set:     map[string]string{"postcode_of_usual_address": "SM2 5PJ"},
			version: "2025/26", step: "J", reason: "92A_AE_1_1", comm: "92A"},
		// p.14-15, hub method, 2024/25 (02T not delegated): no GP, so the
		// postcode method: HX1 1AA → 02T → its hub 85J, by residence.
		{uid: "G80", why: "p.15 C-6 No, no GP: hub by residence", ds: "apc", day: d2425,
			set:     map[string]string{"service_code": "NCBPS01C", "general_medical_practice_code": "V81997", "postcode_of_usual_address": "HX1 1AA"},
			version: "2024/25", step: "C-6", reason: "85J_C_6_6", comm: "85J", category: "21"},
		// p.15: a practice with no match in epraccur (B84002 closed in
		// 2021) reverts to the PROVIDER method for the hub: RVR's, 13R.
		{uid: "G81", why: "p.15 C-6 No, closed practice: hub by provider", ds: "apc", day: d2425,
			set:     map[string]string{"service_code": "NCBPS01C", "general_medical_practice_code": "B84002", "postcode_of_usual_address": "HX1 1AA"},
			version: "2024/25", step: "C-6", reason: "13R_C_6_8", comm: "13R", category: "21"},
		// 2024/25 amber, no GP: the hub of the residence's sub-ICB.
		{uid: "G82", why: "p.15 C-0b, no GP: hub by residence", ds: "outpatient", day: d2425,
			set:     map[string]string{"service_code": "NCBPS01S", "general_medical_practice_code": "V81997", "postcode_of_usual_address": "HX1 1AA"},
			version: "2024/25", step: "C-0b", reason: "85J_C_0b_3", comm: "85J", category: "21"},
		// p.21-22, F: no GP: the region of the residence's sub-ICB (02T →
		// Y63); a practice not matched reverts to the postcode too.
		{uid: "G83", why: "p.22 F, no GP: region by residence", ds: "outpatient", day: d2526,
			set:     map[string]string{"service_code": "NCBPH01F", "general_medical_practice_code": "V81997", "postcode_of_usual_address": "HX1 1AA"},
			version: "2025/26", step: "F", reason: "Y63_F_3", comm: "Y63", category: "81"},
		{uid: "G84", why: "p.22 F, closed practice: region by residence", ds: "outpatient", day: d2526,
			set:     map[string]string{"service_code": "NCBPH01F", "general_medical_practice_code": "B84002", "postcode_of_usual_address": "HX1 1AA"},
			version: "2025/26", step: "F", reason: "Y63_F_3", comm: "Y63", category: "81"},
		// H's indicator in lower case, "y", is G67 again. A primary
		// diagnosis in lower case, "n979", is no ICD-10 code as the format
		// writes them: refused by name (CLIN-001), as G48's category is.
		{uid: "G85", why: "G67 with indicator y", ds: "outpatient", day: d2526,
			set:     map[string]string{"local_public_health_indicator": "y"},
			version: "2025/26", step: "H", reason: "E09000029_H_1", comm: "E09000029"},
		{uid: "G86", why: "G26 with diagnosis n979: refused", ds: "outpatient", day: d2526,
			set:    map[string]string{"primary_diagnosis_icd": "n979", "person_gender_code": "2"},
			refuse: "CLIN-001"},
		// p.6: emergency care by ARRIVAL date, whatever the departure: in
		// at 23:30 on 31 March, out on 1 April, is 2024/25.
		{uid: "G87", why: "p.6 arrival 2025-03-31 23:30, departure 2025-04-01", ds: "emergency_care", day: "2025-03-31",
			set:     map[string]string{"ec_arrival_time": "23:30", "ec_departure_date": "2025-04-01"},
			version: "2024/25", step: "J", reason: "36L_AE_1_1", comm: "36L"},
		// Choice 28: a finished episode (CDS 130) of a spell not yet
		// discharged has no DISCHARGE DATE (p.6): dated by the spell's start,
		// the admission that p.6 notes 2-3 make the basis of the spell.
		{uid: "G88", why: "choice 28: CDS 130 with no discharge date: spell start", ds: "apc", day: "2025-03-25",
			set: map[string]string{"service_code": "NCBPS01C", "start_date_hospital_provider_spell": "2025-03-25",
				"start_date_episode": "2025-03-25", "end_date_episode": "2025-04-03", "cds_applicable_date_time": "2025-04-06T09:00:00Z"},
			drop:    []string{"discharge_date_hospital_provider_spell", "discharge_method_code", "discharge_destination_code"},
			version: "2024/25", step: "C-6", reason: "13R_C_6_4", comm: "13R"},
		// NDJSON's null is no value (docs/record-format.md): a charging
		// category null is G09 again (p.9: B No).
		{uid: "G89", why: "G09 with charging category null", ds: "apc", day: d2526, nulls: []string{"overseas_visitor_charging_category"},
			version: "2025/26", step: "B-4", reason: "36L_B_4_1", comm: "36L"},
		// A number for a text field is its decimal text: TFC 144 as a JSON
		// number is G21 again (p.48 D).
		{uid: "G90", why: "G21 with TFC as the JSON number 144", ds: "outpatient", day: d2526, numbers: []string{"treatment_function_code"},
			set:     map[string]string{"treatment_function_code": "144"},
			version: "2025/26", step: "D", reason: "36L_D_1", comm: "36L", category: "55"},
		// p.11: the postcode is looked up in the ONS NHS Postcode Directory,
		// which keeps terminated postcodes with their areas: HX1 1AB
		// (terminated 2015-04) still places the patient in 02T.
		{uid: "G91", why: "p.11 a terminated postcode still places the patient", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "V81997", "postcode_of_usual_address": "HX1 1AB"},
			version: "2025/26", step: "C-5", reason: "02T_C_5_1", comm: "02T", method: "Sub-ICB (Postcode Mapped)"},
		// p.24 (OSV guidance, B-3 Yes): a charge-exempt visitor not
		// registered with an English GP but giving a UK address is the
		// sub-ICB's of that address; one resident outside the UK is the
		// host's.
		{uid: "G92", why: "p.24 B-3 Yes, no GP, UK address: sub-ICB of residence", ds: "apc", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": "C", "general_medical_practice_code": "V81997", "postcode_of_usual_address": "HX1 1AA"},
			version: "2025/26", step: "B-3", reason: "02T_B_3_1", comm: "02T"},
		{uid: "G93", why: "p.24 B-3 Yes, no GP, resident abroad: host", ds: "outpatient", day: d2526,
			set:     map[string]string{"overseas_visitor_charging_category": "C", "general_medical_practice_code": "V81997", "postcode_of_usual_address": "ZZ99 6GZ"},
			version: "2025/26", step: "B-3", reason: "36L_B_3_2", comm: "36L"},
		{uid: "G61", why: "G33 with postcode HX1  1AA", ds: "apc", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "V81997", "postcode_of_usual_address": "HX1  1AA"},
			version: "2025/26", step: "C-5", reason: "02T_C_5_1", comm: "02T", method: "Sub-ICB (Postcode Mapped)"},
		{uid: "G47", why: "G32 with zz99 3vz", ds: "emergency_care", day: d2526,
			set:     map[string]string{"general_medical_practice_code": "V81997", "postcode_of_usual_address": "zz99 3vz"},
			version: "2025/26", step: "J", reason: "36L_AE_1_1", comm: "36L"},
	}
}

// camCSVCases are submitted again as a CSV file, under other identifiers
// (the CSV copy's uid is the case's with "C" after it): a file's format must
// not change what the record is assigned.
var camCSVCases = []string{"G01", "G15", "G33", "G41", "G43", "G44"}

// record builds the case's flat record as a provider writes it.
func (c camCase) record(rng *rand.Rand) map[string]string {
	day, err := time.Parse(time.DateOnly, c.day)
	if err != nil {
		panic(err)
	}
	date := func(off int) string { return day.AddDate(0, 0, off).Format(time.DateOnly) }
	r := map[string]string{
		"dataset": c.ds, "cds_unique_identifier": "BRVR00GRADER" + c.uid, "cds_update_type": "9",
		"cds_applicable_date_time": date(5) + "T09:00:00Z", "provider_code": camProvider, "site_code": camProvider + "01",
		"commissioner_code": "36L", "administrative_category_code": "01",
		"nhs_number": synth.ValidNHSNumber(rng), "nhs_number_status_indicator_code": "01", "local_patient_identifier": fmt.Sprintf("LP%08d", rng.IntN(1e8)),
		"person_birth_date": "1988-05-05", "postcode_of_usual_address": "SM1 1AA", "person_gender_code": "1", "ethnic_category": "A",
		"general_medical_practice_code": "H85030", "overseas_visitor_charging_category": "A",
	}
	switch c.ds {
	case "apc":
		for k, v := range map[string]string{"cds_type": "130", "hospital_provider_spell_number": "G" + c.uid + "0001", "episode_number": "01",
			"start_date_hospital_provider_spell": date(-3), "admission_method_code": "21", "source_of_admission_code": "19",
			"start_date_episode": date(-3), "end_date_episode": date(0), "discharge_date_hospital_provider_spell": date(0),
			"discharge_method_code": "1", "discharge_destination_code": "19", "patient_classification_code": "1",
			"treatment_function_code": "300", "primary_diagnosis_icd": "J189", "hrg_code": "DZ11R"} {
			r[k] = v
		}
	case "outpatient":
		for k, v := range map[string]string{"attendance_identifier": "OP" + c.uid + "000001", "appointment_date": date(0),
			"attended_or_did_not_attend_code": "5", "first_attendance_code": "1", "treatment_function_code": "300",
			"priority_type_code": "1", "hrg_code": "WF01B"} {
			r[k] = v
		}
	case "local_flow":
		for k, v := range map[string]string{"activity_date": date(0), "point_of_delivery_code": "OPFA", "treatment_function_code": "300",
			"hrg_code": "WF01B"} {
			r[k] = v
		}
	case "emergency_care":
		for k, v := range map[string]string{"ec_attendance_identifier": "EC" + c.uid + "000001", "ec_arrival_date": date(0),
			"ec_arrival_time": "10:30", "ec_department_type": "01", "ec_chief_complaint_snomed_ct": "29857009",
			"ec_departure_date": date(0), "hrg_code": "VB09Z"} {
			r[k] = v
		}
	}
	if c.dataset != "" {
		r["dataset"] = c.dataset
	}
	for k, v := range c.set {
		r[k] = v
	}
	for _, k := range c.drop {
		delete(r, k)
	}
	return r
}

// TestGraderCAM submits the grader's cases through ingest, as NDJSON, some
// again as CSV and through gRPC, and checks each in activity_current, by
// explain and dmicctl explain; then a revision, a delete and national
// copies; then that no identifier submitted got past de-identification.
func TestGraderCAM(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := startStack(ctx, t, devstack.Config{Database: database + "_grader_cam"}, 80)
	client, err := s.PKI.HTTPClient(devpki.ProviderFile(camProvider), 2)
	if err != nil {
		t.Fatal(err)
	}

	cases := camGraderCases()
	byUID := map[string]camCase{}
	rng := rand.New(rand.NewPCG(11, 12))
	var ndjson bytes.Buffer
	recs := map[string]map[string]string{}
	// patients is every identifier submitted, to look for after
	// de-identification.
	var patients []leakguard.Patient
	for _, c := range cases {
		if _, dup := byUID[c.uid]; dup {
			t.Fatalf("case %s twice", c.uid)
		}
		byUID[c.uid] = c
		r := c.record(rng)
		recs[c.uid] = r
		patients = append(patients, camPatientOf(r))
		b, err := json.Marshal(c.jsonValues(r))
		if err != nil {
			t.Fatal(err)
		}
		ndjson.Write(b)
		ndjson.WriteByte('\n')
	}
	// The CSV copies: the union of their fields as the header, an empty
	// cell where a record has no such field.
	var cols []string
	for _, uid := range camCSVCases {
		for k := range recs[uid] {
			// The file names no dataset column: the submission's
			// (?dataset=apc) is every row's.
			if k != "dataset" && !slices.Contains(cols, k) {
				cols = append(cols, k)
			}
		}
	}
	slices.Sort(cols)
	// As a spreadsheet saves it: a UTF-8 byte order mark and CRLF line
	// endings.
	var csvBuf bytes.Buffer
	csvBuf.WriteString("\ufeff")
	w := csv.NewWriter(&csvBuf)
	w.UseCRLF = true
	// The header as a spreadsheet might write it: field names are
	// matched whatever their case and surrounding spaces
	// (docs/record-format.md, CSV).
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = " " + strings.ToUpper(c) + " "
	}
	_ = w.Write(header)
	for _, uid := range camCSVCases {
		c := byUID[uid]
		c.uid += "C"
		byUID[c.uid] = c
		r := c.record(rng)
		patients = append(patients, camPatientOf(r))
		row := make([]string, len(cols))
		for i, k := range cols {
			row[i] = r[k]
		}
		_ = w.Write(row)
	}
	w.Flush()

	submitted := 0
	refused := map[string]bool{}
	for _, f := range []struct {
		name, contentType, dataset string
		body                       []byte
		n                          int
	}{
		{"NDJSON", "application/x-ndjson", "", ndjson.Bytes(), len(cases)},
		{"CSV", "text/csv", "apc", csvBuf.Bytes(), len(camCSVCases)},
	} {
		rep := camSubmit(t, client, s.IngestURL(), f.dataset, f.contentType, f.body)
		if rep.GetRecords() != int64(f.n) {
			t.Errorf("%s: the report counts %d records, want %d", f.name, rep.GetRecords(), f.n)
		}
		for _, fr := range rep.GetFailingRecords() {
			id := strings.TrimPrefix(fr.GetRecordId(), "BRVR00GRADER")
			c := byUID[id]
			for _, fl := range fr.GetFailures() {
				t.Logf("%s line %d (%s): %s %s %s %s", f.name, fr.GetLineNumber(), id, fl.GetSeverity(), fl.GetRuleId(), fl.GetField(), fl.GetMessage())
				if fl.GetRuleId() == c.notFlagged {
					t.Errorf("%s (%s) is reported by %s: %s", id, c.why, fl.GetRuleId(), fl.GetMessage())
				}
				if fl.GetRuleId() == c.refuse && fr.GetOutcome() == validationv1.Outcome_OUTCOME_REJECTED {
					refused[id] = true
				}
			}
			if fr.GetOutcome() == validationv1.Outcome_OUTCOME_REJECTED && c.refuse == "" {
				t.Errorf("%s line %d (%s, %s) was refused: a provider's record the guidance assigns", f.name, fr.GetLineNumber(), id, c.why)
			}
		}
		submitted += int(rep.GetAccepted() + rep.GetWarned())
	}
	submitted += camSubmitGRPC(ctx, t, s, byUID, rng, &patients)

	for id, c := range byUID {
		if c.refuse != "" && !refused[id] {
			t.Errorf("%s (%s) was not refused by %s", id, c.why, c.refuse)
		}
	}

	q := "SELECT count() FROM " + database + "_grader_cam.activity_current WHERE cds_unique_identifier LIKE 'BRVR00GRADER%'"
	s.waitFor(fmt.Sprintf("%d grader records in activity_current", submitted), 3*time.Minute, func() bool { return s.count(q) == int64(submitted) })

	published := camPublishedReasons(t)
	rows, err := s.conn.Query(ctx, `SELECT record_key, cds_unique_identifier, cam_version, cam_date, cam_step, cam_reason_code, commissioner_code,
		cam_service_category, assignment_method, commissioner_type, cam_reason, cam_rule_id, length(cam_reference_vintages) FROM `+database+`_grader_cam.activity_current WHERE cds_unique_identifier LIKE 'BRVR00GRADER%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	keys := map[string]string{}
	seen := map[string]bool{}
	for rows.Next() {
		var key, uid, version, date, step, reason, comm, category, method, ctype, text, ruleID string
		var vintages uint64
		if err := rows.Scan(&key, &uid, &version, &date, &step, &reason, &comm, &category, &method, &ctype, &text, &ruleID, &vintages); err != nil {
			t.Fatal(err)
		}
		if ruleID != "CAM-"+step || vintages == 0 {
			t.Errorf("%s: rule id %q for step %s, %d reference vintages", uid, ruleID, step, vintages)
		}
		id := strings.TrimPrefix(uid, "BRVR00GRADER")
		c, ok := byUID[id]
		if !ok {
			t.Errorf("unexpected record %s", uid)
			continue
		}
		seen[id], keys[id] = true, key
		got := fmt.Sprintf("%s %s %s %s %s", version, date, step, reason, comm)
		want := fmt.Sprintf("%s %s %s %s %s", c.version, c.day, c.step, c.reason, c.comm)
		if got != want {
			t.Errorf("%s (%s): activity_current has CAM %s; want %s", id, c.why, got, want)
		}
		if c.category != "" && category != c.category {
			t.Errorf("%s (%s): service category %q, want %q", id, c.why, category, c.category)
		}
		// A published reason code carries the published text and service
		// category (cam_commissioner_assignment_reason.csv).
		if p, ok := published[c.reason]; ok && (text != p[0] || category != p[1]) {
			t.Errorf("%s (%s): reason %q, category %q; the published row of %s says %q, %q", id, c.why, text, category, c.reason, p[0], p[1])
		}
		if c.method != "" && method != c.method {
			t.Errorf("%s (%s): assignment method %q, want %q", id, c.why, method, c.method)
		}
		if wantType := camCommissionerType(c.comm); ctype != wantType {
			t.Errorf("%s (%s): commissioner type %q, want %q", id, c.why, ctype, wantType)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, c := range byUID {
		if seen[id] && c.refuse != "" {
			t.Errorf("%s (%s) is in activity_current, but validation must refuse it by %s", id, c.why, c.refuse)
		}
		if !seen[id] && c.refuse == "" {
			t.Errorf("%s (%s) is not in activity_current", id, c.why)
		}
	}

	camRevisedAndDeleted(ctx, t, s, client, byUID["G01"], rng, &patients)

	// dmicctl explain, at the terminal, prints the stored decision and that
	// the derived one agrees.
	bin := t.TempDir()
	if err := devstack.Build(ctx, "../..", bin, "dmicctl"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"G15", "G44C", "G31"} {
		c := byUID[id]
		out := camExplainCLI(ctx, t, s, bin, keys[id])
		want := fmt.Sprintf("stored:  %s by step %s, reason %s", c.comm, c.step, c.reason)
		if !strings.Contains(out, want) || !strings.Contains(out, "the derived decision agrees with the stored one") {
			t.Errorf("dmicctl explain %s (%s): want %q and agreement:\n%s", id, c.why, want, out)
		}
	}

	// Explain agrees with what is stored, as an analyst asks it.
	ac := s.assignment(devpki.AnalystFile)
	for _, id := range []string{"G04", "G11", "G23", "G34", "G40", "G41", "G43"} {
		if keys[id] == "" {
			continue
		}
		got, err := ac.ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: keys[id]})
		if err != nil {
			t.Errorf("explain %s: %v", id, err)
			continue
		}
		c := byUID[id]
		d := got.GetDerived()
		if !got.GetAgrees() || d.GetStep() != c.step || d.GetCommissionerCode() != c.comm || decidingStep(d.GetTrail()) != c.step {
			t.Errorf("explain %s (%s): agrees %v, derived %s by %s; want %s by %s\n%s", id, c.why, got.GetAgrees(),
				d.GetCommissionerCode(), d.GetStep(), c.comm, c.step, cam.ExplainRecord(got))
		}
	}

	camNationalCopies(ctx, t, s, byUID, rng, &patients)

	// No identifier submitted, in whatever spelling it came, is in
	// ClickHouse, on a topic after de-identification or in a log line.
	ids := leakguard.NewIdentifiers(patients, "2024-01-01")
	checkNoLeaks(ctx, t, s, ids, database+"_grader_cam")
}

// camPatientOf is the identifiers of a record as submitted: its postcode as
// written and in its canonical form (not a ZZ99 pseudo postcode, which
// names a country or a state, not a place), its NHS number, local
// patient id and date of birth.
func camPatientOf(r map[string]string) leakguard.Patient {
	p := leakguard.Patient{NHSNumber: r["nhs_number"], LocalPatientID: r["local_patient_identifier"], BirthDate: r["person_birth_date"]}
	if pc, ok := nhs.NormalisePostcode(r["postcode_of_usual_address"]); ok && !nhs.IsPseudoPostcode(pc) {
		p.Postcode = strings.TrimSpace(r["postcode_of_usual_address"])
	}
	return p
}

// camNationalCopies sends the national exchange's (SUS) copies of some cases,
// with its certificate: a national copy carries the same CAM inputs, so an
// analyst sees the same assignment on both rows.
func camNationalCopies(ctx context.Context, t *testing.T, s *stackUnderTest, byUID map[string]camCase, rng *rand.Rand, patients *[]leakguard.Patient) {
	t.Helper()
	client, err := s.PKI.HTTPClient(devpki.NationalFile, 2)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"G15", "G23", "G31", "G41", "G54", "G75"}
	var file bytes.Buffer
	for _, id := range ids {
		r := byUID[id].record(rng)
		*patients = append(*patients, camPatientOf(r))
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		file.Write(b)
		file.WriteByte('\n')
	}
	resp, err := client.Post(s.IngestURL()+"/v1/submissions?source=national", "application/x-ndjson", &file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("national submission: %d %s", resp.StatusCode, b)
	}
	from := " FROM " + database + "_grader_cam.activity_current WHERE source = 'national' AND cds_unique_identifier LIKE 'BRVR00GRADER%'"
	s.waitFor("the national copies in activity_current", 2*time.Minute, func() bool { return s.count("SELECT count()"+from) == int64(len(ids)) })
	rows, err := s.conn.Query(ctx, "SELECT cds_unique_identifier, cam_version, cam_step, cam_reason_code, commissioner_code"+from)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var uid, version, step, reason, comm string
		if err := rows.Scan(&uid, &version, &step, &reason, &comm); err != nil {
			t.Fatal(err)
		}
		c := byUID[strings.TrimPrefix(uid, "BRVR00GRADER")]
		if got, want := fmt.Sprintln(version, step, reason, comm), fmt.Sprintln(c.version, c.step, c.reason, c.comm); got != want {
			t.Errorf("national copy of %s (%s): %s %s %s %s; want %s %s %s %s", c.uid, c.why, version, step, reason, comm, c.version, c.step, c.reason, c.comm)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// A national copy's record key names the exchange, the data set, the
	// provider and the identifier (docs/commissioner-assignment.md,
	// Explain); explain finds it and agrees.
	got, err := s.assignment(devpki.AnalystFile).ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: "X26|apc|RVR|BRVR00GRADERG15"})
	if err != nil {
		t.Fatalf("explain the national copy of G15: %v", err)
	}
	if c := byUID["G15"]; !got.GetAgrees() || got.GetStored().GetReasonCode() != c.reason || got.GetSource() != "national" {
		t.Errorf("explain the national copy of G15: %s", cam.ExplainRecord(got))
	}
}

// camGRPCCases are sent a third time through ingest's gRPC door
// (SubmitRecords, as a provider's system streams them), under identifiers
// ending in "R".
var camGRPCCases = []string{"G15", "G41", "G43", "G46"}

// camSubmitGRPC streams the camGRPCCases' copies as the provider and returns how
// many ingest accepted; their expectations join byUID.
func camSubmitGRPC(ctx context.Context, t *testing.T, s *stackUnderTest, byUID map[string]camCase, rng *rand.Rand, patients *[]leakguard.Patient) int {
	t.Helper()
	creds, err := s.PKI.DialOption(devpki.ProviderFile(camProvider))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("localhost:"+strconv.Itoa(s.Ports.GRPC["ingest"]), creds)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := dmicv1.NewIngestServiceClient(conn).SubmitRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &dmicv1.SubmitRecordsRequest{Dataset: dmicv1.Dataset_DATASET_APC}
	for _, id := range camGRPCCases {
		c := byUID[id]
		c.uid += "R"
		byUID[c.uid] = c
		r := c.record(rng)
		*patients = append(*patients, camPatientOf(r))
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		req.JsonRecords = append(req.JsonRecords, string(b))
	}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("SubmitRecords: %v", err)
	}
	if resp.GetAccepted() != int64(len(camGRPCCases)) {
		t.Errorf("SubmitRecords accepted %d of %d: %v", resp.GetAccepted(), len(camGRPCCases), resp.GetResults())
	}
	return int(resp.GetAccepted())
}

// camRevisedAndDeleted sends, as the provider, a replacement of G01 with a
// later applicable time that moves the patient to B84019 (02T), and a delete
// of G02, and waits for activity_current to show both: the assignment an
// analyst sees is the latest revision's (CDS net change,
// docs/record-format.md).
func camRevisedAndDeleted(ctx context.Context, t *testing.T, s *stackUnderTest, client *http.Client, g01 camCase, rng *rand.Rand, patients *[]leakguard.Patient) {
	t.Helper()
	g01.set = map[string]string{"general_medical_practice_code": "B84019", "cds_applicable_date_time": "2025-07-01T09:00:00Z"}
	r := g01.record(rng)
	*patients = append(*patients, camPatientOf(r))
	rev, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	del, err := json.Marshal(map[string]string{"dataset": "apc", "cds_unique_identifier": "BRVR00GRADERG02", "cds_update_type": "1",
		"provider_code": camProvider, "cds_applicable_date_time": "2025-07-01T09:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	rep := camSubmit(t, client, s.IngestURL(), "", "application/x-ndjson", append(append(append(rev, '\n'), del...), '\n'))
	if rep.GetRejected() != 0 {
		t.Fatalf("revision and delete refused: %v", rep.GetFailingRecords())
	}
	q := "SELECT count() FROM " + database + "_grader_cam.activity_current WHERE cds_unique_identifier = "
	s.waitFor("G01's revision assigned to 02T by its practice", time.Minute, func() bool {
		return s.count(q+"'BRVR00GRADERG01' AND commissioner_code = '02T' AND cam_reason_code = '02T_C_5_1'") == 1
	})
	s.waitFor("G02 deleted", time.Minute, func() bool { return s.count(q+"'BRVR00GRADERG02'") == 0 })
}

// camPublishedReasons reads the published reason table of the sample
// reference data itself: code -> (reason text, service category).
func camPublishedReasons(t *testing.T) map[string][2]string {
	t.Helper()
	f, err := os.Open(filepath.Join(refDir, "cam_commissioner_assignment_reason.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, r := range recs[1:] {
		if _, dup := out[r[0]]; !dup { // the table repeats some rows (00L_C_5_1)
			out[r[0]] = [2]string{r[2], r[3]}
		}
	}
	return out
}

// camExplainCLI runs `dmicctl explain key` as the analyst, as an analyst at a
// terminal would, and returns what it prints.
func camExplainCLI(ctx context.Context, t *testing.T, s *stackUnderTest, bin, key string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "dmicctl"), "-services", "assign=localhost:"+strconv.Itoa(s.Ports.GRPC["assign"]),
		"-tls-cert", s.PKI.Cert(devpki.AnalystFile), "-tls-key", s.PKI.Key(devpki.AnalystFile), "-tls-ca", s.PKI.CA(), "explain", key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("dmicctl explain %s: %v\n%s", key, err, out)
	}
	return string(out)
}

// camCommissionerType is the kind of body a commissioner code of the cases
// names, from the guidance's table of assigned commissioners (p.10-26).
func camCommissionerType(code string) string {
	switch code {
	case "VPP00":
		return cam.TypePrivate
	case "7A7", "SB9", "SD002":
		return cam.TypeDevolved
	case "13R", "13Q", "97T", "Y56", "85J", "Y63":
		return cam.TypeNHSE
	case "E09000029":
		return cam.TypeLA
	}
	return cam.TypeSubICB
}

// camSubmit posts a file to ingest as the client's provider and waits
// for its submission report to be complete.
func camSubmit(t *testing.T, client *http.Client, ingest, dataset, contentType string, body []byte) *validationv1.SubmissionReport {
	t.Helper()
	url := ingest + "/v1/submissions"
	if dataset != "" {
		url += "?dataset=" + dataset
	}
	resp, err := client.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("submit %s: %d %s", contentType, resp.StatusCode, b)
	}
	loc := resp.Header.Get("Location")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rep := getReport(t, client, ingest+loc+"?limit=1000")
		if rep.GetComplete() {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("report of the %s file not complete after 2 minutes: %v", contentType, rep)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
