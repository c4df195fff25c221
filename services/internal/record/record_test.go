package record

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"google.golang.org/protobuf/proto"
)

func readExamples(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile("testdata/examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	return lines
}

func TestParseDataset(t *testing.T) {
	tests := []struct {
		in   string
		want dmicv1.Dataset
		ok   bool
	}{
		{"apc", dmicv1.Dataset_DATASET_APC, true},
		{"APC", dmicv1.Dataset_DATASET_APC, true},
		{"outpatient", dmicv1.Dataset_DATASET_OUTPATIENT, true},
		{"OP", dmicv1.Dataset_DATASET_OUTPATIENT, true},
		{"emergency_care", dmicv1.Dataset_DATASET_EMERGENCY_CARE, true},
		{"ECDS", dmicv1.Dataset_DATASET_EMERGENCY_CARE, true},
		{"ec", dmicv1.Dataset_DATASET_EMERGENCY_CARE, true},
		{"local_flow", dmicv1.Dataset_DATASET_LOCAL_FLOW, true},
		{" Plcm ", dmicv1.Dataset_DATASET_LOCAL_FLOW, true},
		{"", dmicv1.Dataset_DATASET_UNSPECIFIED, false},
		{"ae", dmicv1.Dataset_DATASET_UNSPECIFIED, false},
		{"apcx", dmicv1.Dataset_DATASET_UNSPECIFIED, false},
	}
	for _, tt := range tests {
		got, err := ParseDataset(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseDataset(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestDatasetName(t *testing.T) {
	want := map[dmicv1.Dataset]string{
		dmicv1.Dataset_DATASET_UNSPECIFIED:    "",
		dmicv1.Dataset_DATASET_APC:            "apc",
		dmicv1.Dataset_DATASET_OUTPATIENT:     "outpatient",
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: "emergency_care",
		dmicv1.Dataset_DATASET_LOCAL_FLOW:     "local_flow",
		dmicv1.Dataset(99):                    "",
	}
	for d, name := range want {
		if got := DatasetName(d); got != name {
			t.Errorf("DatasetName(%v) = %q, want %q", d, got, name)
		}
		if name == "" {
			continue
		}
		if back, err := ParseDataset(name); err != nil || back != d {
			t.Errorf("ParseDataset(DatasetName(%v)) = %v, %v", d, back, err)
		}
	}
}

// The examples are written in canonical form, so decoding and re-encoding
// each one must give back the same bytes.
func TestExamplesAreCanonical(t *testing.T) {
	wantDatasets := []dmicv1.Dataset{dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_OUTPATIENT, dmicv1.Dataset_DATASET_EMERGENCY_CARE, dmicv1.Dataset_DATASET_LOCAL_FLOW}
	lines := readExamples(t)
	if len(lines) != len(wantDatasets) {
		t.Fatalf("got %d examples, want %d", len(lines), len(wantDatasets))
	}
	for i, line := range lines {
		r, d, err := DecodeJSON(line, dmicv1.Dataset_DATASET_UNSPECIFIED)
		if err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		if d != wantDatasets[i] || DatasetOf(r) != d {
			t.Errorf("example %d: dataset %v (activity %v), want %v", i+1, d, DatasetOf(r), wantDatasets[i])
		}
		out, err := EncodeJSON(d, r)
		if err != nil {
			t.Fatalf("example %d: encode: %v", i+1, err)
		}
		if !bytes.Equal(out, line) {
			t.Errorf("example %d: re-encoded\n%s\nwant\n%s", i+1, out, line)
		}
	}
}

func fullRecords() map[dmicv1.Dataset]*dmicv1.CommissioningRecord {
	common := func() *dmicv1.CommissioningRecord {
		return &dmicv1.CommissioningRecord{
			CdsUniqueIdentifier:        "BRJ7-1",
			UpdateType:                 dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
			ApplicableDateTime:         "2026-01-06T09:15:00+01:00",
			ProviderCode:               "RJ7",
			SiteCode:                   "RJ701",
			CommissionerCode:           "36L",
			AdministrativeCategoryCode: "01",
			OverseasVisitorStatusCode:  "8",
			// The CAM inputs (issue 14).
			OverseasVisitorChargingCategory: "A",
			ServiceCode:                     "NCBPS01C",
			CommissionedServiceCategoryCode: "21",
			LocalPublicHealthIndicator:      "N",
			Patient: &dmicv1.Patient{
				NhsNumber:                    "9434765919",
				NhsNumberStatusIndicatorCode: "01",
				LocalPatientIdentifier:       "LP \"quoted\" \\ back\tslash é",
				PersonBirthDate:              "1970-03-14",
				PostcodeOfUsualAddress:       "SW17 0QT",
			},
			Demographics: &dmicv1.Demographics{PersonGenderCode: "2", EthnicCategory: "A", GeneralMedicalPracticeCode: "H85001"},
		}
	}
	a := common()
	a.Activity = &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{
		CdsType: "130", HospitalProviderSpellNumber: "S1", EpisodeNumber: "01", StartDateHospitalProviderSpell: "2026-01-02",
		AdmissionMethodCode: "21", SourceOfAdmissionCode: "19", StartDateEpisode: "2026-01-02", EndDateEpisode: "2026-01-05",
		DischargeDateHospitalProviderSpell: "2026-01-05", DischargeMethodCode: "1", DischargeDestinationCode: "19",
		PatientClassificationCode: "1", TreatmentFunctionCode: "300", PrimaryDiagnosisIcd: "I219", PrimaryProcedureOpcs: "K634", HrgCode: "EB10A",
		SecondaryDiagnosesIcd: "E119;I10X", SecondaryProceduresOpcs: "Y534",
	}}
	a.PointOfDeliveryCode = "NEL"
	o := common()
	o.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	o.Activity = &dmicv1.CommissioningRecord_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{
		AttendanceIdentifier: "A1", AppointmentDate: "2026-01-08", AttendedOrDidNotAttendCode: "5", FirstAttendanceCode: "1",
		TreatmentFunctionCode: "320", PriorityTypeCode: "1", PrimaryProcedureOpcs: "U201", HrgCode: "WF01B",
		PrimaryDiagnosisIcd: "Z318", SecondaryDiagnosesIcd: "N979", SecondaryProceduresOpcs: "Q131",
	}}
	o.PointOfDeliveryCode = "OPFA"
	e := common()
	e.Activity = &dmicv1.CommissioningRecord_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{
		EcAttendanceIdentifier: "E1", EcArrivalDate: "2026-01-09", EcArrivalTime: "01:12", EcDepartmentType: "01",
		EcChiefComplaintSnomedCt: "29857009", EcDepartureDate: "2026-01-09", HrgCode: "VB09Z",
	}}
	e.PointOfDeliveryCode = "AE"
	l := common()
	l.Activity = &dmicv1.CommissioningRecord_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{
		ActivityDate: "2026-01-12", PointOfDeliveryCode: "OPPROC", TreatmentFunctionCode: "130", HrgCode: "BZ84A",
		PricePence: -14250, ActivityCount: 3,
	}}
	return map[dmicv1.Dataset]*dmicv1.CommissioningRecord{
		dmicv1.Dataset_DATASET_APC: a, dmicv1.Dataset_DATASET_OUTPATIENT: o,
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: e, dmicv1.Dataset_DATASET_LOCAL_FLOW: l,
	}
}

func TestRoundTripEveryDataset(t *testing.T) {
	for d, want := range fullRecords() {
		t.Run(DatasetName(d), func(t *testing.T) {
			data, err := EncodeJSON(d, want)
			if err != nil {
				t.Fatal(err)
			}
			// Every field of the dataset has a value, so every name appears.
			for _, name := range FieldNames(d) {
				if !bytes.Contains(data, []byte(`"`+name+`":`)) {
					t.Errorf("encoded record lacks field %s", name)
				}
			}
			got, gd, err := DecodeJSON(data, dmicv1.Dataset_DATASET_UNSPECIFIED)
			if err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			if gd != d {
				t.Errorf("dataset %v, want %v", gd, d)
			}
			if !proto.Equal(got, want) {
				t.Errorf("round trip changed the record:\n got %v\nwant %v", got, want)
			}
			// Unspecified dataset on encode means the record's own.
			again, err := EncodeJSON(dmicv1.Dataset_DATASET_UNSPECIFIED, got)
			if err != nil || !bytes.Equal(again, data) {
				t.Errorf("encode with dataset from the record = %s, %v", again, err)
			}
		})
	}
}

func TestEncodeRejectsMismatch(t *testing.T) {
	r := fullRecords()[dmicv1.Dataset_DATASET_APC]
	if _, err := EncodeJSON(dmicv1.Dataset_DATASET_OUTPATIENT, r); err == nil {
		t.Error("encoding an apc record as outpatient succeeded")
	}
	if _, err := EncodeJSON(dmicv1.Dataset_DATASET_UNSPECIFIED, &dmicv1.CommissioningRecord{CdsUniqueIdentifier: "x"}); err == nil {
		t.Error("encoding a record with no dataset succeeded")
	}
	if _, err := EncodeJSON(dmicv1.Dataset_DATASET_APC, nil); err == nil {
		t.Error("encoding nil succeeded")
	}
	bad := &dmicv1.CommissioningRecord{UpdateType: dmicv1.UpdateType(5)}
	if _, err := EncodeJSON(dmicv1.Dataset_DATASET_APC, bad); err == nil {
		t.Error("encoding an unknown update type succeeded")
	}
	// A record with no activity encodes as the dataset it is asked for.
	out, err := EncodeJSON(dmicv1.Dataset_DATASET_LOCAL_FLOW, &dmicv1.CommissioningRecord{CdsUniqueIdentifier: "x", UpdateType: dmicv1.UpdateType_UPDATE_TYPE_DELETE})
	if err != nil || string(out) != `{"dataset":"local_flow","cds_unique_identifier":"x","cds_update_type":"1"}` {
		t.Errorf("encode without activity = %s, %v", out, err)
	}
}

func TestEncodeEscapes(t *testing.T) {
	r := &dmicv1.CommissioningRecord{CdsUniqueIdentifier: "a\"b\\c\n\r\t\x01\u2028\xff"}
	out, err := EncodeJSON(dmicv1.Dataset_DATASET_APC, r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"dataset":"apc","cds_unique_identifier":"a\"b\\c\n\r\t\u0001\u2028\ufffd"}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		fallback dmicv1.Dataset
		check    func(*dmicv1.CommissioningRecord) bool
	}{
		{"dataset from fallback", `{"cds_unique_identifier":"x","cds_type":"130"}`, dmicv1.Dataset_DATASET_APC,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetApc().GetCdsType() == "130" }},
		{"record dataset wins over fallback", `{"dataset":"op","appointment_date":"2026-01-01"}`, dmicv1.Dataset_DATASET_APC,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetOutpatient().GetAppointmentDate() == "2026-01-01"
			}},
		{"empty dataset means fallback", `{"dataset":"","activity_date":"2026-01-01"}`, dmicv1.Dataset_DATASET_LOCAL_FLOW,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetLocalFlow().GetActivityDate() == "2026-01-01" }},
		{"null dataset means fallback", `{"dataset":null}`, dmicv1.Dataset_DATASET_LOCAL_FLOW,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetLocalFlow() != nil }},
		{"nhs number as JSON number", `{"dataset":"apc","nhs_number":9434765919}`, 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetPatient().GetNhsNumber() == "9434765919" }},
		{"nhs number with exponent", `{"dataset":"apc","nhs_number":9.434765919E9}`, 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetPatient().GetNhsNumber() == "9434765919" }},
		{"code as number", `{"dataset":"apc","cds_type":130,"admission_method_code":21.0}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetApc().GetCdsType() == "130" && r.GetApc().GetAdmissionMethodCode() == "21"
			}},
		{"integers as numbers", `{"dataset":"local_flow","price_pence":-14250,"activity_count":2}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetLocalFlow().GetPricePence() == -14250 && r.GetLocalFlow().GetActivityCount() == 2
			}},
		{"integers as strings", `{"dataset":"local_flow","price_pence":" 14250 ","activity_count":"1"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetLocalFlow().GetPricePence() == 14250 && r.GetLocalFlow().GetActivityCount() == 1
			}},
		{"integer with exponent", `{"dataset":"local_flow","price_pence":1.425e4}`, 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetLocalFlow().GetPricePence() == 14250 }},
		{"whitespace trimmed", "{\"dataset\":\" apc \",\"provider_code\":\"  RJ7\\t\",\"person_birth_date\":\" 1970-01-01\"}", 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetProviderCode() == "RJ7" && r.GetPatient().GetPersonBirthDate() == "1970-01-01"
			}},
		{"escapes decoded", `{"dataset":"apc","site_code":"R\u004A7\"01"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetSiteCode() == `RJ7"01` }},
		{"escaped field name", `{"dataset":"apc","site\u005fcode":"RJ701"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetSiteCode() == "RJ701" }},
		{"null is no value", `{"dataset":"apc","nhs_number":null,"site_code":null}`, 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetPatient() == nil && r.GetSiteCode() == "" }},
		// Absent or empty: unspecified (a replacement downstream), so that
		// validation can warn of it (CDS-003).
		{"update type absent is unspecified", `{"dataset":"apc"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_UNSPECIFIED
			}},
		{"update type empty is unspecified", `{"dataset":"apc","cds_update_type":""}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_UNSPECIFIED
			}},
		{"update type 9", `{"dataset":"apc","cds_update_type":"9"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_REPLACE
			}},
		{"update type 1 delete", `{"dataset":"apc","cds_update_type":"1"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_DELETE
			}},
		{"update type as number", `{"dataset":"apc","cds_update_type":1}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetUpdateType() == dmicv1.UpdateType_UPDATE_TYPE_DELETE
			}},
		{"no patient fields no patient", `{"dataset":"apc","cds_unique_identifier":"x","person_gender_code":"1"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool {
				return r.GetPatient() == nil && r.GetDemographics().GetPersonGenderCode() == "1"
			}},
		{"shared field per dataset", `{"dataset":"ec","hrg_code":"VB09Z"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetEmergencyCare().GetHrgCode() == "VB09Z" }},
		{"duplicate key last wins", `{"dataset":"apc","site_code":"A","site_code":"B"}`, 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetSiteCode() == "B" }},
		{"whitespace around tokens", " \t{ \"dataset\" : \"apc\" , \"site_code\" : \"A\" } \r", 0,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetSiteCode() == "A" }},
		{"empty object with fallback", `{}`, dmicv1.Dataset_DATASET_APC,
			func(r *dmicv1.CommissioningRecord) bool { return r.GetApc() != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, err := DecodeJSON([]byte(tt.in), tt.fallback)
			if err != nil {
				t.Fatalf("DecodeJSON: %v", err)
			}
			if !tt.check(r) {
				t.Errorf("unexpected record %v", r)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		fallback dmicv1.Dataset
		rule     string
		field    string
		// secret must not appear in the error text.
		secret string
	}{
		{"bad json", `{"dataset":"apc",`, 0, RuleJSON, "", ""},
		{"empty line", ``, 0, RuleJSON, "", ""},
		{"array", `["apc"]`, 0, RuleJSON, "", ""},
		{"string", `"9434765919"`, 0, RuleJSON, "", "9434765919"},
		{"number", `9434765919`, 0, RuleJSON, "", "9434765919"},
		{"two objects", `{"dataset":"apc"}{"dataset":"apc"}`, 0, RuleJSON, "", ""},
		{"not utf8", "{\"dataset\":\"apc\",\"site_code\":\"\xff\"}", 0, RuleJSON, "", ""},
		{"no dataset", `{"nhs_number":"9434765919"}`, 0, RuleDataset, "", "9434765919"},
		{"unknown field", `{"dataset":"apc","patient_name":"Jane Smith"}`, 0, RuleUnknownField, "patient_name", "Jane"},
		{"unknown field before dataset check", `{"nhs":"9434765919"}`, dmicv1.Dataset_DATASET_APC, RuleUnknownField, "nhs", "9434765919"},
		{"field of other dataset", `{"dataset":"apc","appointment_date":"2026-01-01"}`, 0, RuleFieldDataset, "appointment_date", "2026-01-01"},
		{"field of other dataset via fallback", `{"price_pence":5}`, dmicv1.Dataset_DATASET_OUTPATIENT, RuleFieldDataset, "price_pence", ""},
		{"object for string", `{"dataset":"apc","nhs_number":{"value":"9434765919"}}`, 0, RuleType, "nhs_number", "9434765919"},
		{"array for string", `{"dataset":"apc","person_birth_date":["1970-03-14"]}`, 0, RuleType, "person_birth_date", "1970-03-14"},
		{"bool for string", `{"dataset":"apc","site_code":true}`, 0, RuleType, "site_code", ""},
		{"bool for integer", `{"dataset":"local_flow","price_pence":false}`, 0, RuleType, "price_pence", ""},
		{"object for update type", `{"dataset":"apc","cds_update_type":{}}`, 0, RuleType, "cds_update_type", ""},
		{"number for dataset", `{"dataset":1}`, 0, RuleType, "dataset", ""},
		{"unknown dataset", `{"dataset":"community"}`, 0, RuleValue, "dataset", "community"},
		{"update type 2", `{"dataset":"apc","cds_update_type":"2"}`, 0, RuleValue, "cds_update_type", ""},
		{"update type text", `{"dataset":"apc","cds_update_type":"purge"}`, 0, RuleValue, "cds_update_type", "purge"},
		{"integer not a number", `{"dataset":"local_flow","price_pence":"12.50"}`, 0, RuleValue, "price_pence", "12.50"},
		{"integer with fraction", `{"dataset":"local_flow","activity_count":1.5}`, 0, RuleValue, "activity_count", ""},
		{"integer out of range", `{"dataset":"local_flow","price_pence":99999999999999999999}`, 0, RuleValue, "price_pence", "99999999999999999999"},
		{"huge exponent", `{"dataset":"apc","nhs_number":1e999999}`, 0, RuleValue, "nhs_number", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, err := DecodeJSON([]byte(tt.in), tt.fallback)
			if err == nil {
				t.Fatalf("DecodeJSON succeeded: %v", r)
			}
			if r != nil {
				t.Error("a record came back with the error")
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if de.RuleID != tt.rule || de.Field != tt.field {
				t.Errorf("rule %s field %q, want rule %s field %q (%v)", de.RuleID, de.Field, tt.rule, tt.field, err)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error text %q holds the value", err)
			}
		})
	}
}

func TestDecodeErrorCarriesRecordID(t *testing.T) {
	_, d, err := DecodeJSON([]byte(`{"dataset":"apc","cds_update_type":"7","cds_unique_identifier":"BRJ7-42"}`), 0)
	var de *DecodeError
	if !errors.As(err, &de) || de.RecordID != "BRJ7-42" || d != dmicv1.Dataset_DATASET_APC {
		t.Errorf("got %#v, dataset %v", err, d)
	}
}

func TestDecodeErrorText(t *testing.T) {
	tests := []struct {
		e    DecodeError
		want string
	}{
		{DecodeError{Line: 3, Field: "person_birth_date", RuleID: "DEC-TYPE", Message: "must be a string, not an object"},
			"line 3: field person_birth_date: must be a string, not an object (rule DEC-TYPE)"},
		{DecodeError{RuleID: "DEC-JSON", Message: "record is not valid JSON"}, "record is not valid JSON (rule DEC-JSON)"},
		{DecodeError{Line: 7, RuleID: "DEC-DATASET", Message: "m"}, "line 7: m (rule DEC-DATASET)"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestUnknownFieldNameIsBounded(t *testing.T) {
	long := strings.Repeat("x", 500)
	_, _, err := DecodeJSON([]byte(`{"dataset":"apc","`+long+`":"1"}`), 0)
	var de *DecodeError
	if !errors.As(err, &de) || de.RuleID != RuleUnknownField || len(de.Field) > 70 {
		t.Errorf("got %v", err)
	}
}

func TestPlainNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"},
		{"-0", "-0"},
		{"9434765919", "9434765919"},
		{"9.434765919e9", "9434765919"},
		{"9.434765919E+9", "9434765919"},
		{"1.50", "1.5"},
		{"1.0", "1"},
		{"-1.0", "-1"},
		{"-0.0", "0"},
		{"0.001", "0.001"},
		{"1e-3", "0.001"},
		{"12345e-2", "123.45"},
		{"1E2", "100"},
		{"0e5", "0"},
		{"1.5e1", "15"},
		{"-2.5e-1", "-0.25"},
		{"1e064", "1" + strings.Repeat("0", 64)},
	}
	for _, tt := range tests {
		got, ok := plainNumber(tt.in)
		if !ok || got != tt.want {
			t.Errorf("plainNumber(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	for _, in := range []string{"1e65", "1e1000", "1e-99999"} {
		if got, ok := plainNumber(in); ok {
			t.Errorf("plainNumber(%q) = %q, want failure", in, got)
		}
	}
}

func TestRecordIDAndActivityDate(t *testing.T) {
	recs := fullRecords()
	want := map[dmicv1.Dataset]string{
		dmicv1.Dataset_DATASET_APC:            "2026-01-05",
		dmicv1.Dataset_DATASET_OUTPATIENT:     "2026-01-08",
		dmicv1.Dataset_DATASET_EMERGENCY_CARE: "2026-01-09",
		dmicv1.Dataset_DATASET_LOCAL_FLOW:     "2026-01-12",
	}
	for d, r := range recs {
		if got := ActivityDate(r); got != want[d] {
			t.Errorf("%s: ActivityDate = %q, want %q", DatasetName(d), got, want[d])
		}
		if RecordID(r) != "BRJ7-1" {
			t.Errorf("%s: RecordID = %q", DatasetName(d), RecordID(r))
		}
	}
	open := &dmicv1.CommissioningRecord{Activity: &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{StartDateEpisode: "2026-02-01"}}}
	if got := ActivityDate(open); got != "2026-02-01" {
		t.Errorf("unfinished episode: ActivityDate = %q, want the start date", got)
	}
	if ActivityDate(nil) != "" || ActivityDate(&dmicv1.CommissioningRecord{}) != "" || RecordID(nil) != "" {
		t.Error("record without activity has an activity date or id")
	}
}

func TestFieldNames(t *testing.T) {
	apcNames := FieldNames(dmicv1.Dataset_DATASET_APC)
	if apcNames[0] != "dataset" || apcNames[1] != "cds_unique_identifier" || apcNames[len(apcNames)-1] != "hrg_code" {
		t.Errorf("apc field order: %v", apcNames)
	}
	all := FieldNames(dmicv1.Dataset_DATASET_UNSPECIFIED)
	seen := map[string]bool{}
	for _, n := range all {
		if seen[n] {
			t.Errorf("field %s listed twice", n)
		}
		seen[n] = true
		if DataDictionaryItem(n) == "" {
			t.Errorf("field %s has no data dictionary item", n)
		}
	}
	for _, d := range []dmicv1.Dataset{1, 2, 3, 4} {
		for _, n := range FieldNames(d) {
			if !seen[n] {
				t.Errorf("%s field %s missing from the full list", DatasetName(d), n)
			}
		}
	}
	if FieldNames(dmicv1.Dataset(9)) != nil {
		t.Error("unknown dataset has fields")
	}
}

func TestGetter(t *testing.T) {
	r := &dmicv1.CommissioningRecord{
		UpdateType: dmicv1.UpdateType_UPDATE_TYPE_DELETE,
		Patient:    &dmicv1.Patient{NhsNumber: "9434765919"},
		Activity:   &dmicv1.CommissioningRecord_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{PricePence: 12345, HrgCode: "HN12A"}},
	}
	for _, c := range []struct {
		name string
		ds   dmicv1.Dataset
		want string
		ok   bool
	}{
		{"nhs_number", dmicv1.Dataset_DATASET_LOCAL_FLOW, "9434765919", true},
		{"hrg_code", dmicv1.Dataset_DATASET_LOCAL_FLOW, "HN12A", true},
		{"price_pence", dmicv1.Dataset_DATASET_LOCAL_FLOW, "12345", true},
		{"cds_update_type", dmicv1.Dataset_DATASET_LOCAL_FLOW, "1", true},
		{"dataset", dmicv1.Dataset_DATASET_LOCAL_FLOW, "local_flow", true},
		{"cds_type", dmicv1.Dataset_DATASET_LOCAL_FLOW, "", false},
		{"no_such_field", dmicv1.Dataset_DATASET_APC, "", false},
		{"nhs_number", dmicv1.Dataset_DATASET_UNSPECIFIED, "", false},
	} {
		get, ok := Getter(c.name, c.ds)
		if ok != c.ok {
			t.Errorf("Getter(%s, %v) ok = %v, want %v", c.name, c.ds, ok, c.ok)
			continue
		}
		if ok && get(r) != c.want {
			t.Errorf("Getter(%s, %v) read %q, want %q", c.name, c.ds, get(r), c.want)
		}
	}
}
