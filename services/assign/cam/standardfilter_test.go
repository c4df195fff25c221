package cam

import "testing"

// standardFilter is the filter commissioners apply to leave out activity no
// ICB pays for (domain brief §4, [C]):
//
//	Responsible_Purchaser_Assignment_Method NOT IN
//	  ('Reciprocal OSVs','Non-reciprocal OSVs','Private Patient','Devolved Administration')
//
// dmic's assignment_method column is CAM's Method, so the filter applies to
// it as written (docs/reconciliation.md, Discrepancies).
var standardFilter = map[string]bool{
	"Reciprocal OSVs": true, "Non-reciprocal OSVs": true, "Private Patient": true, "Devolved Administration": true,
}

// The filter, on CAM's labels, leaves out exactly the private patients and
// chargeable overseas visitors (step A), the visitors under a reciprocal
// agreement (B-3) and the devolved administrations' patients, and keeps
// everything else; and each of its four labels is one CAM gives, spelt as
// the filter spells it.
func TestStandardFilterCatchesPrivateOverseasAndDevolved(t *testing.T) {
	a := sampleAssigner(t)
	seen := map[string]bool{}
	for _, tc := range allCases() {
		var r Result
		a.Decide(tc.act, nil, &r)
		want := r.CommissionerType == TypePrivate || r.CommissionerType == TypeDevolved || r.Step == "B-3"
		if got := standardFilter[r.Method]; got != want {
			t.Errorf("%s: step %s, type %q, method %q: left out by the standard filter %v, want %v",
				tc.name, r.Step, r.CommissionerType, r.Method, got, want)
		}
		seen[r.Method] = true
	}
	for m := range standardFilter {
		if !seen[m] {
			t.Errorf("no case assigned method %q: the filter's label is not CAM's", m)
		}
	}
}
