package cam

import (
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// Result is the outcome of CAM for one activity: a plain value the stage
// serialises (AppendProto, or Proto) into the record's Assignment.
//
// A Result is reused from one activity to the next (Decide resets it), so
// its trail is kept in a form that costs no allocation to build: each input
// is a list of pieces (codes from the activity and the reference data, and
// fixed words), joined into text only when the trail is written out.
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
	// OwnReasonCodes).
	ReasonCode, Reason, ServiceCategory string
	// CommissionerType and Method are the older, SUS-like labels
	// ("Sub-ICB", "Sub-ICB (Practice Mapped)").
	CommissionerType, Method string
	// Tables is the set of reference tables read (bit t for table t).
	Tables uint32

	// trail is the path through the flow chart, in order; the input of
	// each decision is the pieces of parts its spans name, joined.
	trail []decision
	parts []string
}

// decision is one question of the trail as Decide keeps it.
type decision struct {
	step, answer, basis string
	in                  why
}

// Decision is one question asked, its answer and the input that decided it.
type Decision struct {
	Step, Answer, Basis, Input string
}

// Trail is the path through the flow chart, in order, with each input's
// text. It allocates; the stage writes the trail out with AppendProto.
func (r *Result) Trail() []Decision {
	if len(r.trail) == 0 {
		return nil
	}
	out := make([]Decision, len(r.trail))
	for i := range r.trail {
		d := &r.trail[i]
		out[i] = Decision{Step: d.step, Answer: d.answer, Basis: d.basis, Input: r.input(d)}
	}
	return out
}

// Steps appends the step of each decision of the trail to dst, in order.
func (r *Result) Steps(dst []string) []string {
	for i := range r.trail {
		dst = append(dst, r.trail[i].step)
	}
	return dst
}

func (r *Result) inputLen(d *decision) int {
	n := 0
	for _, sp := range d.in.s[:d.in.n] {
		for _, p := range r.parts[sp.from:sp.to] {
			n += len(p)
		}
	}
	return n
}

func (r *Result) input(d *decision) string {
	var b strings.Builder
	b.Grow(r.inputLen(d))
	r.writeInput(&b, d)
	return b.String()
}

