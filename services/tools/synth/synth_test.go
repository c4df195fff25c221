package synth

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/nhs"
)

var (
	testPractices = []string{"H85001", "H85002", "H85003", "H84010", "H81070"}
	testPostcodes = []string{"SM1 2AB", "SW17 0QT", "KT1 1EU", "CR0 1NX", "SW19 1RH", "TW9 1DN", "W1A 1AA", "N1 9GU"}
	testProviders = []string{"RJ7", "RVR", "RAX"}
)

func testConfig(records int) Config {
	return Config{
		Seed:      42,
		Records:   records,
		Practices: testPractices,
		Postcodes: testPostcodes,
		Providers: testProviders,
	}
}

// Field names of the provider JSON format, from the shared record format.
var (
	commonFields = []string{"dataset", "cds_unique_identifier", "cds_update_type", "cds_applicable_date_time",
		"provider_code", "site_code", "commissioner_code", "administrative_category_code",
		"overseas_visitor_status_code", "nhs_number", "nhs_number_status_indicator_code",
		"local_patient_identifier", "person_birth_date", "postcode_of_usual_address",
		"person_gender_code", "ethnic_category", "general_medical_practice_code"}
	datasetFields = map[dmicv1.Dataset][]string{
		dmicv1.Dataset_DATASET_APC: {"cds_type", "hospital_provider_spell_number", "episode_number",
			"start_date_hospital_provider_spell", "admission_method_code", "source_of_admission_code",
			"start_date_episode", "end_date_episode", "discharge_date_hospital_provider_spell",
			"discharge_method_code", "discharge_destination_code", "patient_classification_code",
			"treatment_function_code", "primary_diagnosis_icd", "primary_procedure_opcs", "hrg_code"},
		dmicv1.Dataset_DATASET_OUTPATIENT: {"attendance_identifier", "appointment_date",
			"attended_or_did_not_attend_code", "first_attendance_code", "treatment_function_code",
			"priority_type_code", "primary_procedure_opcs", "hrg_code"},
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: {"ec_attendance_identifier", "ec_arrival_date",
			"ec_arrival_time", "ec_department_type", "ec_chief_complaint_snomed_ct", "ec_departure_date", "hrg_code"},
		dmicv1.Dataset_DATASET_LOCAL_FLOW: {"activity_date", "point_of_delivery_code",
			"treatment_function_code", "hrg_code", "price_pence", "activity_count"},
	}
	datasetJSONName = map[dmicv1.Dataset]string{
		dmicv1.Dataset_DATASET_APC:            "apc",
		dmicv1.Dataset_DATASET_OUTPATIENT:     "outpatient",
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: "emergency_care",
		dmicv1.Dataset_DATASET_LOCAL_FLOW:     "local_flow",
	}
	activityDateField = map[dmicv1.Dataset]string{
		dmicv1.Dataset_DATASET_OUTPATIENT:     "appointment_date",
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: "ec_arrival_date",
		dmicv1.Dataset_DATASET_LOCAL_FLOW:     "activity_date",
	}
	// camFields are the CAM inputs scenarios add (record format: every
	// dataset has them; a local flow's point of delivery is its own field).
	camFields = map[dmicv1.Dataset][]string{
		dmicv1.Dataset_DATASET_APC: {"overseas_visitor_charging_category", "service_code", "commissioned_service_category_code",
			"local_public_health_indicator", "point_of_delivery_code", "secondary_diagnoses_icd", "secondary_procedures_opcs"},
		dmicv1.Dataset_DATASET_OUTPATIENT: {"overseas_visitor_charging_category", "service_code", "commissioned_service_category_code",
			"local_public_health_indicator", "point_of_delivery_code", "primary_diagnosis_icd", "secondary_diagnoses_icd", "secondary_procedures_opcs"},
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: {"overseas_visitor_charging_category", "service_code", "commissioned_service_category_code",
			"local_public_health_indicator", "point_of_delivery_code"},
		dmicv1.Dataset_DATASET_LOCAL_FLOW: {"overseas_visitor_charging_category", "service_code", "commissioned_service_category_code",
			"local_public_health_indicator"},
	}
	// camPostcodes and camPractices are the codes the CAM scenarios name.
	camPostcodes, camPractices = func() (map[string]bool, map[string]bool) {
		pcs, gps := map[string]bool{}, map[string]bool{}
		for _, s := range camBook {
			pcs[s.postcode], gps[s.practice] = true, true
		}
		return pcs, gps
	}()
	uidFormat  = regexp.MustCompile(`^[A-Z0-9]{1,35}$`)
	timeFormat = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

func TestValidNHSNumber(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	first := map[byte]int{}
	for i := 0; i < 20000; i++ {
		n := ValidNHSNumber(rng)
		// The rules validation and de-identification apply (package nhs).
		if !nhs.NumberValid(n) {
			t.Fatalf("draw %d is not a valid NHS number", i)
		}
		first[n[0]]++
	}
	for d := range first {
		if d != '4' && d != '6' && d != '7' {
			t.Errorf("NHS number starting %c, want the 4/6/7 ranges", d)
		}
	}
	if len(first) != 3 {
		t.Errorf("first digits %v, want all of 4, 6 and 7", first)
	}
	for i := 0; i < 5000; i++ {
		n := invalidNHSNumber(rng)
		if !nhs.NumberWellFormed(n) || nhs.NumberCheckDigitOK(n) || nhs.NumberRepeated(n) {
			t.Fatalf("invalid draw %d is not a well-formed Modulus 11 failure", i)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := testConfig(10)
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr []string // substrings; nil means valid
	}{
		{"valid with defaults", func(*Config) {}, nil},
		{"all datasets", func(c *Config) {
			c.Datasets = []dmicv1.Dataset{1, 2, 3, 4}
		}, nil},
		{"negative share means none", func(c *Config) { c.BadShare = -1 }, nil},
		{"everything missing at once", func(c *Config) {
			*c = Config{}
		}, []string{"records", "practices", "postcodes", "providers"}},
		{"share above one", func(c *Config) { c.DisagreeShare = 1.5 }, []string{"disagree share"}},
		{"end before start", func(c *Config) {
			c.Start, c.End = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		}, []string{"end"}},
		{"only start", func(c *Config) { c.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"set both"}},
		{"start before births", func(c *Config) {
			c.Start, c.End = time.Date(1920, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1921, 1, 1, 0, 0, 0, 0, time.UTC)
		}, []string{"start"}},
		{"bad codes", func(c *Config) {
			c.Practices = []string{"H85001", "H8500A"}
			c.Providers = []string{"RJ7", "RJ7Z"}
			c.Commissioners = []string{"36L", "Q"}
		}, []string{"practices[1]", "providers[1]", "commissioners[1]"}},
		{"bad postcode", func(c *Config) { c.Postcodes = []string{"SM1 2AB", "SM12AB"} }, []string{"postcodes[1]"}},
		{"bad dataset", func(c *Config) {
			c.Datasets = []dmicv1.Dataset{dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_APC, 9}
		}, []string{"datasets[1]", "datasets[2]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SM12AB") {
				t.Errorf("error %q carries a postcode value", err)
			}
			if _, gerr := Generate(c); gerr == nil {
				t.Error("Generate accepted an invalid config")
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	c := testConfig(3000)
	a, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with the same config differ")
	}
	var streamed []Item
	if err := Stream(c, func(it Item) error { streamed = append(streamed, it); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, streamed) {
		t.Fatal("Stream and Generate differ")
	}
	c.Seed++
	d, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) > 0 && len(a) > 0 && bytes.Equal(d[0].JSON, a[0].JSON) {
		t.Fatal("a different seed gave the same first record")
	}
}

func TestStreamStopsOnError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Stream(testConfig(100), func(Item) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("Stream = %v after %d items, want the consumer's error after 5", err, n)
	}
}

func decode(t *testing.T, it Item) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(it.JSON, &m); err != nil {
		t.Fatalf("item %s/%s does not decode: %v", it.Dataset, it.RecordID, err)
	}
	return m
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// problems checks a record against the rules the generator claims to break,
// independently of the generator, and returns the rule ids it fails (plus
// "FORMAT:<field>" for anything else wrong).
func problems(it Item, practices, postcodes map[string]bool) []string {
	var out []string
	if bytes.IndexByte(it.JSON, '\n') >= 0 {
		out = append(out, "FORMAT:newline")
	}
	var m map[string]any
	if err := json.Unmarshal(it.JSON, &m); err != nil {
		return append(out, RuleDecode)
	}
	allowed := map[string]bool{}
	for _, f := range commonFields {
		allowed[f] = true
	}
	for _, f := range datasetFields[it.Dataset] {
		allowed[f] = true
	}
	for _, f := range camFields[it.Dataset] {
		allowed[f] = true
	}
	for k, v := range m {
		if !allowed[k] {
			out = append(out, "FORMAT:unknown field "+k)
		}
		_, isNum := v.(float64)
		if (k == "price_pence" || k == "activity_count") != isNum {
			out = append(out, "FORMAT:type of "+k)
		}
	}
	if str(m, "dataset") != datasetJSONName[it.Dataset] {
		out = append(out, "FORMAT:dataset")
	}
	required := []string{"cds_unique_identifier", "provider_code"}
	if f, ok := activityDateField[it.Dataset]; ok {
		required = append(required, f)
	} else {
		required = append(required, "cds_type", "admission_method_code", "start_date_episode", "end_date_episode", "treatment_function_code")
	}
	for _, f := range required {
		if str(m, f) == "" {
			out = append(out, RuleRequired)
		}
	}
	day := func(f string) (time.Time, bool) {
		s := str(m, f)
		if s == "" {
			return time.Time{}, false
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			out = append(out, "FORMAT:date "+f)
			return time.Time{}, false
		}
		return d, true
	}
	actField := activityDateField[it.Dataset]
	if actField == "" {
		actField = "end_date_episode"
	}
	act, hasAct := day(actField)
	if str(m, actField) != it.ActivityDate {
		out = append(out, "FORMAT:ActivityDate")
	}

	if uid := str(m, "cds_unique_identifier"); uid != "" {
		prefix := "B" + str(m, "provider_code") + "000"
		if it.Dataset == dmicv1.Dataset_DATASET_LOCAL_FLOW {
			prefix = "LF" + str(m, "provider_code")
		}
		if !uidFormat.MatchString(uid) || !strings.HasPrefix(uid, prefix) {
			out = append(out, "FORMAT:uid")
		}
	}
	if uid := str(m, "cds_unique_identifier"); uid != it.RecordID {
		out = append(out, "FORMAT:RecordID")
	}
	if str(m, "provider_code") != it.Provider {
		out = append(out, "FORMAT:Provider")
	}
	if u := str(m, "cds_update_type"); u != "9" && u != "1" {
		out = append(out, "FORMAT:update type")
	}
	if ts, err := time.Parse(time.RFC3339, str(m, "cds_applicable_date_time")); err != nil {
		out = append(out, "FORMAT:applicable")
	} else if hasAct && !ts.After(act.AddDate(0, 0, 1).Add(-time.Second)) {
		out = append(out, "FORMAT:applicable before activity")
	}

	num := str(m, "nhs_number")
	if num != it.NHSNumber {
		out = append(out, "FORMAT:NHSNumber")
	}
	if num != "" {
		if !nhs.NumberWellFormed(num) || nhs.NumberRepeated(num) {
			out = append(out, "FORMAT:nhs_number")
		} else if !nhs.NumberCheckDigitOK(num) {
			out = append(out, RuleNHSModulus11)
		}
	} else if str(m, "nhs_number_status_indicator_code") != "07" {
		out = append(out, "FORMAT:status without number")
	}
	if str(m, "person_birth_date") != it.BirthDate || str(m, "postcode_of_usual_address") != it.Postcode ||
		str(m, "local_patient_identifier") != it.LocalPatientID {
		out = append(out, "FORMAT:patient fields")
	}
	if dob, ok := day("person_birth_date"); ok {
		switch {
		case dob.Before(time.Date(1880, 1, 1, 0, 0, 0, 0, time.UTC)):
			out = append(out, RuleDOBTooEarly)
		case hasAct && dob.After(act):
			out = append(out, RuleDOBAfter)
		case dob.Year() < 1930:
			out = append(out, "FORMAT:born before 1930")
		}
	} else {
		out = append(out, "FORMAT:no birth date")
	}
	pc := str(m, "postcode_of_usual_address")
	switch {
	case !nhs.PostcodeValid(pc): // the format rule validation applies (PC-001)
		out = append(out, RulePostcode)
	case pc != noFixedAbode && !postcodes[pc] && !camPostcodes[pc]:
		out = append(out, "FORMAT:postcode not from config")
	}
	if p := str(m, "general_medical_practice_code"); p != unknownPractice && !practices[p] && !camPractices[p] {
		out = append(out, "FORMAT:practice")
	}
	if pc := str(m, "provider_code"); !strings.HasPrefix(str(m, "site_code"), pc) || len(str(m, "site_code")) != 5 {
		out = append(out, "FORMAT:site")
	}

	switch it.Dataset {
	case dmicv1.Dataset_DATASET_APC:
		spell, _ := day("start_date_hospital_provider_spell")
		start, _ := day("start_date_episode")
		end, _ := day("end_date_episode")
		if spell.After(start) || start.After(end) {
			out = append(out, "FORMAT:apc dates out of order")
		}
		if dis, ok := day("discharge_date_hospital_provider_spell"); ok && !dis.Equal(end) && it.Differs != "end_date_episode" {
			out = append(out, "FORMAT:discharge")
		}
		if len(str(m, "primary_diagnosis_icd")) != 4 || len(str(m, "hrg_code")) != 5 {
			out = append(out, "FORMAT:coding")
		}
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		if !timeFormat.MatchString(str(m, "ec_arrival_time")) {
			out = append(out, "FORMAT:arrival time")
		}
		if dep, ok := day("ec_departure_date"); ok && hasAct && dep.Before(act) {
			out = append(out, "FORMAT:departure before arrival")
		}
	}
	return out
}

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

// TestRecordsBreakExactlyWhatTheySay checks every record: good ones break
// nothing, bad ones exactly their one stated rule.
func TestRecordsBreakExactlyWhatTheySay(t *testing.T) {
	c := testConfig(10000)
	c.Datasets = []dmicv1.Dataset{1, 2, 3, 4}
	items, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	practices, postcodes := setOf(testPractices), setOf(testPostcodes)
	seenRules := map[string]int{}
	for i, it := range items {
		got := problems(it, practices, postcodes)
		if len(it.Bad) == 0 {
			if len(got) > 0 {
				t.Errorf("good item %d (%s, %s) has problems %v", i, it.Dataset, it.RecordID, got)
			}
			continue
		}
		if len(it.Bad) != 1 || it.Source != dmicv1.Source_SOURCE_PROVIDER {
			t.Fatalf("bad item %d: Bad=%v source %v, want one rule on a provider record", i, it.Bad, it.Source)
		}
		seenRules[it.Bad[0]]++
		if !reflect.DeepEqual(got, it.Bad) {
			t.Errorf("bad item %d (%s) should break exactly %v, local checks found %v", i, it.Dataset, it.Bad, got)
		}
		if it.Bad[0] == RuleRequired && bytes.Contains(it.JSON, []byte(`"`+it.BadField+`"`)) {
			t.Errorf("bad item %d: REQ-001 item still carries %s", i, it.BadField)
		}
		if it.Bad[0] == RuleDecode && (json.Valid(it.JSON) || bytes.IndexByte(it.JSON, '\n') >= 0) {
			t.Errorf("bad item %d: DEC-JSON item must be one undecodable line", i)
		}
	}
	for _, r := range []string{RuleNHSModulus11, RuleDOBAfter, RuleDOBTooEarly, RuleRequired, RulePostcode, RuleDecode} {
		if seenRules[r] == 0 {
			t.Errorf("no bad record breaks %s", r)
		}
	}
}

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if got < want-tol || got > want+tol {
		t.Errorf("%s = %.4f, want %.4f ± %.4f", name, got, want, tol)
	}
}

func TestSharesAndRealism(t *testing.T) {
	const n = 10000
	items, err := Generate(testConfig(n))
	if err != nil {
		t.Fatal(err)
	}
	var provider, bad, eligible, national, natOnly, disagree, revisions, deletes int
	var private, overseas, noAbode, unknownGP, babies, genderKnown, status01, withPerson int
	datasets := map[dmicv1.Dataset]int{}
	for _, it := range items {
		switch {
		case it.Source == dmicv1.Source_SOURCE_NATIONAL && it.NationalOnly:
			natOnly++
		case it.Source == dmicv1.Source_SOURCE_NATIONAL:
			national++
			if it.Differs != "" {
				disagree++
			}
		case it.Revision:
			revisions++
		case it.Delete:
			deletes++
		default:
			provider++
			datasets[it.Dataset]++
			if len(it.Bad) > 0 {
				bad++
				continue
			}
			if it.CAM != nil {
				// Scenarios are chosen, not drawn: they are not realism.
				continue
			}
			m := decode(t, it)
			withPerson++
			if str(m, "administrative_category_code") == "02" {
				private++
			}
			if o := str(m, "overseas_visitor_status_code"); o == "3" || o == "4" {
				overseas++
			}
			if it.Postcode == noFixedAbode {
				noAbode++
			}
			if str(m, "general_medical_practice_code") == unknownPractice {
				unknownGP++
			}
			if g := str(m, "person_gender_code"); g == "1" || g == "2" {
				genderKnown++
			}
			if str(m, "nhs_number_status_indicator_code") == "01" {
				status01++
			}
			dob, _ := time.Parse(time.DateOnly, it.BirthDate)
			act, _ := time.Parse(time.DateOnly, it.ActivityDate)
			if act.Before(dob.AddDate(1, 0, 0)) {
				babies++
			}
		}
	}
	if provider != n {
		t.Fatalf("provider originals = %d, want Records = %d", provider, n)
	}
	good := float64(n - bad)
	eligible = n - bad - deletes // no local flow in the default datasets
	near(t, "bad share", float64(bad)/n, DefaultBadShare, 0.01)
	near(t, "national share", float64(national)/float64(eligible), DefaultNationalShare, 0.02)
	near(t, "disagree share", float64(disagree)/float64(national), DefaultDisagreeShare, 0.02)
	near(t, "national-only share", float64(natOnly)/n, DefaultNationalOnlyShare, 0.006)
	near(t, "revision share", float64(revisions)/good, DefaultRevisionShare, 0.004)
	near(t, "delete share", float64(deletes)/good, DefaultDeleteShare, 0.004)
	p := float64(withPerson)
	near(t, "private share", float64(private)/p, 0.01, 0.005)
	near(t, "no fixed abode share", float64(noAbode)/p, 0.01, 0.005)
	near(t, "unknown practice share", float64(unknownGP)/p, 0.01, 0.005)
	if overseas == 0 || babies == 0 {
		t.Errorf("overseas visitors %d, babies under one %d: want some of each", overseas, babies)
	}
	if float64(genderKnown)/p < 0.97 || float64(status01)/p < 0.9 {
		t.Errorf("gender 1/2 share %.3f, NHS status 01 share %.3f: want mostly", float64(genderKnown)/p, float64(status01)/p)
	}
	if datasets[dmicv1.Dataset_DATASET_OUTPATIENT] <= datasets[dmicv1.Dataset_DATASET_APC] || len(datasets) != 3 {
		t.Errorf("dataset mix %v: want the three defaults, outpatients the largest", datasets)
	}
}

// TestVariants checks national copies, revisions and deletes against the
// provider records they derive from.
func TestVariants(t *testing.T) {
	c := testConfig(10000)
	c.Datasets = []dmicv1.Dataset{1, 2, 3, 4}
	items, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		p  string
		ds dmicv1.Dataset
		id string
	}
	latest := map[key]int{} // index of the latest good provider version
	badIDs := map[string]bool{}
	deleted := map[key]bool{}
	nationalSeen := map[key]bool{}
	for i, it := range items {
		k := key{it.Provider, it.Dataset, it.RecordID}
		if len(it.Bad) > 0 {
			badIDs[it.RecordID] = true
			continue
		}
		m := decode(t, it)
		switch {
		case it.Source == dmicv1.Source_SOURCE_NATIONAL:
			if it.Submitter != NationalSubmitter {
				t.Errorf("national item %d submitted by %q", i, it.Submitter)
			}
			if it.Dataset == dmicv1.Dataset_DATASET_LOCAL_FLOW {
				t.Errorf("national item %d is a local flow", i)
			}
			if nationalSeen[k] {
				t.Errorf("national item %d: second national copy", i)
			}
			nationalSeen[k] = true
			j, ok := latest[k]
			if it.NationalOnly {
				if ok || it.Differs != "" {
					t.Errorf("national-only item %d has a provider copy or a difference", i)
				}
				continue
			}
			if !ok || deleted[k] {
				t.Errorf("national item %d has no live provider copy before it", i)
				continue
			}
			local := decode(t, items[j])
			if it.Differs == "" {
				if !bytes.Equal(it.JSON, items[j].JSON) {
					t.Errorf("national item %d differs from its local copy without saying so", i)
				}
				continue
			}
			if diff := diffKeys(local, m); !reflect.DeepEqual(diff, []string{it.Differs}) {
				t.Errorf("national item %d says it differs in %s, differs in %v", i, it.Differs, diff)
			}
		case it.Revision || it.Delete:
			if it.Submitter != it.Provider {
				t.Errorf("item %d: submitter %q, want the provider", i, it.Submitter)
			}
			j, ok := latest[k]
			if !ok || deleted[k] || nationalSeen[k] {
				t.Errorf("item %d revises or deletes a record not live, or already copied nationally", i)
				continue
			}
			prev := decode(t, items[j])
			t0, _ := time.Parse(time.RFC3339, str(prev, "cds_applicable_date_time"))
			t1, _ := time.Parse(time.RFC3339, str(m, "cds_applicable_date_time"))
			if !t1.After(t0) {
				t.Errorf("item %d: applicable date/time %v not after %v", i, t1, t0)
			}
			diff := diffKeys(prev, m)
			if it.Delete {
				if str(m, "cds_update_type") != "1" || !reflect.DeepEqual(diff, []string{"cds_applicable_date_time", "cds_update_type"}) {
					t.Errorf("delete item %d changes %v", i, diff)
				}
				deleted[k] = true
			} else {
				want := []string{"cds_applicable_date_time", it.Differs}
				if it.Differs < "cds_applicable_date_time" {
					want = []string{it.Differs, "cds_applicable_date_time"}
				}
				if !reflect.DeepEqual(diff, want) {
					t.Errorf("revision item %d says it changes %s, changes %v", i, it.Differs, diff)
				}
				latest[k] = i
			}
		default:
			if _, dup := latest[k]; dup {
				t.Errorf("item %d reuses identifier of an earlier activity", i)
			}
			if it.Submitter != it.Provider {
				t.Errorf("item %d: submitter %q, want the provider", i, it.Submitter)
			}
			latest[k] = i
		}
	}
	for k := range nationalSeen {
		if badIDs[k.id] {
			t.Errorf("a bad record got a national copy")
		}
	}
}

func diffKeys(a, b map[string]any) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	// Sorted so comparisons are stable.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestExpectHandMade(t *testing.T) {
	p, n := dmicv1.Source_SOURCE_PROVIDER, dmicv1.Source_SOURCE_NATIONAL
	apc, lf := dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_LOCAL_FLOW
	items := []Item{
		{Source: p, Dataset: apc, Provider: "RJ7", RecordID: "A"},                            // matched
		{Source: p, Dataset: apc, Provider: "RJ7", RecordID: "B"},                            // deleted below
		{Source: p, Dataset: apc, Provider: "RJ7", RecordID: "C"},                            // revised, mismatched
		{Source: p, Dataset: apc, Provider: "RJ7", RecordID: "D"},                            // local only
		{Source: p, Dataset: lf, Provider: "RJ7", RecordID: "E"},                             // local flow: not reconciled
		{Source: p, Dataset: apc, Provider: "RJ7", Bad: []string{RuleNHSModulus11}},          // rejected
		{Source: p, Dataset: apc, Provider: "RJ7", RecordID: "F", Bad: []string{RuleDecode}}, // rejected
		{Source: p, Dataset: apc, Provider: "RJ7", RecordID: "B", Delete: true},
		{Source: p, Dataset: apc, Provider: "RJ7", RecordID: "C", Revision: true, Differs: "hrg_code"},
		{Source: n, Dataset: apc, Provider: "RJ7", RecordID: "A"},
		{Source: n, Dataset: apc, Provider: "RJ7", RecordID: "C", Differs: "commissioner_code"},
		{Source: n, Dataset: apc, Provider: "RVR", RecordID: "A", NationalOnly: true}, // other provider: no match
	}
	got := Expect(items)
	want := Expectation{
		Activities: 7, Rejected: 2, ProviderLive: 4, NationalLive: 3,
		ByRule:  map[string]int{RuleNHSModulus11: 1, RuleDecode: 1},
		Matched: 1, Mismatched: 1, LocalOnly: 1, NationalOnly: 1,
		Revisions: 1, Deletes: 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Expect =\n%+v\nwant\n%+v", got, want)
	}
}

