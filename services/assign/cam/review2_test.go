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

// Choice 21: a line flagged specialised with status NOT APPLICABLE (a
// retired 2024/25 line, NCBPSXXX "specialised service but not attributable")
// is not specialised at C (p.38), so a devolved resident goes to the health
// board of residence (C No, p.17), not to NSD at WB-10 (p.16); on the English
// path C-0 No, C-5 No: the responsible sub-ICB (p.46).
func TestSpecialisedLineWithoutStatus(t *testing.T) {
	runCases(t, []camCase{
		{"retired line, Scottish resident", "C No (p.38, choice 21): NCBPS12C is NOT APPLICABLE in 24/25 -> health board (p.17)",
			apc(d2425, res(borders), svc("NCBPS12C")), "2024/25", "C", "SB9", "SB9_C_1", ""},
		{"NCBPSXXX, Scottish resident", "C No (choice 21): not attributable, NOT APPLICABLE -> health board (p.17)",
			apc(d2526, res(borders), svc("NCBPSXXX")), "2025/26", "C", "SB9", "SB9_C_1", ""},
		{"NCBPSXXX, English resident", "C-0 No, D..J No, C-5 No (p.46): responsible sub-ICB",
			apc(d2526, gp("H85030"), svc("NCBPSXXX")), "2025/26", "C-5", "36L", "36L_C_5_1", "12"},
	})
}

// The 2024/25 service code list keeps lines retired years before, with an
// Effective_To before the year (NCBPH26E "CODE RETIRED IN 2021-22",
// 2013-04-01 to 2021-03-31 or so, Public Health Flag 1). F (p.52) asks
// whether the activity is a section 7a service "detailed in the NHS England
// service specifications" of the year (Appendix A 2025/26 and its 2024/25
// counterpart); a line that ended before the year is none of them, so F is
// No, as C-0 and B-1 already read retired specialised lines.
func TestRetiredLineIsNotASection7aService(t *testing.T) {
	runCases(t, []camCase{
		{"retired public health line", "F No (p.52): NCBPH26E retired before 2024/25; C-5 No: responsible sub-ICB (p.46)",
			op(d2425, gp("H85030"), svc("NCBPH26E")), "2024/25", "C-5", "36L", "36L_C_5_1", "12"},
		{"current public health line", "F Yes (p.52): NCBPH01F -> region of the GP practice (p.21-22)",
			op(d2425, gp("H85030"), svc("NCBPH01F")), "2024/25", "F", "Y56", "Y56_F_1", "81"},
	})
}
