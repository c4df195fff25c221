package didi_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// De-identification against the domain brief
// (/work/shared/domain/commissioning-data.md), through the package's public
// API. Sources, by tag:
//
//	[S1-AGE]  section 1: Der_Age_at_CDS_Activity_Date (years) and
//	          Der_AgeWks_at_CDS_Activity_Date (weeks); docs/deidentification.md
//	          "Age" (weeks under one; 29 February birthdays on 1 March)
//	[S1-PSEUDO] section 1, "Design for our pipeline": HMAC-SHA-256 over the
//	          normalised 10-digit NHS number, one key per recipient domain,
//	          full digest, key version stored; "no identifying fragments such
//	          as DOB characters"
//	[S1-RULES] section 1, "Proposed rule set": remove NHS number, local
//	          patient ID, name, address, full postcode, full DOB; keep LSOA /
//	          MSOA 2011 and 2021, sector at most, sub-ICB / ICB of residence,
//	          practice code, sex, ethnicity
//	[S3-PC]   section 3, POSTCODE OF USUAL ADDRESS pseudo-postcodes
//	[S3-ACT]  section 3: the activity date is the APC episode end, the
//	          outpatient appointment date, the emergency care arrival
//	[S3-SUB]  section 3: the CDS UNIQUE IDENTIFIER must not contain the NHS
//	          number or local ID

const (
	dNHS     = "9434765919"
	dLocalID = "K7654321"
	dDOB     = "1961-07-23"
	dPC      = "SM5 1AA" // in the sample ONSPD
)

var secret = bytes.Repeat([]byte{7}, 32)

func deidentifier(t *testing.T) *didi.Deidentifier {
	t.Helper()
	ref, err := refdata.LoadDir("../../../reference/sample")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := didi.NewKeyRing(map[string]didi.Key{
		didi.DomainAnalytics:      {Version: "a1", Secret: secret},
		didi.DomainNationalReturn: {Version: "n1", Secret: bytes.Repeat([]byte{9}, 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return didi.NewDeidentifier(ring, ref)
}

func patient() *dmicv1.Patient {
	return &dmicv1.Patient{NhsNumber: dNHS, NhsNumberStatusIndicatorCode: "01", LocalPatientIdentifier: dLocalID,
		PersonBirthDate: dDOB, PostcodeOfUsualAddress: dPC}
}

// records are one clean record of each data set, with every text field a
// provider could misuse filled.
func records() map[dmicv1.Dataset]*dmicv1.CommissioningRecord {
	base := func() *dmicv1.CommissioningRecord {
		return &dmicv1.CommissioningRecord{
			CdsUniqueIdentifier: "BRJ700000000000000000001", UpdateType: dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
			ApplicableDateTime: "2025-05-02T10:00:00Z", ProviderCode: "RJ7", SiteCode: "RJ701", CommissionerCode: "36L",
			AdministrativeCategoryCode: "01", OverseasVisitorStatusCode: "8", ServiceCode: "NCBPS01C",
			Patient:      patient(),
			Demographics: &dmicv1.Demographics{PersonGenderCode: "2", EthnicCategory: "H", GeneralMedicalPracticeCode: "H85030"},
		}
	}
	apc, op, ec, lf := base(), base(), base(), base()
	apc.Activity = &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{CdsType: "130", HospitalProviderSpellNumber: "SP0000123",
		EpisodeNumber: "01", StartDateHospitalProviderSpell: "2025-04-28", StartDateEpisode: "2025-04-28", EndDateEpisode: "2025-05-01",
		DischargeDateHospitalProviderSpell: "2025-05-03", AdmissionMethodCode: "21", TreatmentFunctionCode: "300",
		PrimaryDiagnosisIcd: "I219", SecondaryDiagnosesIcd: "E119;I10X", SecondaryProceduresOpcs: "K634", HrgCode: "EB10A"}}
	op.Activity = &dmicv1.CommissioningRecord_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AttendanceIdentifier: "OPA00000456",
		AppointmentDate: "2025-05-01", AttendedOrDidNotAttendCode: "5", FirstAttendanceCode: "1", TreatmentFunctionCode: "320"}}
	ec.Activity = &dmicv1.CommissioningRecord_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{EcAttendanceIdentifier: "ECA000000789",
		EcArrivalDate: "2025-05-01", EcArrivalTime: "23:50", EcDepartmentType: "01", EcChiefComplaintSnomedCt: "29857009", EcDepartureDate: "2025-05-02"}}
	lf.Activity = &dmicv1.CommissioningRecord_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{ActivityDate: "2025-05-01",
		PointOfDeliveryCode: "OPPROC", TreatmentFunctionCode: "130", HrgCode: "BZ84A", PricePence: 100, ActivityCount: 1}}
	return map[dmicv1.Dataset]*dmicv1.CommissioningRecord{
		dmicv1.Dataset_DATASET_APC: apc, dmicv1.Dataset_DATASET_OUTPATIENT: op,
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: ec, dmicv1.Dataset_DATASET_LOCAL_FLOW: lf,
	}
}

