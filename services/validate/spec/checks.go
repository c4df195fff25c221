package spec

import (
	"strings"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/nhs"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// The fixed set of checks a specification's rules choose from. Adding a
// check is a code change; using one on another field, with other
// parameters, severity or message, is a specification change.
type checkKind uint8

const (
	chkMandatory checkKind = iota + 1
	chkRequired
	chkNHSFormat
	chkNHSCheckDigit
	chkNHSNotRepeated
	chkNHSStatus
	chkCodeList
	chkFormat
	chkDateNotBefore
	chkDateNotAfterActivity
	chkDateNotFuture
	chkDateTimeNotFuture
	chkDateOrder
	chkNotIn
	chkPracticeKnown
	chkUniqueInSubmission
	chkCDSUIDStructure
	chkMinInt
	chkServiceCodeInYear
	chkHRGValid
	chkServiceCodeNotRetired
	chkNoPatientIdentifier
)

// arity says how a check uses its rule's fields.
type arity uint8

const (
	// perField checks each named field on its own, and only when it has a value.
	perField arity = iota
	// byObligation is perField for the obligation checks: a field with no
	// value is what they look for, and no fields means every field of the
	// obligation.
	byObligation
	// pair compares two operands; the rule's failure names one field.
	pair
)

// param is a bit per Params field, to say which a check needs and allows.
type param uint16

const (
	pCodeList param = 1 << iota
	pFormat
	pLength
	pDate
	pValues
	pExcept
	pMin
	pStatuses
	pNumber
)

var paramNames = []struct {
	p    param
	name string
}{
	{pCodeList, "code_list"}, {pFormat, "format"}, {pLength, "length"}, {pDate, "date"}, {pValues, "values"},
	{pExcept, "except"}, {pMin, "min"}, {pStatuses, "statuses"}, {pNumber, "number"},
}

// paramsSet is the set of parameters p gives.
func paramsSet(p *Params) param {
	if p == nil {
		return 0
	}
	var s param
	if p.CodeList != "" {
		s |= pCodeList
	}
	if p.Format != "" {
		s |= pFormat
	}
	if p.Length != 0 {
		s |= pLength
	}
	if p.Date != "" {
		s |= pDate
	}
	if p.Values != nil {
		s |= pValues
	}
	if p.Except != nil {
		s |= pExcept
	}
	if p.Min != nil {
		s |= pMin
	}
	if p.Statuses != nil {
		s |= pStatuses
	}
	if p.Number != "" {
		s |= pNumber
	}
	return s
}

// checkDef describes one check: its name in specifications, how it uses
// fields, its parameters, and what it does, for the documentation.
type checkDef struct {
	name     string
	kind     checkKind
	arity    arity
	required param
	optional param
	// integer checks read integer fields; every other check reads text.
	integer bool
	doc     string
}

var checkDefs = []checkDef{
	{name: "mandatory", kind: chkMandatory, arity: byObligation,
		doc: "The field has a value. With no fields, every field whose obligation is mandatory. On a delete, only the fields marked as needed on a delete."},
	{name: "required", kind: chkRequired, arity: byObligation,
		doc: "The field has a value. With no fields, every required field that no other `required` rule names. Not checked on a delete."},
	{name: "nhs_format", kind: chkNHSFormat,
		doc: "Exactly 10 digits and nothing else: no spaces, hyphens or other separators (`943 476 5919` fails; send `9434765919`)."},
	{name: "nhs_check_digit", kind: chkNHSCheckDigit,
		doc: "A 10-digit value passes the Modulus 11 check: weights 10 to 2 on the first nine digits, check digit 11 − (sum mod 11), 11 read as 0, 10 never valid."},
	{name: "nhs_not_repeated", kind: chkNHSNotRepeated,
		doc: "A 10-digit value is not one digit repeated (such numbers pass Modulus 11)."},
	{name: "nhs_status", kind: chkNHSStatus, arity: pair, required: pStatuses | pNumber,
		doc: "Fields: the NHS number, then the status indicator. Fails when the status is one of `statuses` and the number is `missing` (or `present`, as `number` says)."},
	{name: "code_list", kind: chkCodeList, required: pCodeList,
		doc: "The value is a code of the code list `code_list` (exactly, case included)."},
	{name: "format", kind: chkFormat, required: pFormat, optional: pLength,
		doc: "The value has the format `format` (see Formats); `length` is the number of digits of the `digits` format."},
	{name: "date_not_before", kind: chkDateNotBefore, required: pDate,
		doc: "A valid date is not before `date`."},
	{name: "date_not_after_activity", kind: chkDateNotAfterActivity,
		doc: "A valid date is not after the record's activity date (apc `end_date_episode`, else `start_date_episode`; `appointment_date`; `ec_arrival_date`; `activity_date`). The same day passes."},
	{name: "date_not_future", kind: chkDateNotFuture,
		doc: "A valid date is not after today's date in England (Europe/London)."},
	{name: "date_time_not_future", kind: chkDateTimeNotFuture,
		doc: "A valid RFC 3339 date-time falls on a day that is not after today's date in England (Europe/London). For the CDS applicable date/time: it orders a record's revisions, so a revision dated in the future would outrank every later correction and delete of the record until that day."},
	{name: "date_order", kind: chkDateOrder, arity: pair,
		doc: "Fields: two dates. When both are valid dates, the first is not after the second; equal dates pass."},
	{name: "not_in", kind: chkNotIn, required: pValues,
		doc: "The value is not one of `values`."},
	{name: "practice_known", kind: chkPracticeKnown, optional: pExcept,
		doc: "The GP practice is in dmic's reference data (ODS epraccur). The default codes (`V81999`, `V81998`, `V81997`, `G9999981`) name no practice and are never looked up; nor are codes in `except`. Not checked where no reference data is loaded."},
	{name: "unique_in_submission", kind: chkUniqueInSubmission,
		doc: "No earlier record of the same submission has the same record id."},
	{name: "cds_uid_structure", kind: chkCDSUIDStructure, arity: pair,
		doc: "Fields: the CDS unique identifier, then the provider code. The identifier is `B`, the provider code (in any case: an ORGANISATION CODE written `rvr` is `RVR`), then at least one more character."},
	{name: "min_int", kind: chkMinInt, required: pMin, integer: true,
		doc: "The whole number is at least `min`. Not checked on a delete (an absent number reads 0)."},
	{name: "service_code_in_year", kind: chkServiceCodeInYear,
		doc: "The service code is in NHS England's list of service codes for the financial year (1 April to 31 March) of the record's CAM date, the date commissioner assignment applies at (CAM 2025/26 guidance, p.6): apc the spell's discharge date (the spell's start date for CDS types 180-200 or when there is no discharge date), outpatient `appointment_date`, emergency care `ec_arrival_date`, local flow `activity_date`. Not checked where no reference data is loaded, or the reference data has no list for that year (dmic's has 2024/25 and 2025/26), or the record has no such date."},
	{name: "hrg_valid", kind: chkHRGValid,
		doc: "The HRG is in the National Casemix Office's HRG4+ code list (Code to Group, 2020/21 to 2025/26) and in a grouper release in force on the record's activity date (apc `end_date_episode`, else `start_date_episode`; `appointment_date`; `ec_arrival_date`; `activity_date`): a code the list retired (its Valid_To) fails after that day, and a code first grouped later fails before its Valid_From. After the latest release its codes stay valid. Not checked where no reference data is loaded, or the activity date is missing or before the list's first release (2020-04-01)."},
	{name: "service_code_not_retired", kind: chkServiceCodeNotRetired,
		doc: "The service code's line in the list of the financial year of the record's CAM date (as `service_code_in_year`) has not ended before that date: its `Effective_To` is empty or on or after it. The year's list keeps some retired lines (the 2024/25 list, 26: `NCBPH26E` ended 2021-03-31), so such a code passes `service_code_in_year`, but commissioner assignment reads a line that ended before the year as no service line of the year (docs/commissioner-assignment.md, choice 21). Not checked where `service_code_in_year` is not, or the code is not in the year's list."},
	{name: "no_patient_identifier", kind: chkNoPatientIdentifier,
		doc: "The value holds none of the record's own patient identifiers: its NHS number (when 10 digits, not one digit repeated), its local patient identifier (when at least 6 letters and digits) or its postcode of usual address (not a ZZ99 pseudo-postcode). Case and any character but letters and digits are ignored on both sides (`B-RJ7-943-476-5919` holds `9434765919`). The date of birth is not searched for: dates belong in record ids, and a baby's date of birth is its admission date. The CDS UNIQUE IDENTIFIER must not contain the NHS number or local patient identifier (NHS Data Dictionary), and the record ids are kept after de-identification, where no identifier may be."},
}

func checkByName(name string) (checkDef, bool) {
	for _, c := range checkDefs {
		if c.name == name {
			return c, true
		}
	}
	return checkDef{}, false
}

// Integer fields, read as numbers so that checking them allocates nothing
// (record.Getter reads them as text). The compiler cross-checks the names
// against the record format.
var intFields = map[string]func(*dmicv1.CommissioningRecord) int64{
	"price_pence":    func(r *dmicv1.CommissioningRecord) int64 { return r.GetLocalFlow().GetPricePence() },
	"activity_count": func(r *dmicv1.CommissioningRecord) int64 { return r.GetLocalFlow().GetActivityCount() },
}

// canonicalSetters store the canonical form of a field whose format check
// passed. Only the postcode has one: downstream stages look postcodes up by
// their one-space form.
var canonicalSetters = map[string]func(*dmicv1.CommissioningRecord, string){
	"postcode_of_usual_address": func(r *dmicv1.CommissioningRecord, v string) {
		if p := r.GetPatient(); p != nil {
			p.PostcodeOfUsualAddress = v
		}
	},
}

// slot is one field a plan reads: each is read once per record, whatever
// the number of rules that check it.
type slot struct {
	name   string
	get    func(*dmicv1.CommissioningRecord) string
	getInt func(*dmicv1.CommissioningRecord) int64
	set    func(*dmicv1.CommissioningRecord, string)
}

// operand is a field as a rule uses it.
type operand struct {
	slot     int
	name     string
	onDelete bool
}

// rule is a compiled rule for one dataset.
type rule struct {
	id      string
	sev     dmicv1.Severity
	msg     string
	kind    checkKind
	ops     []operand
	report  int                 // operand a pair check's failure names
	codes   map[string]struct{} // a long code list
	list    []string            // a short one: a scan beats hashing
	format  formatKind
	length  int
	date    int
	values  []string // not_in values, nhs_status statuses, practice_known exceptions
	min     int64
	missing bool // nhs_status: fail when the number is missing (else present)
	unless  []string
	when    *when // nil: every record
}

// when is a compiled Condition: the slot of its field and the values that
// select a record.
type when struct {
	slot   int
	values []string
}

// plan is a specification's rules for one dataset, in document order, and
// the fields they read.
type plan struct {
	slots []slot
	rules []rule
}

// maxSlots bounds the fields of one plan: the record format has fewer
// fields per dataset, and the values of a record then fit on the stack.
const maxSlots = 64

// slotOf returns the index of field name's slot, adding it.
func (p *plan) slotOf(name string, get func(*dmicv1.CommissioningRecord) string) int {
	for i := range p.slots {
		if p.slots[i].name == name {
			return i
		}
	}
	sl := slot{name: name, get: get, getInt: intFields[name], set: canonicalSetters[name]}
	if sl.getInt != nil {
		// Integer fields are read as numbers, by the checks that want them:
		// their text form would be allocated.
		sl.get = nil
	}
	p.slots = append(p.slots, sl)
	return len(p.slots) - 1
}

// values are one record's field values, and its dates parsed on first use.
type values struct {
	s     [maxSlots]string
	dates [maxSlots]int32 // 0: not parsed yet; -1: not a date
}

func (vs *values) date(i int) (int, bool) {
	if vs.dates[i] == 0 {
		vs.dates[i] = -1
		if n, ok := parseDate(vs.s[i]); ok {
			vs.dates[i] = int32(n)
		}
	}
	return int(vs.dates[i]), vs.dates[i] > 0
}

// checkEnv is what checks need beyond the record; computed values are
// cached for the record.
type checkEnv struct {
	rec       *dmicv1.CommissioningRecord
	isDelete  bool
	dupLine   int64
	practices PracticeDirectory
	services  ServiceCodeDirectory
	hrgs      HRGDirectory
	clock     clock.Clock
	loc       *time.Location
	today     int
	activity  int // -1 until read; 0 when the record has no valid activity date
	// pids are the record's patient identifiers, prepared at the first
	// no_patient_identifier check (pidsReady) and searched for in each
	// field it names.
	pids      record.PatientIDs
	pidsReady bool
}

func (e *checkEnv) todayDate() int {
	if e.today == 0 {
		e.today = civilDate(e.clock.Now(), e.loc)
	}
	return e.today
}

func (e *checkEnv) activityDate() int {
	if e.activity < 0 {
		e.activity = 0
		if n, ok := parseDate(record.ActivityDate(e.rec)); ok {
			e.activity = n
		}
	}
	return e.activity
}

func (ru *rule) fail(fs []*dmicv1.Failure, field string) []*dmicv1.Failure {
	return append(fs, &dmicv1.Failure{RuleId: ru.id, Field: field, Severity: ru.sev, Message: ru.msg})
}

// failedOn reports whether one of the rules ids already failed on field.
func failedOn(fs []*dmicv1.Failure, ids []string, field string) bool {
	if len(ids) == 0 {
		return false
	}
	for _, f := range fs {
		if f.Field == field && inList(ids, f.RuleId) {
			return true
		}
	}
	return false
}

// run applies the plan to env.rec and returns its failures, nil when there
// are none. It allocates only for failures (and for a postcode it rewrites).
func (p *plan) run(env *checkEnv) []*dmicv1.Failure {
	var fs []*dmicv1.Failure
	r := env.rec
	var vs values
	for i := range p.slots {
		if get := p.slots[i].get; get != nil {
			vs.s[i] = get(r)
		}
	}
	for i := range p.rules {
		ru := &p.rules[i]
		if ru.when != nil && !inList(ru.when.values, vs.s[ru.when.slot]) {
			continue
		}
		switch ru.kind {
		case chkMandatory, chkRequired:
			for j := range ru.ops {
				op := &ru.ops[j]
				if env.isDelete && !op.onDelete || failedOn(fs, ru.unless, op.name) {
					continue
				}
				if vs.s[op.slot] == "" {
					fs = ru.fail(fs, op.name)
				}
			}
		case chkNHSStatus, chkDateOrder, chkCDSUIDStructure:
			field := ru.ops[ru.report].name
			if !failedOn(fs, ru.unless, field) && !ru.pairPasses(&vs) {
				fs = ru.fail(fs, field)
			}
		case chkMinInt:
			if env.isDelete {
				continue
			}
			for j := range ru.ops {
				op := &ru.ops[j]
				if p.slots[op.slot].getInt(r) < ru.min && !failedOn(fs, ru.unless, op.name) {
					fs = ru.fail(fs, op.name)
				}
			}
		default:
			for j := range ru.ops {
				op := &ru.ops[j]
				v := vs.s[op.slot]
				if v == "" || failedOn(fs, ru.unless, op.name) {
					continue
				}
				if !ru.passes(v, op.slot, &vs, env) {
					fs = ru.fail(fs, op.name)
					continue
				}
				if ru.kind == chkFormat && ru.format == fmtPostcode {
					if set := p.slots[op.slot].set; set != nil {
						if c, _ := nhs.NormalisePostcode(v); c != v {
							set(r, c)
							vs.s[op.slot] = c
						}
					}
				}
			}
		}
	}
	return fs
}

// pairPasses applies a comparing check.
func (ru *rule) pairPasses(vs *values) bool {
	a, b := ru.ops[0].slot, ru.ops[1].slot
	switch ru.kind {
	case chkNHSStatus:
		// a: the number, b: the status.
		num, st := vs.s[a], vs.s[b]
		return st == "" || !inList(ru.values, st) || (num == "") != ru.missing
	case chkDateOrder:
		x, ok1 := vs.date(a)
		y, ok2 := vs.date(b)
		return !ok1 || !ok2 || x <= y
	case chkCDSUIDStructure:
		// a: the identifier, b: the provider code. Either missing is
		// another rule's business.
		uid, prov := vs.s[a], vs.s[b]
		if uid == "" || prov == "" {
			return true
		}
		// An organisation code names the same organisation in either case
		// (commissioner assignment finds the provider's host from
		// `rvr` as from `RVR`), so a provider code sent in lower case does
		// not make its own identifier's structure wrong.
		return len(uid) > 1+len(prov) && uid[0] == 'B' && strings.EqualFold(uid[1:1+len(prov)], prov)
	}
	return true
}

// passes applies a per-field check to the present value v of slot i.
func (ru *rule) passes(v string, i int, vs *values, env *checkEnv) bool {
	switch ru.kind {
	case chkNHSFormat:
		return nhs.NumberWellFormed(v)
	case chkNHSCheckDigit:
		return !nhs.NumberWellFormed(v) || nhs.NumberCheckDigitOK(v)
	case chkNHSNotRepeated:
		return !nhs.NumberWellFormed(v) || !nhs.NumberRepeated(v)
	case chkCodeList:
		if ru.codes == nil {
			return inList(ru.list, v)
		}
		_, ok := ru.codes[v]
		return ok
	case chkFormat:
		if ru.format == fmtDate {
			_, ok := vs.date(i)
			return ok
		}
		return formatValid(ru.format, ru.length, v)
	case chkDateNotBefore:
		n, ok := vs.date(i)
		return !ok || n >= ru.date
	case chkDateNotAfterActivity:
		n, ok := vs.date(i)
		if !ok {
			return true
		}
		act := env.activityDate()
		return act == 0 || n <= act
	case chkDateNotFuture:
		n, ok := vs.date(i)
		return !ok || n <= env.todayDate()
	case chkDateTimeNotFuture:
		t, err := time.Parse(time.RFC3339, v)
		return err != nil || civilDate(t, env.loc) <= env.todayDate()
	case chkNotIn:
		return !inList(ru.values, v)
	case chkPracticeKnown:
		// A default code names no practice, so it is never looked up.
		return env.practices == nil || refdata.PracticeDefaultCode(v) || inList(ru.values, v) || env.practices.KnownPractice(v)
	case chkUniqueInSubmission:
		return env.dupLine <= 0
	case chkServiceCodeInYear:
		return env.serviceCodeListed(v)
	case chkHRGValid:
		return env.hrgValid(v)
	case chkServiceCodeNotRetired:
		return !env.serviceCodeRetired(v)
	case chkNoPatientIdentifier:
		if !env.pidsReady {
			env.pids, env.pidsReady = record.PrepareIDs(env.rec.GetPatient()), true
		}
		return !env.pids.HeldBy(v)
	}
	return true
}

// camDay is the record's CAM date (record.CAMDate) as yyyymmdd, and whether
// it is a date: the day the service code rules judge the code on.
func (e *checkEnv) camDay() (int, bool) {
	return parseDate(record.CAMDate(e.rec, record.ActivityDate(e.rec)))
}

// serviceCodeListed reports whether code is in the service code list of the
// financial year of the record's CAM date, or cannot be checked.
func (e *checkEnv) serviceCodeListed(code string) bool {
	if e.services == nil {
		return true
	}
	day, ok := e.camDay()
	if !ok {
		return true
	}
	listed, haveYear := e.services.ServiceCodeListed(financialYear(day), code)
	return listed || !haveYear
}

// hrgValid reports whether code is an HRG4+ code in force on the record's
// activity date, or cannot be checked.
func (e *checkEnv) hrgValid(code string) bool {
	if e.hrgs == nil {
		return true
	}
	valid, covered := e.hrgs.HRGValidOn(code, record.ActivityDate(e.rec))
	return valid || !covered
}

// serviceCodeRetired reports whether code's line in the list of the year of
// the record's CAM date ended (Effective_To) before that date; false when it
// cannot be told.
func (e *checkEnv) serviceCodeRetired(code string) bool {
	if e.services == nil {
		return false
	}
	day, ok := e.camDay()
	if !ok {
		return false
	}
	end, ok := parseDate(e.services.ServiceCodeEnd(financialYear(day), code))
	return ok && end < day
}

// financialYear names the financial year (1 April to 31 March) of a date
// yyyymmdd as the service code list writes it: 2025-06-15 is "25/26", and
// 2026-03-31 is still "25/26".
func financialYear(day int) string {
	y := day / 10000
	if day/100%100 < 4 {
		y--
	}
	return yearNames[(y%100+100)%100]
}

// yearNames are "00/01" to "99/00", built once so that naming a record's
// year allocates nothing; never written after.
var yearNames = func() (names [100]string) {
	for i := range names {
		names[i] = string([]byte{byte('0' + i/10), byte('0' + i%10), '/', byte('0' + (i+1)%100/10), byte('0' + (i+1)%10)})
	}
	return names
}()