func TestExpectConsistent(t *testing.T) {
	for _, ds := range [][]dmicv1.Dataset{nil, {1, 2, 3, 4}, {dmicv1.Dataset_DATASET_LOCAL_FLOW}} {
		c := testConfig(5000)
		c.Datasets = ds
		items, err := Generate(c)
		if err != nil {
			t.Fatal(err)
		}
		e := Expect(items)
		rules := 0
		for _, v := range e.ByRule {
			rules += v
		}
		lfLive := 0
		nationals := 0
		for _, it := range items {
			if it.Source == dmicv1.Source_SOURCE_NATIONAL {
				nationals++
			}
		}
		if len(ds) == 1 {
			if nationals != 0 {
				t.Errorf("local-flow-only config made %d national items", nationals)
			}
			lfLive = e.ProviderLive
		}
		switch {
		case e.Activities != e.ProviderLive+e.NationalLive:
			t.Errorf("%v: Activities %d != provider %d + national %d", ds, e.Activities, e.ProviderLive, e.NationalLive)
		case e.Rejected != rules || e.Rejected == 0:
			t.Errorf("%v: Rejected %d, rules %d", ds, e.Rejected, rules)
		case e.ProviderLive != c.Records-e.Rejected-e.Deletes:
			t.Errorf("%v: ProviderLive %d != records %d - rejected %d - deletes %d", ds, e.ProviderLive, c.Records, e.Rejected, e.Deletes)
		case e.NationalLive != nationals || e.NationalLive != e.Matched+e.Mismatched+e.NationalOnly:
			t.Errorf("%v: NationalLive %d, national items %d, matched+mismatched+only %d", ds, e.NationalLive, nationals, e.Matched+e.Mismatched+e.NationalOnly)
		case len(ds) != 4 && e.ProviderLive-lfLive != e.Matched+e.Mismatched+e.LocalOnly:
			t.Errorf("%v: ProviderLive %d != matched+mismatched+local only %d", ds, e.ProviderLive, e.Matched+e.Mismatched+e.LocalOnly)
		}
	}
}