// [S1-AGE] [S3-ACT]: the age is taken at each data set's activity date;
// 2025-05-01 in every record here, so a birthday on 1 or 2 May tells.
func TestDictionaryAgeAtActivityDate(t *testing.T) {
	d := deidentifier(t)
	tests := []struct {
		dob          string
		years, weeks int32
		band, why    string
	}{
		{"1961-05-01", 64, 0, "60-64", "birthday on the activity date: the age increases that day"},
		{"1961-05-02", 63, 0, "60-64", "birthday the day after the activity date (APC: not the later discharge, 2025-05-03)"},
		{"2024-02-29", 1, 0, "1-4", "born 29 February: 1 in May 2025"},
		{"2024-05-02", 0, 52, "0", "364 days old: 52 completed weeks, under one"},
		{"2025-04-24", 0, 1, "0", "7 days old: 1 week"},
		{"2025-04-25", 0, 0, "0", "6 days old: 0 weeks"},
		{"2025-05-01", 0, 0, "0", "born on the activity date"},
		{"2025-05-02", 0, 0, "", "born after the activity (the EC departure or APC discharge are later): age unknown"},
		{"1879-12-31", 0, 0, "", "before 1880-01-01: invalid, age unknown"},
	}
	for ds, rec := range records() {
		for _, tt := range tests {
			r := proto.CloneOf(rec)
			r.Patient.PersonBirthDate = tt.dob
			got, err := d.Deidentify(ds, r)
			if err != nil {
				t.Fatalf("%v %s: %v", ds, tt.dob, err)
			}
			if got.GetActivityDate() != "2025-05-01" {
				t.Errorf("%v: activity date %s, want 2025-05-01 [S3-ACT]", ds, got.GetActivityDate())
			}
			if got.AgeAtActivityYears != tt.years || got.AgeAtActivityWeeks != tt.weeks || got.AgeBand != tt.band {
				t.Errorf("%v, born %s: %d years, %d weeks, band %q; want %d, %d, %q (%s)", ds, tt.dob,
					got.AgeAtActivityYears, got.AgeAtActivityWeeks, got.AgeBand, tt.years, tt.weeks, tt.band, tt.why)
			}
		}
	}
}

