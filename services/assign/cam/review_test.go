package cam

import (
	"testing"
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
