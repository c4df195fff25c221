// Package cam is a first cut of the Commissioner Assignment Method: it
// decides which commissioner is responsible for a de-identified activity,
// the way SUS+ derives Responsible_Purchaser_Code, from ordered rules of
// which the first that applies wins. Every result names its rule, so a
// commissioner can always be traced to the step that chose it.
//
// Not yet implemented: specialised services (PSS identification rules and
// the provider-to-hub mapping), secondary dental, Health & Justice, public
// health (section 7A), infertility and drugs/devices exclusions. See
// docs/commissioner-assignment.md.
package cam

import (
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// Rule ids, in the order the rules are tried. They are stable: stored
// assignments and dashboards refer to them.
const (
	RulePrivatePatient = "CAM-PP"
	RuleOverseas       = "CAM-OSV"
	RuleDevolved       = "CAM-DEV"
	RuleMilitary       = "CAM-MIL"
	RulePractice       = "CAM-GP"
	RuleResidence      = "CAM-RES"
	RuleHost           = "CAM-HOST"
	RuleSupplied       = "CAM-SUPPLIED"
	RuleNone           = "CAM-NONE"
)

// Assignment methods: the SUS+ Responsible_Purchaser_Assignment_Method
// labels where SUS+ has one.
const (
	MethodPrivatePatient = "Private Patient"
	MethodNonReciprocal  = "Non-reciprocal OSVs"
	MethodDevolved       = "Devolved Administration"
	MethodMilitary       = "NHSE (Military Personnel)"
	MethodPractice       = "Sub-ICB (Practice Mapped)"
	MethodPostcode       = "Sub-ICB (Postcode Mapped)"
	MethodHost           = "Sub-ICB (Host Mapped)"
	MethodSupplied       = "Sub-ICB (Provider Supplied)"
	// MethodNotAssigned has no SUS+ equivalent: SUS+ always finds a host.
	MethodNotAssigned = "Not Assigned"
)

// Commissioner types.
const (
	TypePrivate  = "Private"
	TypeDevolved = "Devolved Administration"
	TypeNHSE     = "NHS England"
	TypeSubICB   = "Sub-ICB"
	TypeOther    = "Other"
	TypeUnknown  = "Unknown"
)

// Codes the rules assign. VPP00, X98 and Q99 are NHS Data Dictionary default
// codes; X98 and Q99 are not commissioners, they say why there is none.
const (
	CodePrivate       = "VPP00" // private patient or chargeable overseas visitor
	CodeArmedForces   = "13Q"   // NHS England armed forces commissioning hub
	CodeNotApplicable = "X98"   // not applicable: not an English commissioner
	CodeNotKnown      = "Q99"   // residence (and so commissioner) not known
)

// Assigner applies the CAM rules against reference data. It only reads the
// Reference, so one Assigner is safe for concurrent use.
type Assigner struct {
	ref *refdata.Reference
}

// NewAssigner returns an Assigner over ref.
func NewAssigner(ref *refdata.Reference) *Assigner { return &Assigner{ref: ref} }

// Assign returns the commissioner responsible for act. It never fails: when
// nothing applies the result is Q99, rule CAM-NONE.
func (a *Assigner) Assign(act *dmicv1.DeidentifiedActivity) *dmicv1.Assignment {
	if act == nil {
		return result(CodeNotKnown, MethodNotAssigned, TypeUnknown, RuleNone)
	}

	// 1. Private patients pay for themselves.
	if strings.TrimSpace(act.GetAdministrativeCategoryCode()) == "02" {
		return result(CodePrivate, MethodPrivatePatient, TypePrivate, RulePrivatePatient)
	}

	// 2. Chargeable overseas visitors (3 hotel fees, 4 all fees) are billed,
	// not commissioned. Exempt visitors (1, 2) fall through to the
	// population rules, which end at the host commissioner.
	switch strings.TrimSpace(act.GetOverseasVisitorStatusCode()) {
	case "3", "4":
		return result(CodePrivate, MethodNonReciprocal, TypePrivate, RuleOverseas)
	}

	practice, practiceOK := a.practice(act)
	// Registered with an English practice: a sub-ICB's, or an armed-forces one.
	english := practiceOK && (a.isSubICB(practice.Commissioner) || practice.Commissioner == CodeArmedForces)

	// 3. Devolved administrations. A Welsh practice (commissioner 7A*, a
	// Welsh LHB) is its LHB's responsibility wherever the patient lives; a
	// resident of Wales, Scotland or Northern Ireland is the devolved
	// administration's unless registered with an English practice (the
	// England-Wales cross-border rule of Who Pays?: registration decides).
	if practiceOK && strings.HasPrefix(practice.Commissioner, "7A") {
		return result(practice.Commissioner, MethodDevolved, TypeDevolved, RuleDevolved)
	}
	if devolved(act.GetResidence().GetCountry()) && !english {
		return result(CodeNotApplicable, MethodDevolved, TypeDevolved, RuleDevolved)
	}

	// 4. The GP practice of registration: armed-forces practices go to the
	// NHS England hub, others to their sub-ICB.
	if practiceOK {
		if practice.Commissioner == CodeArmedForces {
			return result(CodeArmedForces, MethodMilitary, TypeNHSE, RuleMilitary)
		}
		if a.isSubICB(practice.Commissioner) {
			return result(practice.Commissioner, MethodPractice, TypeSubICB, RulePractice)
		}
	}

	// 5. The sub-ICB of residence, from the postcode.
	if s := act.GetResidence().GetSubIcb(); s != "" {
		return result(s, MethodPostcode, TypeSubICB, RuleResidence)
	}

	// 6. The provider's host: the sub-ICB where the trust is.
	if s := a.host(act.GetProviderCode()); s != "" {
		return result(s, MethodHost, TypeSubICB, RuleHost)
	}

	// 7. Whatever the provider said, normalised.
	if c := a.suppliedCode(act.GetSubmittedCommissionerCode()); c != "" {
		t := TypeOther
		if a.isSubICB(c) {
			t = TypeSubICB
		}
		return result(c, MethodSupplied, t, RuleSupplied)
	}

	return result(CodeNotKnown, MethodNotAssigned, TypeUnknown, RuleNone)
}

func result(code, method, typ, rule string) *dmicv1.Assignment {
	return &dmicv1.Assignment{CommissionerCode: code, AssignmentMethod: method, CommissionerType: typ, RuleId: rule}
}

// practice finds the patient's GP practice, open on the activity date (or,
// with no activity date, open now): a practice that has since closed still
// was the patient's practice for earlier activity.
func (a *Assigner) practice(act *dmicv1.DeidentifiedActivity) (refdata.Practice, bool) {
	code := act.GetDemographics().GetGeneralMedicalPracticeCode()
	if code == "" || a.ref == nil {
		return refdata.Practice{}, false
	}
	p, ok := a.ref.Practice(code)
	if !ok {
		return refdata.Practice{}, false
	}
	if d := act.GetActivityDate(); d != "" {
		return p, p.OpenOn(d)
	}
	return p, p.Active()
}

func (a *Assigner) isSubICB(code string) bool {
	if a.ref == nil || code == "" {
		return false
	}
	_, ok := a.ref.SubICBByCode(code)
	return ok
}

// host returns the sub-ICB of the provider's trust headquarters postcode.
// Site postcodes would be better but the ODS site file (ets) is not loaded.
func (a *Assigner) host(provider string) string {
	if a.ref == nil || strings.TrimSpace(provider) == "" {
		return ""
	}
	t, ok := a.ref.Trust(provider)
	if !ok || t.Postcode == "" {
		return ""
	}
	area, ok := a.ref.Postcode(t.Postcode)
	if !ok {
		return ""
	}
	return area.SubICB
}

func devolved(country string) bool {
	return strings.HasPrefix(country, "W92") || strings.HasPrefix(country, "S92") || strings.HasPrefix(country, "N92")
}

// suppliedCode normalises a provider-supplied commissioner code: upper case,
// trimmed, and a 5-character code made of a known sub-ICB code and the "00"
// suffix cut to the sub-ICB (36L00 -> 36L; XMD00 stays). The default codes
// Q99 and X98 are not commissioners and give "".
func (a *Assigner) suppliedCode(s string) string {
	c := strings.ToUpper(strings.TrimSpace(s))
	if len(c) == 5 && strings.HasSuffix(c, "00") && a.isSubICB(c[:3]) {
		c = c[:3]
	}
	switch c {
	case CodeNotKnown, CodeNotApplicable:
		return ""
	}
	return c
}