// [S1-PSEUDO]
func TestDictionaryPseudonym(t *testing.T) {
	d := deidentifier(t)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(dNHS))
	want := hex.EncodeToString(mac.Sum(nil))

	var first string
	for ds, r := range records() {
		got, err := d.Deidentify(ds, r)
		if err != nil {
			t.Fatal(err)
		}
		if got.PseudoNhsNumber != want || len(got.PseudoNhsNumber) != 64 {
			t.Errorf("%v: pseudonym %q, want the full HMAC-SHA-256 hex digest of the 10 digits %q", ds, got.PseudoNhsNumber, want)
		}
		if got.PseudonymKeyVersion != "a1" || got.PseudonymDomain != didi.DomainAnalytics {
			t.Errorf("%v: key version %q domain %q, want a1 analytics", ds, got.PseudonymKeyVersion, got.PseudonymDomain)
		}
		for _, dp := range got.GetDomainPseudonyms() {
			if dp.GetPseudonym() == want {
				t.Errorf("%v: domain %s has the analytics pseudonym: domains must not link", ds, dp.GetDomain())
			}
		}
		if first == "" {
			first = got.PseudoNhsNumber
		} else if got.PseudoNhsNumber != first {
			t.Errorf("%v: pseudonym differs across data sets: journeys would not link", ds)
		}
	}

	// Nothing but the number goes in: another date of birth, postcode or
	// local id gives the same pseudonym, and it holds none of them.
	r := records()[dmicv1.Dataset_DATASET_OUTPATIENT]
	r.Patient.PersonBirthDate, r.Patient.PostcodeOfUsualAddress, r.Patient.LocalPatientIdentifier = "1990-01-01", "SM1 1AA", "Z9999999"
	got, err := d.Deidentify(dmicv1.Dataset_DATASET_OUTPATIENT, r)
	if err != nil {
		t.Fatal(err)
	}
	if got.PseudoNhsNumber != want {
		t.Error("the pseudonym depends on more than the NHS number")
	}
	for _, frag := range []string{dNHS, "19610723", "610723", "1961"} {
		if strings.Contains(got.PseudoNhsNumber, frag) {
			t.Errorf("pseudonym contains %q", frag)
		}
	}

	// No pseudonym, in any domain, for a number that is not valid.
	for _, n := range []string{"9434765918", "0000000000", "1111111111", "943 476 5919", "123456789"} {
		r := records()[dmicv1.Dataset_DATASET_APC]
		r.Patient.NhsNumber = n
		got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
		if err != nil {
			t.Fatal(err)
		}
		if got.PseudoNhsNumber != "" || len(got.GetDomainPseudonyms()) != 0 || got.PseudonymAbsentReason != didi.AbsentInvalid {
			t.Errorf("NHS number %q: pseudonym %q, %d domain pseudonyms, reason %q; want none, invalid",
				n, got.PseudoNhsNumber, len(got.GetDomainPseudonyms()), got.PseudonymAbsentReason)
		}
	}
}

// [S3-PC]: a pseudo-postcode names a country or no address at all, never a
// place: no area of residence is derived from it.
func TestDictionaryPseudoPostcodesPlaceNoArea(t *testing.T) {
	d := deidentifier(t)
	for pc, country := range map[string]string{
		"ZZ99 3VZ": "", "ZZ99 3WZ": "", "ZZ99 3CZ": refdata.CountryEngland, "ZZ99 1WZ": refdata.CountryScotland,
		"ZZ99 2WZ": refdata.CountryNorthernIreland, "ZZ99 3GZ": refdata.CountryWales, "ZZ99 6CZ": "",
	} {
		r := records()[dmicv1.Dataset_DATASET_OUTPATIENT]
		r.Patient.PostcodeOfUsualAddress = pc
		got, err := d.Deidentify(dmicv1.Dataset_DATASET_OUTPATIENT, r)
		if err != nil {
			t.Fatal(err)
		}
		res := got.GetResidence()
		if res.GetLsoa_2011()+res.GetLsoa_2021()+res.GetMsoa_2011()+res.GetMsoa_2021()+res.GetSubIcb()+res.GetIcb()+
			res.GetLocalAuthority()+res.GetPostcodeSector()+res.GetHealthArea()+res.GetRegion() != "" || res.GetImdDecile() != 0 {
			t.Errorf("%s placed in an area: %v", pc, prototext.Format(res))
		}
		if res.GetCountry() != country || res.GetNote() == "" || res.GetPseudoPostcode() != pc[5:] {
			t.Errorf("%s: country %q note %q pseudo %q; want country %q, a note, %q", pc, res.GetCountry(), res.GetNote(), res.GetPseudoPostcode(), country, pc[5:])
		}
	}
}

