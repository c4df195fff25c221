package synth

// Code tables the generator draws from. They are small, hand-picked sets of
// real-format codes (NHS Data Dictionary domains, ICD-10, OPCS-4, HRG4+,
// SNOMED CT) chosen so that a record reads plausibly to an analyst: a cataract
// is an elective ophthalmology day case with C751, a hip fracture an emergency
// trauma admission of an older patient. Exact clinical grouping is not the point.

import "github.com/dmic-nhs/dmic/services/internal/nhs"

// apcCase is one kind of admitted patient care episode.
type apcCase struct {
	cdsType        string // 120 birth, 130 general, 140 delivery
	tfc, icd, opcs string
	hrg            string
	minAge, maxAge int  // years at the activity date
	sex            byte // '1', '2', or 0 for either
	elective       bool
	dayCase        bool
	weight         int
}

var apcCases = []apcCase{
	{"130", "300", "J189", "", "DZ11R", 18, 99, 0, false, false, 10},
	{"130", "320", "I219", "K634", "EB10A", 35, 99, 0, false, false, 5},
	{"130", "100", "K358", "H011", "FF37D", 5, 90, 0, false, false, 4},
	{"130", "110", "S720", "W461", "HT12B", 60, 99, 0, false, false, 4},
	{"130", "110", "M161", "W371", "HN12A", 45, 95, 0, true, false, 4},
	{"130", "130", "H251", "C751", "BZ34B", 50, 95, 0, true, true, 6},
	{"130", "300", "N390", "", "LA04S", 18, 99, 0, false, false, 5},
	{"130", "300", "L039", "", "JD07K", 18, 99, 0, false, false, 3},
	{"130", "300", "I639", "", "AA35D", 40, 99, 0, false, false, 3},
	{"130", "300", "J441", "", "DZ65H", 40, 99, 0, false, false, 4},
	{"130", "300", "R072", "", "EB12C", 18, 99, 0, false, false, 4},
	{"130", "420", "J219", "", "PD12C", 0, 1, 0, false, false, 3},
	{"130", "420", "R509", "", "PW20C", 0, 15, 0, false, false, 3},
	{"140", "501", "O800", "R241", "NZ30A", 16, 45, '2', false, false, 4},
	{"120", "420", "Z380", "", "PB03Z", 0, 0, 0, false, false, 2},
	{"130", "502", "N920", "Q073", "MA07E", 30, 60, '2', true, false, 2},
	{"130", "100", "K573", "H229", "FE32Z", 40, 90, 0, true, true, 5},
	{"130", "101", "N40X", "M653", "LB25E", 50, 90, '1', true, false, 2},
}

// opClinic is one outpatient treatment function, with the procedure done in
// clinic on a minority of attendances.
type opClinic struct {
	tfc            string
	minAge, maxAge int
	sex            byte
	opcs, procHRG  string // in-clinic procedure, "" when the clinic does none
	weight         int
}

var opClinics = []opClinic{
	{"100", 16, 99, 0, "H251", "FE30Z", 8},
	{"101", 18, 99, 0, "M459", "LB72A", 4},
	{"110", 5, 99, 0, "W903", "HN26A", 10},
	{"120", 0, 99, 0, "E036", "CA25A", 5},
	{"130", 0, 99, 0, "C794", "BZ87A", 9},
	{"300", 16, 99, 0, "", "", 8},
	{"320", 18, 99, 0, "", "", 6},
	{"330", 0, 99, 0, "S091", "JC43C", 6},
	{"340", 16, 99, 0, "", "", 4},
	{"400", 16, 99, 0, "", "", 3},
	{"420", 0, 15, 0, "", "", 6},
	{"501", 16, 45, '2', "", "", 6},
	{"502", 16, 90, '2', "Q181", "MA32Z", 5},
}