func TestNoSharesMeansNone(t *testing.T) {
	c := testConfig(2000)
	c.BadShare, c.NationalShare, c.NationalOnlyShare, c.RevisionShare, c.DeleteShare = -1, -1, -1, -1, -1
	items, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2000 {
		t.Fatalf("got %d items, want exactly the 2000 provider records", len(items))
	}
	for _, it := range items {
		if len(it.Bad) > 0 || it.Source != dmicv1.Source_SOURCE_PROVIDER {
			t.Fatal("with every share off, only good provider records are expected")
		}
	}
}

func TestAllDisagree(t *testing.T) {
	c := testConfig(2000)
	c.NationalShare, c.DisagreeShare = 1, 1
	items, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]int{}
	for _, it := range items {
		if it.Source == dmicv1.Source_SOURCE_NATIONAL && !it.NationalOnly {
			if it.Differs == "" {
				t.Fatal("national copy without a difference at DisagreeShare 1")
			}
			fields[it.Differs]++
		}
	}
	for _, f := range []string{"hrg_code", "treatment_function_code", "end_date_episode", "commissioner_code", "primary_diagnosis_icd"} {
		if fields[f] == 0 {
			t.Errorf("no national copy differs in %s (%v)", f, fields)
		}
	}
}

// verhoeff reports whether s passes the Verhoeff check SNOMED CT ids carry.
func verhoeff(s string) bool {
	d := [10][10]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
		{2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
		{4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
		{8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	p := [8][10]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
		{5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
		{9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
	c := 0
	for i := 0; i < len(s); i++ {
		c = d[c][p[i%8][int(s[len(s)-1-i]-'0')]]
	}
	return c == 0
}

func TestCodeTables(t *testing.T) {
	for _, s := range ecComplaints {
		if !verhoeff(s) {
			t.Errorf("chief complaint %s fails the SNOMED CT Verhoeff check", s)
		}
	}
	icd := regexp.MustCompile(`^[A-Z][0-9]{2}[0-9X]$`)
	opcs := regexp.MustCompile(`^[A-Z][0-9]{3}$`)
	hrg := regexp.MustCompile(`^[A-Z]{2}[0-9]{2}[A-Z]$`)
	for _, c := range apcCases {
		if !icd.MatchString(c.icd) || (c.opcs != "" && !opcs.MatchString(c.opcs)) || !hrg.MatchString(c.hrg) {
			t.Errorf("apc case %+v has a malformed code", c)
		}
	}
	for _, h := range []string{"HN12A", "VB01Z", "VB11Z", "LA04S"} {
		if a := altHRG(h); a == h || !hrg.MatchString(a) {
			t.Errorf("altHRG(%s) = %s", h, a)
		}
	}
}

func TestDates(t *testing.T) {
	for d := daysFromCivil(1870, 1, 1); d < daysFromCivil(2101, 1, 1); d += 13 {
		want := time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
		if got := dateString(d); got != want {
			t.Fatalf("dateString(%d) = %s, want %s", d, got, want)
		}
		if back, ok := parseDay(want); !ok || back != d {
			t.Fatalf("parseDay(%s) = %d, want %d", want, back, d)
		}
	}
	sec := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).Unix()
	if got := dateTimeString(sec); got != "2026-03-04T05:06:07Z" {
		t.Errorf("dateTimeString = %s", got)
	}
}

func TestJSONEscaping(t *testing.T) {
	r := record{}
	r.add("a", "x\"y\\z\n\t\x01é")
	r.addNum("n", -12)
	var m map[string]any
	if err := json.Unmarshal(r.json(), &m); err != nil {
		t.Fatal(err)
	}
	if m["a"] != "x\"y\\z\n\t\x01é" || m["n"] != float64(-12) || bytes.IndexByte(r.json(), '\n') >= 0 {
		t.Errorf("round trip gave %v", m)
	}
}

func BenchmarkGenerate(b *testing.B) {
	c := testConfig(10000)
	b.ReportAllocs()
	var items int
	for b.Loop() {
		n := 0
		if err := Stream(c, func(Item) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		items += n
	}
	b.ReportMetric(float64(c.Records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
}

// TestStreamWindowBounded: Stream must not hold the whole run, only the
// window of scheduled national copies, revisions and deletes.
func TestStreamWindowBounded(t *testing.T) {
	c := testConfig(60000).withDefaults()
	g := newGenerator(c)
	most := 0
	if err := g.run(func(Item) error {
		most = max(most, len(g.pending))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	limit := nationalDelayMin + nationalDelaySpan + revisionDelaySpan + deleteDelaySpan
	if most == 0 || most > limit {
		t.Errorf("at most %d items pending, want between 1 and %d", most, limit)
	}
}
