package cam

import (
	"testing"
)

// Cases from a second review of the engine against the published CAM
// 2025/26 guidance (v1.1) and flow chart: specialised services, cross-border
// and emergency care. Each cites its section; see
// docs/commissioner-assignment.md ("Choices") for the readings taken where
// the guidance is ambiguous.

// B-1 (p.31) asks whether "the specialised service line code for the CDS
// record derived by the specialised services identification rules" is "one
// of those listed as a Highly Specialised Service Line". The 2024/25 list
// keeps retired lines (NCBPS12C "CODE RETIRED IN 2018-19", NCBPST23 "CODE
// RETIRED IN 2024-25") with status NOT APPLICABLE: no identification rule of
// the year derives them, and C/C-0 (p.38-41) already read them as not
// specialised, so C-1 is never reached for them. B-1 reads them the same:
// highly specialised only for a specialised line of the year.
func TestHighlySpecialisedNeedsACurrentSpecialisedLine(t *testing.T) {
	runCases(t, []camCase{
		{"retired highly specialised line, EEA resident", "B-1 No (p.31): NCBPS12C is retired (NOT APPLICABLE in 24/25), so B-2 is not asked; B-3 No, B-4 No: host",
			apc(d2425, ovc("E"), res(france), svc("NCBPS12C")), "2024/25", "B-4", "36L", "36L_B_4_2", "12"},
		{"current highly specialised line, EEA resident", "B-1 Yes, B-2 Yes (p.31): hub by provider",
			apc(d2425, ovc("E"), res(france), svc("NCBPS01A")), "2024/25", "B-2", "13R", "13R_B_2_1", "21"},
	})
}
