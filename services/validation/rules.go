// Package validation checks provider records against the dmic data
// specification. Each broken rule is a Failure that names the rule and the
// field, never the field's value, so failures can be logged, returned to the
// provider and put on the rejected topic without leaking identifiers.
package validation

// SpecVersion is the version of the data specification these rules implement.
// It is stamped on every validated record.
const SpecVersion = "dmic-spec-2026.1"

// Rule ids. They are stable: providers, dashboards and dead letters refer to
// them, and docs/record-format.md explains each one.
const (
	RuleRequired            = "REQ-001"  // required field missing
	RuleNHSFormat           = "NHS-001"  // NHS number not 10 digits
	RuleNHSCheckDigit       = "NHS-002"  // NHS number fails Modulus 11
	RuleNHSRepeated         = "NHS-003"  // NHS number is one repeated digit
	RuleNHSMissingVerified  = "NHS-004"  // NHS number missing with status 01
	RuleBirthDateFormat     = "DOB-001"  // birth date not a valid date
	RuleBirthDateTooEarly   = "DOB-002"  // birth date before 1880-01-01
	RuleBirthAfterActivity  = "DOB-003"  // birth date after the activity date
	RuleDateFormat          = "DATE-001" // activity date field not a valid date
	RuleDateFuture          = "DATE-002" // activity date field in the future
	RuleEpisodeOrder        = "DATE-003" // apc episode start after its end
	RuleApplicableDateTime  = "DATE-004" // cds_applicable_date_time not RFC 3339
	RuleArrivalTime         = "TIME-001" // ec_arrival_time not HH:MM (warning)
	RulePostcode            = "PC-001"   // postcode not a valid format
	RuleProviderCode        = "ORG-001"  // provider code not an3-an5
	RulePracticeCode        = "ORG-002"  // GP practice code not valid (warning)
	RuleAdmissionMethod     = "CODE-001" // admission method not in the code list
	RuleAttendedCode        = "CODE-002" // attended or did not attend not in the code list
	RuleGenderCode          = "CODE-003" // gender code not in the code list (warning)
	RuleAdminCategory       = "CODE-004" // administrative category not in the code list
	RuleCDSType             = "CODE-005" // apc CDS type not 120/130/140
	RuleDepartmentType      = "CODE-006" // emergency care department type not in the code list
	RuleUniqueIdentifier    = "CDS-001"  // CDS unique identifier too long or bad characters
	earliestBirthDate       = 18800101
	earliestBirthDateString = "1880-01-01"
)

// Code lists, from the NHS Data Dictionary (see the domain brief).
var (
	// ADMISSION METHOD CODE (HOSPITAL PROVIDER SPELL).
	admissionMethods = []string{"11", "12", "13", "21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "31", "32", "81", "82", "83"}
	// ATTENDED OR DID NOT ATTEND CODE.
	attendedCodes = []string{"0", "2", "3", "4", "5", "6", "7"}
	// PERSON GENDER CODE CURRENT (0, 1, 2, 9) and PERSON STATED GENDER CODE (X).
	genderCodes = []string{"0", "1", "2", "9", "X"}
	// ADMINISTRATIVE CATEGORY CODE.
	adminCategories = []string{"01", "02", "03", "04"}
	// CDS TYPE of a finished admitted patient care episode.
	apcCDSTypes = []string{"120", "130", "140"}
	// EMERGENCY CARE DEPARTMENT TYPE.
	departmentTypes = []string{"01", "02", "03", "04"}
	// GP practice default codes: unknown, not applicable, and not registered.
	practiceDefaults = []string{"V81999", "V81998", "V81997"}
)

func inList(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
