package validation

import (
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/record"
)

// Validator checks records. It is safe for concurrent use.
type Validator struct {
	now func() time.Time
	loc *time.Location
}

// Option configures a Validator.
type Option func(*Validator)

// WithClock sets the clock that decides which dates are in the future.
func WithClock(now func() time.Time) Option {
	return func(v *Validator) {
		if now != nil {
			v.now = now
		}
	}
}

// WithLocation sets the time zone whose calendar date is "today" (default
// Europe/London: an activity dated today in England is not in the future,
// even at 00:30 BST when UTC is still on yesterday).
func WithLocation(loc *time.Location) Option {
	return func(v *Validator) {
		if loc != nil {
			v.loc = loc
		}
	}
}

// New returns a Validator with the real clock and the Europe/London calendar.
func New(opts ...Option) *Validator {
	v := &Validator{now: time.Now, loc: time.UTC}
	// Without tzdata on the host the calendar is UTC's, which is at most a
	// day behind London's: a record dated "today" after midnight BST could
	// then be flagged as future for up to an hour.
	if london, err := time.LoadLocation("Europe/London"); err == nil {
		v.loc = london
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

// HasErrors reports whether any failure is an error (rather than a warning).
func HasErrors(fs []*dmicv1.Failure) bool {
	for _, f := range fs {
		if f.GetSeverity() == dmicv1.Severity_SEVERITY_ERROR {
			return true
		}
	}
	return false
}

type getter func(*dmicv1.CommissioningRecord) string

type namedField struct {
	name string
	get  getter
}

// Required fields: every record; every record that is not a delete; and per
// dataset for records that are not deletes.
var (
	requiredAlways = []namedField{
		{"cds_unique_identifier", (*dmicv1.CommissioningRecord).GetCdsUniqueIdentifier},
		{"provider_code", (*dmicv1.CommissioningRecord).GetProviderCode},
	}
	requiredUnlessDelete = []namedField{
		{"person_birth_date", birthDate},
	}
	requiredByDataset = [...][]namedField{
		dmicv1.Dataset_DATASET_APC: {
			{"cds_type", func(r *dmicv1.CommissioningRecord) string { return r.GetApc().GetCdsType() }},
			{"start_date_episode", startDateEpisode},
			{"admission_method_code", func(r *dmicv1.CommissioningRecord) string { return r.GetApc().GetAdmissionMethodCode() }},
			{"treatment_function_code", func(r *dmicv1.CommissioningRecord) string { return r.GetApc().GetTreatmentFunctionCode() }},
		},
		dmicv1.Dataset_DATASET_OUTPATIENT: {
			{"attendance_identifier", func(r *dmicv1.CommissioningRecord) string { return r.GetOutpatient().GetAttendanceIdentifier() }},
			{"appointment_date", appointmentDate},
			{"attended_or_did_not_attend_code", attendedCode},
			{"treatment_function_code", func(r *dmicv1.CommissioningRecord) string { return r.GetOutpatient().GetTreatmentFunctionCode() }},
		},
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: {
			{"ec_attendance_identifier", func(r *dmicv1.CommissioningRecord) string {
				return r.GetEmergencyCare().GetEcAttendanceIdentifier()
			}},
			{"ec_arrival_date", arrivalDate},
			{"ec_department_type", departmentType},
		},
		dmicv1.Dataset_DATASET_LOCAL_FLOW: {
			{"activity_date", localActivityDate},
			{"point_of_delivery_code", func(r *dmicv1.CommissioningRecord) string { return r.GetLocalFlow().GetPointOfDeliveryCode() }},
		},
	}
	// Activity date fields, checked by DATE-001 and DATE-002.
	dateFields = [...][]namedField{
		dmicv1.Dataset_DATASET_APC: {
			{"start_date_hospital_provider_spell", func(r *dmicv1.CommissioningRecord) string {
				return r.GetApc().GetStartDateHospitalProviderSpell()
			}},
			{"start_date_episode", startDateEpisode},
			{"end_date_episode", endDateEpisode},
			{"discharge_date_hospital_provider_spell", func(r *dmicv1.CommissioningRecord) string {
				return r.GetApc().GetDischargeDateHospitalProviderSpell()
			}},
		},
		dmicv1.Dataset_DATASET_OUTPATIENT:     {{"appointment_date", appointmentDate}},
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: {{"ec_arrival_date", arrivalDate}, {"ec_departure_date", func(r *dmicv1.CommissioningRecord) string { return r.GetEmergencyCare().GetEcDepartureDate() }}},
		dmicv1.Dataset_DATASET_LOCAL_FLOW:     {{"activity_date", localActivityDate}},
	}
)

func birthDate(r *dmicv1.CommissioningRecord) string { return r.GetPatient().GetPersonBirthDate() }
func startDateEpisode(r *dmicv1.CommissioningRecord) string {
	return r.GetApc().GetStartDateEpisode()
}
func endDateEpisode(r *dmicv1.CommissioningRecord) string { return r.GetApc().GetEndDateEpisode() }
func appointmentDate(r *dmicv1.CommissioningRecord) string {
	return r.GetOutpatient().GetAppointmentDate()
}
func attendedCode(r *dmicv1.CommissioningRecord) string {
	return r.GetOutpatient().GetAttendedOrDidNotAttendCode()
}
func arrivalDate(r *dmicv1.CommissioningRecord) string {
	return r.GetEmergencyCare().GetEcArrivalDate()
}
func departmentType(r *dmicv1.CommissioningRecord) string {
	return r.GetEmergencyCare().GetEcDepartmentType()
}
func localActivityDate(r *dmicv1.CommissioningRecord) string {
	return r.GetLocalFlow().GetActivityDate()
}

// Failure messages. They describe the problem and never hold the value.
const (
	msgRequired         = "required field is missing"
	msgNHSFormat        = "NHS number must be exactly 10 digits"
	msgNHSCheckDigit    = "NHS number fails the Modulus 11 check digit"
	msgNHSRepeated      = "NHS number is a single digit repeated"
	msgNHSMissing       = "NHS number is missing although the NHS number status indicator is 01 (verified)"
	msgBirthFormat      = "date of birth is not a valid YYYY-MM-DD date"
	msgBirthEarly       = "date of birth is before " + earliestBirthDateString
	msgBirthAfter       = "date of birth is after the activity date"
	msgDateFormat       = "not a valid YYYY-MM-DD date"
	msgDateFuture       = "date is in the future"
	msgEpisodeOrder     = "episode start date is after the episode end date"
	msgApplicable       = "not an RFC 3339 date-time"
	msgArrivalTime      = "not a 24-hour time HH:MM"
	msgPostcode         = "postcode is not in a valid UK postcode format"
	msgProvider         = "provider code must be 3 to 5 letters or digits"
	msgPractice         = "GP practice code is neither a letter and 5 digits nor a default code (V81999, V81998, V81997)"
	msgAdmissionMethod  = "not an ADMISSION METHOD CODE"
	msgAttended         = "not an ATTENDED OR DID NOT ATTEND CODE (0, 2, 3, 4, 5, 6, 7)"
	msgGender           = "not a PERSON GENDER CODE (0, 1, 2, 9, X)"
	msgAdminCategory    = "not an ADMINISTRATIVE CATEGORY CODE (01, 02, 03, 04)"
	msgCDSType          = "not a CDS TYPE of a finished admitted patient care episode (120, 130, 140)"
	msgDepartmentType   = "not an EMERGENCY CARE DEPARTMENT TYPE (01, 02, 03, 04)"
	msgUniqueIdentifier = "must be at most 35 characters of A-Z, a-z, 0-9 and '-'"
)

// failures collects a record's failures; a clean record allocates nothing.
type failures []*dmicv1.Failure

func (fs *failures) add(rule, field string, sev dmicv1.Severity, msg string) {
	*fs = append(*fs, &dmicv1.Failure{RuleId: rule, Field: field, Severity: sev, Message: msg})
}

func (fs *failures) err(rule, field, msg string) {
	fs.add(rule, field, dmicv1.Severity_SEVERITY_ERROR, msg)
}

func (fs *failures) warn(rule, field, msg string) {
	fs.add(rule, field, dmicv1.Severity_SEVERITY_WARNING, msg)
}

// Validate returns every failure (errors and warnings) of one record, nil
// when it is clean. d says which dataset's rules apply; unspecified means the
// dataset of the record's activity.
func (v *Validator) Validate(d dmicv1.Dataset, r *dmicv1.CommissioningRecord) []*dmicv1.Failure {
	if d == dmicv1.Dataset_DATASET_UNSPECIFIED {
		d = record.DatasetOf(r)
	}
	known := d >= dmicv1.Dataset_DATASET_APC && d <= dmicv1.Dataset_DATASET_LOCAL_FLOW
	isDelete := r.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_DELETE
	var fs failures

	// REQ-001
	for _, f := range requiredAlways {
		if f.get(r) == "" {
			fs.err(RuleRequired, f.name, msgRequired)
		}
	}
	if !isDelete {
		for _, f := range requiredUnlessDelete {
			if f.get(r) == "" {
				fs.err(RuleRequired, f.name, msgRequired)
			}
		}
		if known {
			for _, f := range requiredByDataset[d] {
				if f.get(r) == "" {
					fs.err(RuleRequired, f.name, msgRequired)
				}
			}
		}
	}

	// CDS-001, ORG-001
	if id := r.GetCdsUniqueIdentifier(); id != "" && !uniqueIdentifierValid(id) {
		fs.err(RuleUniqueIdentifier, "cds_unique_identifier", msgUniqueIdentifier)
	}
	if p := r.GetProviderCode(); p != "" && (len(p) < 3 || len(p) > 5 || !alnum(p)) {
		fs.err(RuleProviderCode, "provider_code", msgProvider)
	}
	if a := r.GetApplicableDateTime(); a != "" {
		if _, err := time.Parse(time.RFC3339, a); err != nil {
			fs.err(RuleApplicableDateTime, "cds_applicable_date_time", msgApplicable)
		}
	}

	// NHS-001..004
	pat := r.GetPatient()
	if nhs := pat.GetNhsNumber(); nhs != "" {
		switch nhsNumberRule(nhs) {
		case RuleNHSFormat:
			fs.err(RuleNHSFormat, "nhs_number", msgNHSFormat)
		case RuleNHSRepeated:
			fs.err(RuleNHSRepeated, "nhs_number", msgNHSRepeated)
		case RuleNHSCheckDigit:
			fs.err(RuleNHSCheckDigit, "nhs_number", msgNHSCheckDigit)
		}
	} else if pat.GetNhsNumberStatusIndicatorCode() == "01" {
		fs.err(RuleNHSMissingVerified, "nhs_number", msgNHSMissing)
	}

	// DATE-001, DATE-002, DATE-003
	today := 0
	if known {
		for _, f := range dateFields[d] {
			s := f.get(r)
			if s == "" {
				continue
			}
			n, ok := parseDate(s)
			if !ok {
				fs.err(RuleDateFormat, f.name, msgDateFormat)
				continue
			}
			if today == 0 {
				t := v.now().In(v.loc)
				today = t.Year()*10000 + int(t.Month())*100 + t.Day()
			}
			if n > today {
				fs.err(RuleDateFuture, f.name, msgDateFuture)
			}
		}
	}
	if d == dmicv1.Dataset_DATASET_APC {
		start, ok1 := parseDate(startDateEpisode(r))
		end, ok2 := parseDate(endDateEpisode(r))
		if ok1 && ok2 && start > end {
			fs.err(RuleEpisodeOrder, "start_date_episode", msgEpisodeOrder)
		}
	}

	// DOB-001..003
	if dob := pat.GetPersonBirthDate(); dob != "" {
		n, ok := parseDate(dob)
		switch {
		case !ok:
			fs.err(RuleBirthDateFormat, "person_birth_date", msgBirthFormat)
		case n < earliestBirthDate:
			fs.err(RuleBirthDateTooEarly, "person_birth_date", msgBirthEarly)
		default:
			if act, ok := parseDate(record.ActivityDate(r)); ok && n > act {
				fs.err(RuleBirthAfterActivity, "person_birth_date", msgBirthAfter)
			}
		}
	}

	// PC-001
	if pc := pat.GetPostcodeOfUsualAddress(); pc != "" && !postcodeValid(pc) {
		fs.err(RulePostcode, "postcode_of_usual_address", msgPostcode)
	}

	// ORG-002, CODE-003, CODE-004
	dem := r.GetDemographics()
	if gp := dem.GetGeneralMedicalPracticeCode(); gp != "" && !practiceCodeValid(gp) {
		fs.warn(RulePracticeCode, "general_medical_practice_code", msgPractice)
	}
	if g := dem.GetPersonGenderCode(); g != "" && !inList(genderCodes, g) {
		fs.warn(RuleGenderCode, "person_gender_code", msgGender)
	}
	if c := r.GetAdministrativeCategoryCode(); c != "" && !inList(adminCategories, c) {
		fs.err(RuleAdminCategory, "administrative_category_code", msgAdminCategory)
	}

	// Dataset code lists.
	switch d {
	case dmicv1.Dataset_DATASET_APC:
		apc := r.GetApc()
		if c := apc.GetCdsType(); c != "" && !inList(apcCDSTypes, c) {
			fs.err(RuleCDSType, "cds_type", msgCDSType)
		}
		if c := apc.GetAdmissionMethodCode(); c != "" && !inList(admissionMethods, c) {
			fs.err(RuleAdmissionMethod, "admission_method_code", msgAdmissionMethod)
		}
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		if c := attendedCode(r); c != "" && !inList(attendedCodes, c) {
			fs.err(RuleAttendedCode, "attended_or_did_not_attend_code", msgAttended)
		}
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		if c := departmentType(r); c != "" && !inList(departmentTypes, c) {
			fs.err(RuleDepartmentType, "ec_department_type", msgDepartmentType)
		}
		if t := r.GetEmergencyCare().GetEcArrivalTime(); t != "" && !timeValid(t) {
			fs.warn(RuleArrivalTime, "ec_arrival_time", msgArrivalTime)
		}
	}

	if len(fs) == 0 {
		return nil
	}
	return fs
}

// requiredFields lists the fields REQ-001 requires of a record of dataset d.
func requiredFields(d dmicv1.Dataset, isDelete bool) []string {
	var names []string
	for _, f := range requiredAlways {
		names = append(names, f.name)
	}
	if isDelete {
		return names
	}
	for _, f := range requiredUnlessDelete {
		names = append(names, f.name)
	}
	if d >= dmicv1.Dataset_DATASET_APC && d <= dmicv1.Dataset_DATASET_LOCAL_FLOW {
		for _, f := range requiredByDataset[d] {
			names = append(names, f.name)
		}
	}
	return names
}
