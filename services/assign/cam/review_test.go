package cam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
			b = append(b, strings.Join(practices, "\n")+"\n"...)
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