func (r *Result) writeInput(b *strings.Builder, d *decision) {
	for _, sp := range d.in.s[:d.in.n] {
		for _, p := range r.parts[sp.from:sp.to] {
			b.WriteString(p)
		}
	}
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

// followUps are the questions of a step asked again (by the basis it is
// asked on), which finds the commissioner the step's answer leads to.
var followUps = map[string]string{
	"responsible sub-ICB":                    "Is there a responsible sub-ICB location: the GP practice's, else the postcode of usual address's, else the provider's main site's (p.11-12)?",
	"responsible specialised hub":            "Is there an NHS England specialised hub for the GP practice, else the residence, else the provider's main site (p.14-15)?",
	"provider hub":                           "Is there an NHS England specialised hub holding the provider's contract (p.15, p.44-45)?",
	"responsible region":                     "Is there an NHS England region for the GP practice, else the residence, else the provider's main site (p.21-22)?",
	"registered with an English GP practice": "Is the overseas visitor registered with an English GP, or giving a UK address (OSV guidance, p.25)?",
}

// why is the input that decided a question: the spans of Result.parts that
// hold its text, in order. The pieces are strings that already exist (fixed
// words, codes of the activity and of the reference data), so building a
// why costs no allocation, and a why is small enough to pass by value.
type why struct {
	s [maxSpans]span
	n uint8
}

// span is parts[from:to] of a Result.
type span struct{ from, to uint16 }

// maxSpans bounds the spans of one why. Spans built one after another are
// merged, so most whys have one; a full why keeps its text by copying the
// pieces of what is added after its last span.
const maxSpans = 6

// w appends pieces to the trail's text and returns them as a why.
func (x *run) w(pieces ...string) why {
	r := x.r
	from := len(r.parts)
	r.parts = append(r.parts, pieces...)
	return why{s: [maxSpans]span{{uint16(from), uint16(len(r.parts))}}, n: 1}
}

// then is a, sep and b.
func (x *run) then(a why, sep string, b why) why {
	if sep != "" {
		a = x.join(a, x.w(sep))
	}
	return x.join(a, b)
}

// and is a followed by pieces.
func (x *run) and(a why, pieces ...string) why {
	return x.join(a, x.w(pieces...))
}

// join is a followed by b.
func (x *run) join(a, b why) why {
	for _, sp := range b.s[:b.n] {
		switch {
		case sp.from == sp.to:
		case a.n > 0 && a.s[a.n-1].to == sp.from:
			a.s[a.n-1].to = sp.to
		case int(a.n) < len(a.s):
			a.s[a.n] = sp
			a.n++
		default:
			// Full: copy the pieces after the last span, so they are one.
			r := x.r
			from := len(r.parts)
			last := a.s[a.n-1]
			r.parts = append(r.parts, r.parts[last.from:last.to]...)
			r.parts = append(r.parts, r.parts[sp.from:sp.to]...)
			a.s[a.n-1] = span{uint16(from), uint16(len(r.parts))}
		}
	}
	return a
}

// ask records a question and its answer.
func (x *run) ask(step string, yes bool, basis string, in ...why) {
	a := "No"
	if yes {
		a = "Yes"
	}
	x.add(step, a, basis, in...)
}

// note records a decision that is not a yes/no question.
func (x *run) note(step, answer string, in ...why) {
	x.add(step, answer, "", in...)
}

func (x *run) add(step, answer, basis string, in ...why) {
	x.r.trail = append(x.r.trail, decision{step: step, answer: answer, basis: basis})
	d := &x.r.trail[len(x.r.trail)-1]
	if len(in) == 1 {
		d.in = in[0]
		return
	}
	for i := range in {
		d.in = x.join(d.in, in[i])
	}
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
func (x *run) none(code string, in why) {
	r := x.r
	r.Step = "X"
	if n := len(r.trail); n > 0 {
		r.Step = r.trail[n-1].step
	}
	x.note("X", "No commissioner", in)
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
		return a.codes.code(comm, suffix), t.Reason, t.ServiceCategory
	}
	if o, ok := ownReasons[suffix]; ok {
		if comm == "" {
			return suffix, o.text, o.category
		}
		return a.codes.code(comm, suffix), o.text, o.category
	}
	if suffix == "X" {
		return "X", "Unable to assign Commissioner", ""
	}
	return suffix, "", ""
}

// codeCache holds the reason codes made up as commissioner + "_" + suffix
// (dmic's own reasons, and published texts under a code the table leaves
// out), so that each is built once per Assigner rather than once per
// record: the A&E reasons alone are a fifth of all activity. It is
// copy-on-write: readers take the current map without a lock.
type codeCache struct {
	m  atomic.Pointer[map[string]string]
	mu sync.Mutex
}

func (c *codeCache) code(comm, suffix string) string {
	var buf [48]byte
	k := append(append(append(buf[:0], comm...), '_'), suffix...)
	if m := c.m.Load(); m != nil {
		// The conversion in the index expression does not allocate.
		if s, ok := (*m)[string(k)]; ok {
			return s
		}
	}
	s := string(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	next := make(map[string]string, 1+mapLen(old))
	if old != nil {
		for key, v := range *old {
			next[key] = v
		}
	}
	next[s] = s
	c.m.Store(&next)
	return s
}

func mapLen(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
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
	if r.Tables == 0 {
		return nil
	}
	out := make([]string, 0, bits.OnesCount32(r.Tables))
	for t := table(0); t < numTables; t++ {
		if r.Tables&(1<<t) != 0 {
			out = append(out, a.vintages[t])
		}
	}
	return out
}

// Proto is the result as the record's Assignment on dmic.assigned and in the
// activity table: the decision, its version, date and reference vintages,
// without the trail. The trail is derived again when a record is explained
// (Explained; assign's ExplainAssignment): it is half an assigned record's
// bytes, on every hop after assign, and nothing downstream reads it
// (docs/commissioner-assignment.md, Explain).
func (a *Assigner) Proto(r *Result) *dmicv1.Assignment {
	return &dmicv1.Assignment{
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
}

// Explained is Proto with the trail: the path through the flow chart, each
// decision's step, answer and input (the question follows from the step:
// Question; Explain puts it back).
func (a *Assigner) Explained(r *Result) *dmicv1.Assignment {
	out := a.Proto(r)
	if len(r.trail) == 0 {
		return out
	}
	ds := make([]dmicv1.CamDecision, len(r.trail))
	out.Trail = make([]*dmicv1.CamDecision, len(r.trail))
	// Every input is a slice of one string: one allocation for the text.
	n := 0
	for i := range r.trail {
		n += r.inputLen(&r.trail[i])
	}
	var b strings.Builder
	b.Grow(n)
	for i := range r.trail {
		r.writeInput(&b, &r.trail[i])
	}
	text, at := b.String(), 0
	for i := range r.trail {
		d := &r.trail[i]
		end := at + r.inputLen(d)
		// Field by field: copying whole messages into the array would
		// run the GC's bulk write barrier over their internal state.
		ds[i].Step, ds[i].Answer, ds[i].Input = d.step, d.answer, text[at:end]
		if i > 0 && r.trail[i-1].step == d.step {
			// A step asked again is looking for the commissioner its
			// answer leads to: say so, or "C-5 No" would be followed by
			// "C-5 Yes" under the same question.
			ds[i].Question = followUps[d.basis]
		}
		out.Trail[i] = &ds[i]
		at = end
	}
	return out
}

// Field numbers of dmic.v1.Assignment (proto/dmic/v1/envelope.proto). TestAppendProtoIsProto holds AppendProto
// to proto.Marshal of Proto for every case of the table tests.
const (
	fCommissionerCode protowire.Number = 1
	fAssignmentMethod protowire.Number = 2
	fCommissionerType protowire.Number = 3
	fRuleID           protowire.Number = 4
	fCamVersion       protowire.Number = 5
	fStep             protowire.Number = 6
	fReasonCode       protowire.Number = 7
	fReason           protowire.Number = 8
	fServiceCategory  protowire.Number = 9
	fVintages         protowire.Number = 10
	// 11 is the trail, which is not sent (Proto).
	fCamDate protowire.Number = 12
)

// AppendProto appends the protobuf encoding of the result as an Assignment
// (the message's fields, without a tag or length) to b: the same message as
// Proto, written straight from the result, so that the stage allocates no
// message and no reflection on the way. It fails, appending nothing, only
// where proto.Marshal would: on text that is not UTF-8.
func (a *Assigner) AppendProto(b []byte, r *Result) ([]byte, error) {
	e := encoder{b: b}
	start := len(b)
	e.str(fCommissionerCode, r.Commissioner)
	e.str(fAssignmentMethod, r.Method)
	e.str(fCommissionerType, r.CommissionerType)
	e.b = append(e.b, tag(fRuleID))
	e.b = appendLen(e.b, len("CAM-")+len(r.Step))
	e.b = append(append(e.b, "CAM-"...), r.Step...)
	e.str(fCamVersion, r.Version)
	e.str(fStep, r.Step)
	e.str(fReasonCode, r.ReasonCode)
	e.str(fReason, r.Reason)
	e.str(fServiceCategory, r.ServiceCategory)
	for t := table(0); t < numTables; t++ {
		if r.Tables&(1<<t) != 0 {
			e.str(fVintages, a.vintages[t])
		}
	}
	e.str(fCamDate, r.Date)
	// proto.Marshal refuses a string that is not UTF-8; so must this, rather
	// than hand a record downstream that no one can decode. The text comes
	// from decoded fields and the reference data, so in practice this never
	// fails; when it does, Marshal names the field.
	if e.bad {
		if _, err := proto.Marshal(a.Proto(r)); err != nil {
			return b[:start], err
		}
	}
	return e.b, nil
}

// encoder appends fields and remembers whether a string it wrote was not
// UTF-8.
type encoder struct {
	b   []byte
	bad bool
}

func (e *encoder) str(num protowire.Number, s string) {
	if s == "" {
		return
	}
	e.b = appendLen(append(e.b, tag(num)), len(s))
	from := len(e.b)
	e.b = append(e.b, s...)
	e.check(e.b[from:])
}

func (e *encoder) check(text []byte) {
	if !e.bad && !utf8.Valid(text) {
		e.bad = true
	}
}

// tag is the one-byte tag of a length-delimited field numbered below 16
// (every field of Assignment).
func tag(num protowire.Number) byte { return byte(num)<<3 | byte(protowire.BytesType) }

// appendLen appends a length as a varint; most are under 128, one byte.
func appendLen(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return protowire.AppendVarint(b, uint64(n))
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
