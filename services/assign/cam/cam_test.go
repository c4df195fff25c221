package cam

import (
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

func sampleAssigner(t testing.TB) *Assigner {
	t.Helper()
	ref, err := refdata.LoadDir("../../../reference/sample")
	if err != nil {
		t.Fatalf("load sample reference data: %v", err)
	}
	return NewAssigner(ref)
}

// act builds an activity; the options adjust it for one case.
func act(opts ...func(*dmicv1.DeidentifiedActivity)) *dmicv1.DeidentifiedActivity {
	a := &dmicv1.DeidentifiedActivity{
		ProviderCode:               "ZZZ99", // not a trust: no host unless a case sets one
		AdministrativeCategoryCode: "01",
		OverseasVisitorStatusCode:  "8",
		ActivityDate:               "2025-05-01",
		Demographics:               &dmicv1.Demographics{},
		Residence:                  &dmicv1.Residence{},
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

func practice(code string) func(*dmicv1.DeidentifiedActivity) {
	return func(a *dmicv1.DeidentifiedActivity) { a.Demographics.GeneralMedicalPracticeCode = code }
}
func country(c string) func(*dmicv1.DeidentifiedActivity) {
	return func(a *dmicv1.DeidentifiedActivity) { a.Residence.Country = c }
}
func subICB(s string) func(*dmicv1.DeidentifiedActivity) {
	return func(a *dmicv1.DeidentifiedActivity) {
		a.Residence.SubIcb, a.Residence.Country = s, refdata.CountryEngland
	}
}
func provider(p string) func(*dmicv1.DeidentifiedActivity) {
	return func(a *dmicv1.DeidentifiedActivity) { a.ProviderCode = p }
}
func supplied(c string) func(*dmicv1.DeidentifiedActivity) {
	return func(a *dmicv1.DeidentifiedActivity) { a.SubmittedCommissionerCode = c }
}
func adminCat(c string) func(*dmicv1.DeidentifiedActivity) {
	return func(a *dmicv1.DeidentifiedActivity) { a.AdministrativeCategoryCode = c }
}
func osv(c string) func(*dmicv1.DeidentifiedActivity) {
	return func(a *dmicv1.DeidentifiedActivity) { a.OverseasVisitorStatusCode = c }
}
func date(d string) func(*dmicv1.DeidentifiedActivity) {
	return func(a *dmicv1.DeidentifiedActivity) { a.ActivityDate = d }
}

// Codes from reference/sample: practices H85030 (36L, Sutton), B84019 (02T,
// Halifax), B84002 (02T, closed 2021-01-31), A91020 (13Q, armed forces),
// W00199 (7A7, Powys); trusts RVR (SM5 1AA -> 36L), RCD (HG2 7SX -> 42D),
// RP4 (WC1N 3JH -> 93C).
func TestAssign(t *testing.T) {
	a := sampleAssigner(t)
	tests := []struct {
		name             string
		act              *dmicv1.DeidentifiedActivity
		code, method, ty string
		rule             string
	}{
		{"private patient beats everything", act(adminCat("02"), osv("4"), practice("H85030")),
			"VPP00", MethodPrivatePatient, TypePrivate, RulePrivatePatient},
		{"OSV all fees", act(osv("4"), practice("H85030")),
			"VPP00", MethodNonReciprocal, TypePrivate, RuleOverseas},
		{"OSV hotel fees", act(osv("3"), subICB("36L")),
			"VPP00", MethodNonReciprocal, TypePrivate, RuleOverseas},
		{"exempt OSV falls through", act(osv("1"), practice("H85030")),
			"36L", MethodPractice, TypeSubICB, RulePractice},
		{"Welsh resident, no practice", act(country("W92000004")),
			"X98", MethodDevolved, TypeDevolved, RuleDevolved},
		{"Scottish resident, unknown practice", act(country("S92000003"), practice("Z99999"), provider("RVR")),
			"X98", MethodDevolved, TypeDevolved, RuleDevolved},
		{"Northern Ireland resident", act(country("N92000002")),
			"X98", MethodDevolved, TypeDevolved, RuleDevolved},
		{"Welsh practice, English resident", act(practice("W00199"), subICB("36L")),
			"7A7", MethodDevolved, TypeDevolved, RuleDevolved},
		{"Welsh resident registered in England", act(country("W92000004"), practice("H85030")),
			"36L", MethodPractice, TypeSubICB, RulePractice},
		{"armed forces practice", act(practice("A91020"), subICB("36L")),
			"13Q", MethodMilitary, TypeNHSE, RuleMilitary},
		{"armed forces practice, Scottish resident", act(practice("A91020"), country("S92000003")),
			"13Q", MethodMilitary, TypeNHSE, RuleMilitary},
		{"practice mapped beats residence", act(practice("H85030"), subICB("92A")),
			"36L", MethodPractice, TypeSubICB, RulePractice},
		{"practice code lower case", act(practice("b84019")),
			"02T", MethodPractice, TypeSubICB, RulePractice},
		{"closed practice, activity before close", act(practice("B84002"), date("2021-01-31"), subICB("36J")),
			"02T", MethodPractice, TypeSubICB, RulePractice},
		{"closed practice, activity after close", act(practice("B84002"), date("2021-02-01"), subICB("36J")),
			"36J", MethodPostcode, TypeSubICB, RuleResidence},
		{"unknown practice, postcode mapped", act(practice("V81999"), subICB("92A"), provider("RVR")),
			"92A", MethodPostcode, TypeSubICB, RuleResidence},
		{"no fixed abode, host of RVR", act(provider("RVR")),
			"36L", MethodHost, TypeSubICB, RuleHost},
		{"host from a 5-character provider code", act(provider("RCD00")),
			"42D", MethodHost, TypeSubICB, RuleHost},
		{"host in London", act(provider("RP4")),
			"93C", MethodHost, TypeSubICB, RuleHost},
		{"England n.o.s. has no sub-ICB, goes to host", act(country("E92000001"), provider("RVR")),
			"36L", MethodHost, TypeSubICB, RuleHost},
		{"provider supplied sub-ICB with 00 suffix", act(supplied("02t00")),
			"02T", MethodSupplied, TypeSubICB, RuleSupplied},
		{"provider supplied other code kept whole", act(supplied("XMD00")),
			"XMD00", MethodSupplied, TypeOther, RuleSupplied},
		{"provider supplied Q99 is not a commissioner", act(supplied("Q99")),
			"Q99", MethodNotAssigned, TypeUnknown, RuleNone},
		{"nothing known", act(),
			"Q99", MethodNotAssigned, TypeUnknown, RuleNone},
		{"nil activity", nil,
			"Q99", MethodNotAssigned, TypeUnknown, RuleNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.Assign(tt.act)
			if got.GetCommissionerCode() != tt.code || got.GetAssignmentMethod() != tt.method ||
				got.GetCommissionerType() != tt.ty || got.GetRuleId() != tt.rule {
				t.Errorf("Assign = %s %q %q %s, want %s %q %q %s",
					got.GetCommissionerCode(), got.GetAssignmentMethod(), got.GetCommissionerType(), got.GetRuleId(),
					tt.code, tt.method, tt.ty, tt.rule)
			}
		})
	}
}

// Without reference data only the rules that need none can decide.
func TestAssignWithoutReference(t *testing.T) {
	a := NewAssigner(nil)
	if got := a.Assign(act(practice("H85030"), subICB("36L"))); got.GetRuleId() != RuleResidence || got.GetCommissionerCode() != "36L" {
		t.Errorf("Assign = %v, want CAM-RES 36L", got)
	}
	if got := a.Assign(act(supplied("36L00"))); got.GetRuleId() != RuleSupplied || got.GetCommissionerCode() != "36L00" {
		t.Errorf("Assign = %v, want CAM-SUPPLIED 36L00 (unknown sub-ICB, kept whole)", got)
	}
}

func BenchmarkAssign(b *testing.B) {
	a := sampleAssigner(b)
	acts := []*dmicv1.DeidentifiedActivity{
		act(practice("H85030")),
		act(practice("V81999"), subICB("92A")),
		act(provider("RVR00")),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.Assign(acts[i%len(acts)])
		i++
	}
}
