package cam

import (
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// Result is the outcome of CAM for one activity: a plain value the stage
// serialises (Proto) into the record's Assignment.
type Result struct {
	// Version is the CAM version applied ("2025/26"); Date the CAM date.
	Version, Date string
	// Step is the flow-chart step that decided ("C-6", "A&E-1", "EXCL").
	Step string
	// Commissioner is the code assigned; empty when none could be.
	Commissioner string
	// ReasonCode, Reason and ServiceCategory are the published reason
	// (e.g. "36L_C_5_1", "C-5 - Responsible sub-ICB Location", "12") or,
	// for steps the published table has no code for, dmic's (see
	// OwnReasons).
	ReasonCode, Reason, ServiceCategory string
	// CommissionerType and Method are the older, SUS-like labels
	// ("Sub-ICB", "Sub-ICB (Practice Mapped)").
	CommissionerType, Method string
	// Tables is the set of reference tables read (bit t for table t).
	Tables uint32
	// Trail is the path through the flow chart, in order.
	Trail []Decision
	trail [20]Decision
}

// Decision is one question asked, its answer and the input that decided it.
type Decision struct {
	Step, Answer, Basis, Input string
}

// Question is the flow chart's question at a step.
func Question(step string) string { return questions[step] }

var questions = map[string]string{
	"version": "Which CAM version applies on the CAM date?",
	"EXCL":    "Is the record a drug or device line (outside CAM)?",
	"A&E-1":   "Is the patient's usual place of residence in England?",
	"A":       "Is the patient liable for charges (private patient or chargeable overseas visitor)?",
	"B":       "Is the patient ordinarily resident in the UK (England, Wales, Scotland or Northern Ireland)?",
	"B-1":     "Is the activity record for highly-specialised care?",
	"B-2":     "Is the patient resident in an EEA member state with right of access to English highly-specialised services?",
	"B-3":     "Is the activity covered by a non-EEA/OSV reciprocal healthcare agreement or other international obligation?",
	"B-4":     "Is the patient registered with an English GP practice (part of the residential population)?",
	"WB-1":    "Is the patient registered with a Welsh border GP and usually resident in the cross-border protocol area?",
	"WB-2":    "Is the patient registered with an English GP and usually resident in the cross-border protocol area?",
	"WB-3":    "Is the patient's usual place of residence in England?",
	"C":       "Is the activity record for specialised or highly-specialised care?",
	"C-1":     "Did the patient receive a highly-specialised service described in Appendix C?",
	"WB-10":   "Is the patient registered with a Welsh border GP and resident in the cross-border protocol area?",
	"C-3":     "Has the patient been referred via RAS?",
	"C-0":     "Is the activity record for specialised or highly-specialised care?",
	"C-0a":    "Is the service a red/blue service?",
	"C-0b":    "Which NHS England specialised hub is responsible for the patient's GP practice (amber service)?",
	"C-2":     "Does NHS England have a contract with the specialised service provider?",
	"D":       "Is the activity for secondary dental care?",
	"E":       "Is the patient part of the eligible health and justice population?",
	"F":       "Is the activity a public health service of the Section 7a agreement?",
	"H":       "Is it other public health activity?",
	"I":       "Is the activity for infertility treatment?",
	"I-1":     "Does the activity meet NHS England eligibility for armed forces?",
	"J":       "Is the patient registered with an English GP practice that has 13Q as parent code in epraccur?",
	"C-5":     "Is the service a specialised green service?",
	"C-6":     "Is there a signed delegation agreement between the ICB and NHS England in place?",
	"X":       "Can a commissioner be determined?",
}

// ask records a question and its answer.
func (x *run) ask(step string, yes bool, basis, input string) {
	a := "No"
	if yes {
		a = "Yes"
	}
	x.add(Decision{Step: step, Answer: a, Basis: basis, Input: input})
}

// note records a decision that is not a yes/no question.
func (x *run) note(step, answer, input string) {
	x.add(Decision{Step: step, Answer: answer, Input: input})
}

func (x *run) add(d Decision) {
	x.r.Trail = append(x.r.Trail, d)
}

// assign sets the result: commissioner comm by the reason of suffix.
func (x *run) assign(step, comm, suffix, typ, method string) {
	r := x.r
	r.Step, r.Commissioner, r.CommissionerType, r.Method = step, comm, typ, method
	r.ReasonCode, r.Reason, r.ServiceCategory = x.a.reason(comm, suffix)
	r.Tables |= 1 << tReasons
}

// none ends without a commissioner, by a published fallback reason
// ("C_2_X", "D_X", "X").
func (x *run) none(code, why string) {
	r := x.r
	r.Step = "X"
	if n := len(r.Trail); n > 0 {
		r.Step = r.Trail[n-1].Step
	}
	x.note("X", "No commissioner", why)
	r.Commissioner, r.CommissionerType, r.Method = "", TypeUnknown, "Not Assigned"
	r.ReasonCode, r.Reason, r.ServiceCategory = x.a.reason("", code)
	r.Tables |= 1 << tReasons
}

// reason finds the reason of commissioner comm and suffix: the published
// row; else, for a commissioner the published table leaves out (it has
// C-6 rows for only some sub-ICBs), the published text of the suffix under
// the published code pattern; else dmic's own reason (OwnReasons) for the
// steps the published table has no code for.
func (a *Assigner) reason(comm, suffix string) (code, text, category string) {
	if a.ref != nil {
		if r, ok := a.ref.Reason(comm, suffix); ok {
			return r.Code, r.Reason, r.ServiceCategory
		}
	}
	if t, ok := a.templates[suffix]; ok {
		return comm + "_" + suffix, t.Reason, t.ServiceCategory
	}
	if o, ok := ownReasons[suffix]; ok {
		if comm == "" {
			return suffix, o.text, o.category
		}
		return comm + "_" + suffix, o.text, o.category
	}
	if suffix == "X" {
		return "X", "Unable to assign Commissioner", ""
	}
	return suffix, "", ""
}

type ownReason struct{ text, category string }

// ownReasons are dmic's reasons for the steps that end in a commissioner
// but have no code in NHS England's published reason table (which covers
// C-0b, C-2, C-5, C-6, D, E, F and J). They follow its pattern:
// commissioner, step, number. See docs/commissioner-assignment.md.
var ownReasons = map[string]ownReason{
	"A_1":     {"A - Private Patient/Chargeable Overseas Visitor (VPP00)", ""},
	"B_2_1":   {"B-2 - EEA resident, highly specialised care: NHS England Specialised Commissioning Hub (provider)", "21"},
	"B_3_1":   {"B-3 - Overseas visitor covered by a reciprocal agreement: Responsible sub-ICB Location", "12"},
	"B_3_2":   {"B-3 - Overseas visitor covered by a reciprocal agreement: Host sub-ICB Location", "12"},
	"B_4_1":   {"B-4 - Overseas visitor registered with an English GP: Responsible sub-ICB Location", "12"},
	"B_4_2":   {"B-4 - Overseas visitor not registered with an English GP: Host sub-ICB Location", "12"},
	"C_1":     {"C - Devolved administration resident, not specialised: Health Board / LHB / LCG of residence", ""},
	"C_2":     {"C - Welsh border GP patient, not specialised: Local Health Board of the GP practice", ""},
	"C_1_1":   {"C-1 - Highly specialised (pre-1991) service: NHS England Specialised Commissioning Hub (provider)", "21"},
	"C_3_2":   {"C-3 - Welsh border patient not referred via RAS: NHS England Specialised Commissioning Hub (provider)", "21"},
	"WB_10_1": {"WB-10 - Devolved resident, specialised care: WHSSC / NHS Scotland NSD / NI commissioner", ""},
	"H_1":     {"H - Other public health activity: Responsible Local Authority", ""},
	"I_1_1":   {"I-1 - Infertility treatment, armed forces eligible: NHS England Armed Forces Commissioning Hub", "61"},
	"I_1_2":   {"I-1 - Infertility treatment, not armed forces eligible: Responsible sub-ICB Location", "12"},
	"AE_1_1":  {"A&E - Responsible sub-ICB Location", "12"},
	"AE_1_2":  {"A&E-1 - Not usually resident in England: Host sub-ICB Location", "12"},
	"EXCL_1":  {"Excluded - drug or device line: CAM not applied, provider's commissioner kept", ""},
}

// OwnReasonCodes lists the suffixes of dmic's own reasons, for the docs test.
func OwnReasonCodes() []string {
	out := make([]string, 0, len(ownReasons))
	for k := range ownReasons {
		out = append(out, k)
	}
	return out
}

// Reference tables a result can read.
type table uint8

const (
	tPractices table = iota
	tPostcodes
	tSubICBs
	tTrusts
	tServiceCodes
	tReasons
	tDirect
	tJustice
	tArmedForces
	tPseudo
	tDevolved
	tWales
	tScotland
	numTables
)

var tableFiles = [numTables]string{
	refdata.PracticesFile, "onspd.csv", refdata.SubICBFile, refdata.TrustsFile,
	refdata.ServiceCodesFile, refdata.ReasonsFile, refdata.DirectCommissionerFile,
	refdata.JusticeFacilitiesFile, refdata.ArmedForcesFile, refdata.PseudoPostcodesFile,
	refdata.DevolvedFile, refdata.WalesLHBFile, refdata.ScottishBoardsFile,
}

// Vintages lists "file=vintage" for each table the result read.
func (a *Assigner) Vintages(r *Result) []string {
	var out []string
	for t := table(0); t < numTables; t++ {
		if r.Tables&(1<<t) != 0 {
			out = append(out, a.vintages[t])
		}
	}
	return out
}

// Proto is the result as the record's Assignment.
func (a *Assigner) Proto(r *Result) *dmicv1.Assignment {
	out := &dmicv1.Assignment{
		CommissionerCode:  r.Commissioner,
		AssignmentMethod:  r.Method,
		CommissionerType:  r.CommissionerType,
		RuleId:            "CAM-" + r.Step,
		CamVersion:        r.Version,
		Step:              r.Step,
		ReasonCode:        r.ReasonCode,
		Reason:            r.Reason,
		ServiceCategory:   r.ServiceCategory,
		ReferenceVintages: a.Vintages(r),
		CamDate:           r.Date,
	}
	if len(r.Trail) > 0 {
		ds := make([]dmicv1.CamDecision, len(r.Trail))
		out.Trail = make([]*dmicv1.CamDecision, len(r.Trail))
		// The question is not stored: it follows from the step (Question),
		// and Explain puts it back.
		for i, d := range r.Trail {
			ds[i] = dmicv1.CamDecision{Step: d.Step, Answer: d.Answer, Input: d.Input}
			out.Trail[i] = &ds[i]
		}
	}
	return out
}

// Explain renders a result's trail as text lines, for dmicctl explain and logs.
func Explain(r *dmicv1.Assignment) string {
	var b strings.Builder
	b.WriteString("CAM " + r.GetCamVersion() + " at " + r.GetCamDate() + ": " + orNone(r.GetCommissionerCode()) +
		" by step " + r.GetStep() + ", reason " + r.GetReasonCode() + " (" + r.GetReason() + "), service category " + orNone(r.GetServiceCategory()) + "\n")
	for _, d := range r.GetTrail() {
		q := d.GetQuestion()
		if q == "" {
			q = Question(d.GetStep())
		}
		b.WriteString("  " + d.GetStep() + "  " + q + "  -> " + d.GetAnswer() + "  [" + d.GetInput() + "]\n")
	}
	for _, v := range r.GetReferenceVintages() {
		b.WriteString("  ref " + v + "\n")
	}
	return b.String()
}