// [S1-RULES]: what is kept, and that nothing removed survives, in any
// encoding of any data set's output.
func TestDictionaryRemovedAndKept(t *testing.T) {
	d := deidentifier(t)
	forbidden := []string{dNHS, "943 476 5919", dLocalID, dDOB, "19610723", "23/07/1961", dPC, "SM51AA"}
	for ds, r := range records() {
		got, err := d.Deidentify(ds, r)
		if err != nil {
			t.Fatal(err)
		}
		res := got.GetResidence()
		if res.GetLsoa_2011() == "" || res.GetLsoa_2021() == "" || res.GetMsoa_2011() == "" || res.GetMsoa_2021() == "" ||
			res.GetSubIcb() == "" || res.GetIcb() == "" || res.GetPostcodeSector() != "SM5 1" {
			t.Errorf("%v: residence %v, want LSOA/MSOA 2011 and 2021, sub-ICB, ICB and the sector SM5 1", ds, prototext.Format(res))
		}
		dem := got.GetDemographics()
		if dem.GetPersonGenderCode() != "2" || dem.GetEthnicCategory() != "H" || dem.GetGeneralMedicalPracticeCode() != "H85030" {
			t.Errorf("%v: demographics %v, want sex, ethnicity and practice kept", ds, dem)
		}
		bin, _ := proto.Marshal(got)
		js, _ := protojson.Marshal(got)
		txt := prototext.Format(got)
		for _, s := range forbidden {
			if bytes.Contains(bin, []byte(s)) || bytes.Contains(js, []byte(s)) || strings.Contains(txt, s) {
				t.Errorf("%v: output holds a removed value (%s)", ds, s)
			}
		}
	}
}

// [S3-SUB] [S1-RULES]: an identifier a provider put in a field that is kept
// (the record id, a spell or attendance id, a code list) would survive;
// such a record is refused whole, naming the field and never the value.
func TestDictionaryIdentifierInAKeptField(t *testing.T) {
	d := deidentifier(t)
	type tc struct {
		ds    dmicv1.Dataset
		field string
		set   func(r *dmicv1.CommissioningRecord)
	}
	apc, op, ec, lf := dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_OUTPATIENT, dmicv1.Dataset_DATASET_EMERGENCY_CARE, dmicv1.Dataset_DATASET_LOCAL_FLOW
	cases := []tc{
		{apc, "cds_unique_identifier", func(r *dmicv1.CommissioningRecord) { r.CdsUniqueIdentifier = "BRJ7" + dNHS }},
		{lf, "cds_unique_identifier", func(r *dmicv1.CommissioningRecord) { r.CdsUniqueIdentifier = "PLCM-" + dLocalID }},
		{apc, "hospital_provider_spell_number", func(r *dmicv1.CommissioningRecord) { r.GetApc().HospitalProviderSpellNumber = dLocalID }},
		{apc, "secondary_diagnoses_icd", func(r *dmicv1.CommissioningRecord) { r.GetApc().SecondaryDiagnosesIcd = "E119;" + dPC }},
		{op, "attendance_identifier", func(r *dmicv1.CommissioningRecord) { r.GetOutpatient().AttendanceIdentifier = dNHS }},
		{ec, "ec_attendance_identifier", func(r *dmicv1.CommissioningRecord) { r.GetEmergencyCare().EcAttendanceIdentifier = "sm51aa" }},
		{ec, "service_code", func(r *dmicv1.CommissioningRecord) { r.ServiceCode = dNHS }},
	}
	for _, c := range cases {
		r := records()[c.ds]
		c.set(r)
		got, err := d.Deidentify(c.ds, r)
		var idErr *didi.IdentifierError
		if got != nil || !errors.As(err, &idErr) || idErr.Field != c.field {
			t.Errorf("%v %s: output %v, error %v; want an IdentifierError naming %s", c.ds, c.field, got != nil, err, c.field)
			continue
		}
		for _, s := range []string{dNHS, dLocalID, dPC, "SM51AA", "sm51aa"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%v %s: error %q holds an identifier", c.ds, c.field, err)
			}
		}
	}
}
