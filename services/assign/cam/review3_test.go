package cam

import (
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Cases from a third review, written as a reader of the published guidance
// would write them, box by box of the flow chart and page by page of
// "Commissioner Assignment Method Flow Chart 2025/26: Accompanying Guidance
// and Reference Tables" v1.1 (the ordinary case, each branch, each edge),
// each citing the page, table or appendix it comes from. The readings taken
// where the text is silent are numbered in docs/commissioner-assignment.md.

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