// ecComplaints are ECDS chief complaint SNOMED CT concept ids.
var ecComplaints = []string{
	"29857009",  // chest pain
	"21522001",  // abdominal pain
	"267036007", // dyspnoea
	"25064002",  // headache
	"271594007", // syncope
	"422587007", // nausea
	"161891005", // backache
	"386661006", // fever
	"49727002",  // cough
}

// ecHRGs are emergency medicine HRGs (VB01Z..VB11Z); department types 03 and
// 04 use the lower-acuity end.
var ecHRGs = []string{"VB01Z", "VB02Z", "VB03Z", "VB04Z", "VB05Z", "VB06Z", "VB07Z", "VB08Z", "VB09Z", "VB10Z", "VB11Z"}

// lfPods are local-flow points of delivery.
var lfPods = []struct {
	pod        string
	tfc, hrg   string
	minP, maxP int64 // price range, pence
	weight     int
}{
	{"OPFA", "110", "WF01B", 12000, 22000, 30},
	{"OPFU", "300", "WF01A", 7000, 14000, 35},
	{"OPPROC", "330", "JC43C", 15000, 40000, 8},
	{"EL", "110", "HN12A", 600000, 900000, 4},
	{"DC", "130", "BZ34B", 80000, 140000, 8},
	{"NEL", "300", "DZ11R", 200000, 600000, 8},
	{"AE", "180", "VB08Z", 9000, 25000, 6},
	{"DRUG", "", "", 5000, 250000, 1},
}

// Demographic and administrative distributions: each entry is value, weight.
type weighted struct {
	v string
	w int
}

var ethnicCategories = []weighted{
	{"A", 700}, {"B", 20}, {"C", 60}, {"D", 8}, {"E", 8}, {"F", 6}, {"G", 8},
	{"H", 40}, {"J", 20}, {"K", 10}, {"L", 20}, {"M", 20}, {"N", 30}, {"P", 8},
	{"R", 10}, {"S", 20}, {"Z", 30}, {"99", 10},
}

var genderCodes = []weighted{{"1", 490}, {"2", 500}, {"9", 5}, {"0", 5}}

var electiveAdmissionMethods = []weighted{{"11", 50}, {"12", 40}, {"13", 10}}

var emergencyAdmissionMethods = []weighted{
	{"21", 55}, {"22", 15}, {"23", 2}, {"24", 5}, {"2A", 3}, {"2B", 5}, {"2D", 5},
}

var dischargeDestinations = []weighted{{"19", 90}, {"54", 3}, {"51", 3}, {"29", 2}, {"65", 2}}

var attendedCodes = []weighted{{"5", 86}, {"6", 3}, {"3", 9}, {"7", 2}}

var firstAttendanceCodes = []weighted{{"1", 30}, {"2", 55}, {"3", 4}, {"4", 11}}

var priorityTypeCodes = []weighted{{"1", 80}, {"2", 12}, {"3", 8}}

var ecDepartmentTypes = []weighted{{"01", 70}, {"02", 3}, {"03", 12}, {"04", 15}}

// arrivalHourWeights weights ED arrival by hour of day: quiet overnight, busy
// late morning to evening.
var arrivalHourWeights = [24]int{3, 2, 2, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 8, 7, 7, 7, 7, 7, 6, 6, 5, 4, 4}

// overseasVisitorCodes: 8 is "not an overseas visitor"; 3 and 4 are
// chargeable, 1 and 2 exempt, 9 not known.
var overseasVisitorCodes = []weighted{{"8", 9750}, {"9", 50}, {"1", 50}, {"2", 30}, {"3", 60}, {"4", 60}}

// defaultCommissioners are London sub-ICB locations plus the London
// specialised commissioning hub; the first is treated as the host.
var defaultCommissioners = []string{"36L", "72Q", "93C", "W2U3Z", "A3A8R", "92A", "13R"}

// Default codes from the NHS Data Dictionary.
const (
	noFixedAbode          = nhs.PseudoNoFixedAbode
	unknownPractice       = "V81999"
	privateCommissioner   = "VPP00"
	specialisedHub        = "13R"
	nationalSubmitterCode = "X26"
)
