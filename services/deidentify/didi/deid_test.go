package didi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

var (
	refOnce sync.Once
	ref     *refdata.Reference
	refErr  error
)

func sampleRef(t testing.TB) *refdata.Reference {
	t.Helper()
	refOnce.Do(func() { ref, refErr = refdata.LoadDir("../../../reference/sample") })
	if refErr != nil {
		t.Fatalf("load sample reference data: %v", refErr)
	}
	return ref
}

func testKey(version string, fill byte) Key {
	return Key{Version: version, Secret: bytes.Repeat([]byte{fill}, 32)}
}

func TestAgeAt(t *testing.T) {
	tests := []struct {
		name            string
		birth, activity string
		years, weeks    int
		wantErr         error
	}{
		{"birthday on the activity date", "2000-05-10", "2020-05-10", 20, 0, nil},
		{"day before the birthday", "2000-05-10", "2020-05-09", 19, 0, nil},
		{"day after the birthday", "2000-05-10", "2020-05-11", 20, 0, nil},
		{"birthday later in the year", "2000-12-31", "2020-01-01", 19, 0, nil},
		{"leap-day birth, non-leap year, 28 Feb", "2000-02-29", "2021-02-28", 20, 0, nil},
		{"leap-day birth, non-leap year, 1 Mar", "2000-02-29", "2021-03-01", 21, 0, nil},
		{"leap-day birth, leap year, 28 Feb", "2000-02-29", "2024-02-28", 23, 0, nil},
		{"leap-day birth, leap year, 29 Feb", "2000-02-29", "2024-02-29", 24, 0, nil},
		{"born 1 Mar, leap year 29 Feb", "2000-03-01", "2024-02-29", 23, 0, nil},
		{"born on the activity date", "2024-01-01", "2024-01-01", 0, 0, nil},
		{"six days old", "2024-01-01", "2024-01-07", 0, 0, nil},
		{"seven days old", "2024-01-01", "2024-01-08", 0, 1, nil},
		{"364 days old across a leap day", "2024-01-01", "2024-12-30", 0, 52, nil},
		{"leap baby day before first birthday", "2024-02-29", "2025-02-28", 0, 52, nil},
		{"leap baby first birthday on 1 Mar", "2024-02-29", "2025-03-01", 1, 0, nil},
		{"first birthday", "2023-03-15", "2024-03-15", 1, 0, nil},
		{"very old", "1900-01-01", "2024-06-30", 124, 0, nil},
		{"birth after activity", "2024-01-02", "2024-01-01", 0, 0, errBirthAfter},
		{"birth not a date", "2023-02-29", "2024-01-01", 0, 0, errBirthDate},
		{"birth wrong form", "2023-2-01", "2024-01-01", 0, 0, errBirthDate},
		{"birth missing", "", "2024-01-01", 0, 0, errBirthDate},
		{"activity not a date", "2000-01-01", "2024-13-01", 0, 0, errActivityDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y, w, err := AgeAt(tt.birth, tt.activity)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if tt.birth != "" && strings.Contains(err.Error(), tt.birth) {
					t.Errorf("error %q repeats the birth date", err)
				}
				return
			}
			if y != tt.years || w != tt.weeks {
				t.Errorf("AgeAt(%s, %s) = %d years %d weeks, want %d years %d weeks", tt.birth, tt.activity, y, w, tt.years, tt.weeks)
			}
		})
	}
}

func TestAgeBand(t *testing.T) {
	tests := map[int]string{-1: "", 0: "0", 1: "1-4", 4: "1-4", 5: "5-9", 9: "5-9", 10: "10-14", 44: "40-44", 85: "85-89", 89: "85-89", 90: "90+", 120: "90+"}
	for years, want := range tests {
		if got := AgeBand(years); got != want {
			t.Errorf("AgeBand(%d) = %q, want %q", years, got, want)
		}
	}
}

func TestPseudonymise(t *testing.T) {
	k1, k2 := testKey("v1", 1), testKey("v2", 2)
	p1, p2 := NewPseudonymiser(k1), NewPseudonymiser(k2)

	// The documented form: hex(HMAC-SHA256(secret, the 10 digits)).
	m := hmac.New(sha256.New, k1.Secret)
	m.Write([]byte("9434765919"))
	want := hex.EncodeToString(m.Sum(nil))

	got := p1.Pseudonymise("9434765919")
	if got != want || len(got) != 64 {
		t.Fatalf("Pseudonymise = %q, want %q", got, want)
	}
	// Deterministic across calls and instances (the reused hash is reset).
	p1.Pseudonymise("9449305552")
	if g := p1.Pseudonymise("9434765919"); g != want {
		t.Error("second call gave a different pseudonym")
	}
	if g := NewPseudonymiser(k1).Pseudonymise("9434765919"); g != want {
		t.Error("new Pseudonymiser with the same key gave a different pseudonym")
	}
	// Domain separation: another key, another pseudonym.
	if g := p2.Pseudonymise("9434765919"); g == want || len(g) != 64 {
		t.Errorf("key v2 gave %q, want a different 64-character pseudonym", g)
	}
	if p1.Pseudonymise("9449305552") == want {
		t.Error("two numbers gave one pseudonym")
	}
	// One form of NHS number (package nhs): 10 digits and nothing else, as
	// validation's NHS-001 requires, so a number written with separators is
	// not pseudonymised as if it were one.
	for _, bad := range []string{"", "943476591", "94347659190", "943476591X", "943 476 5919", " 943-476-5919 ", "9434765919 "} {
		if g := p1.Pseudonymise(bad); g != "" {
			t.Errorf("Pseudonymise(%q) = %q, want \"\"", bad, g)
		}
	}
}

func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
	return p
}

func TestLoadKey(t *testing.T) {
	secret := bytes.Repeat([]byte{0xab}, 32)
	hexS := hex.EncodeToString(secret)
	b64 := base64.StdEncoding.EncodeToString(secret)
	short := hex.EncodeToString(secret[:31])

	good := []struct{ name, content string }{
		{"hex", "v1:" + hexS + "\n"},
		{"base64", "v1:" + b64 + "\n"},
		{"raw base64, CRLF", "v1:" + base64.RawStdEncoding.EncodeToString(secret) + "\r\n"},
		{"trailing lines ignored", "v1:" + hexS + "\nsecond line\n"},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKey(writeKeyFile(t, tt.content, 0o600))
			if err != nil {
				t.Fatal(err)
			}
			if k.Version != "v1" || !bytes.Equal(k.Secret, secret) {
				t.Errorf("LoadKey = version %q, %d bytes", k.Version, len(k.Secret))
			}
		})
	}

	bad := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"short secret", "v1:" + short + "\n", 0o600, "at least 32"},
		{"world-readable", "v1:" + hexS + "\n", 0o604, "readable by everyone"},
		{"no version", hexS + "\n", 0o600, "<version>:<secret>"},
		{"bad version", "v 1:" + hexS + "\n", 0o600, "key version"},
		{"not hex or base64", "v1:" + strings.Repeat("!", 64) + "\n", 0o600, "neither hex nor base64"},
		{"empty", "", 0o600, "<version>:<secret>"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKey(writeKeyFile(t, tt.content, tt.mode))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			for _, s := range []string{hexS, b64, short, strings.Repeat("!", 64)} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains the secret", err)
				}
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := LoadKey(filepath.Join(t.TempDir(), "nope"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("no path", func(t *testing.T) {
		if _, err := LoadKey(""); err == nil {
			t.Error("LoadKey(\"\") succeeded")
		}
	})
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	k := Key{Version: "v1", Secret: []byte("0123456789abcdef0123456789abcdefSECRET")}
	d := NewDeidentifier(testRing(t, k), nil)
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("key", "key", k, "deid", d)
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%v", &k),
		fmt.Sprintf("%+v", struct{ K Key }{k}),
		fmt.Sprint(d), fmt.Sprintf("%#v", d), fmt.Sprint(NewPseudonymiser(k)),
		logBuf.String(),
	}
	for _, s := range outs {
		if strings.Contains(s, "SECRET") || strings.Contains(s, "0123456789abcdef") || strings.Contains(s, "[48 49 50") {
			t.Errorf("printed key material: %s", s)
		}
	}
	if !strings.Contains(fmt.Sprint(k), "v1") {
		t.Errorf("String() = %q, want the version", k)
	}
}

func TestGenerateKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys", "dev.key") // directory made on demand
	if err := GenerateKeyFile(p, "dev-1"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %#o, want 0600", st.Mode().Perm())
	}
	k, err := LoadKey(p)
	if err != nil {
		t.Fatalf("LoadKey(generated): %v", err)
	}
	if k.Version != "dev-1" || len(k.Secret) != 32 {
		t.Errorf("generated key: version %q, %d bytes", k.Version, len(k.Secret))
	}
	if err := GenerateKeyFile(p, "dev-2"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second GenerateKeyFile: err = %v, want fs.ErrExist", err)
	}
	if k2, _ := LoadKey(p); !bytes.Equal(k2.Secret, k.Secret) {
		t.Error("existing key was overwritten")
	}
	if err := GenerateKeyFile(filepath.Join(t.TempDir(), "k"), "bad version"); err == nil {
		t.Error("GenerateKeyFile accepted a bad version")
	}
}

// Identifiers of the test record, each chosen so it cannot occur by chance
// in a de-identified output.
const (
	inNHS      = "9434765919"
	inDOB      = "1961-07-23"
	inPostcode = "SM5 1AA"
	inLocalID  = "LPI778899Q"
)

func apcRecord() *dmicv1.CommissioningRecord {
	return &dmicv1.CommissioningRecord{
		CdsUniqueIdentifier:        "BRVR00EP0001",
		UpdateType:                 dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
		ApplicableDateTime:         "2025-05-02T10:00:00Z",
		ProviderCode:               "RVR",
		SiteCode:                   "RVR01",
		CommissionerCode:           "36L00",
		AdministrativeCategoryCode: "01",
		OverseasVisitorStatusCode:  "8",
		Patient: &dmicv1.Patient{
			NhsNumber:                    inNHS,
			NhsNumberStatusIndicatorCode: "01",
			LocalPatientIdentifier:       inLocalID,
			PersonBirthDate:              inDOB,
			PostcodeOfUsualAddress:       "sm51aa",
		},
		Demographics: &dmicv1.Demographics{PersonGenderCode: "2", EthnicCategory: "A", GeneralMedicalPracticeCode: "H85030"},
		Activity: &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{
			CdsType: "130", HospitalProviderSpellNumber: "SP1", EpisodeNumber: "1",
			StartDateHospitalProviderSpell: "2025-04-28", StartDateEpisode: "2025-04-28", EndDateEpisode: "2025-05-01",
			AdmissionMethodCode: "21", TreatmentFunctionCode: "300", PrimaryDiagnosisIcd: "I219", HrgCode: "EB10A",
		}},
	}
}

func TestDeidentifyAPC(t *testing.T) {
	d := NewDeidentifier(testRing(t, testKey("v1", 7)), sampleRef(t))
	in := apcRecord()
	before := proto.Clone(in)
	got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, in)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, before) {
		t.Error("Deidentify changed its input")
	}
	want := &dmicv1.DeidentifiedActivity{
		CdsUniqueIdentifier:          "BRVR00EP0001",
		UpdateType:                   dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
		ApplicableDateTime:           "2025-05-02T10:00:00Z",
		ProviderCode:                 "RVR",
		SiteCode:                     "RVR01",
		SubmittedCommissionerCode:    "36L00",
		AdministrativeCategoryCode:   "01",
		OverseasVisitorStatusCode:    "8",
		PseudoNhsNumber:              NewPseudonymiser(testKey("v1", 7)).Pseudonymise(inNHS),
		PseudonymKeyVersion:          "v1",
		PseudonymDomain:              DomainAnalytics,
		NhsNumberStatusIndicatorCode: "01",
		AgeAtActivityYears:           63,
		AgeBand:                      "60-64",
		ActivityDate:                 "2025-05-01",
		Demographics:                 &dmicv1.Demographics{PersonGenderCode: "2", EthnicCategory: "A", GeneralMedicalPracticeCode: "H85030"},
		Residence: &dmicv1.Residence{
			Lsoa_2011: "E01004128", Lsoa_2021: "E01004128", Msoa_2011: "E02000841", Msoa_2021: "E02000841",
			LocalAuthority: "E09000029", SubIcb: "36L", Icb: "QWE", Country: refdata.CountryEngland, PostcodeSector: "SM5 1",
			ImdDecile:  4, // E01004128 in imd2025_lsoa21.csv
			HealthArea: "E38000245", Region: "E40000003",
		},
		Activity: &dmicv1.DeidentifiedActivity_Apc{Apc: proto.Clone(in.GetApc()).(*dmicv1.ApcEpisode)},
	}
	if !proto.Equal(got, want) {
		t.Errorf("Deidentify =\n%v\nwant\n%v", prototext.Format(got), prototext.Format(want))
	}
	if got.GetApc() == in.GetApc() {
		t.Error("activity is shared with the input, want a copy")
	}
}

// The de-identified output, in every encoding it travels in, holds none of
// the identifiers of the input.
func TestDeidentifyOutputHasNoIdentifiers(t *testing.T) {
	d := NewDeidentifier(testRing(t, testKey("v1", 7)), sampleRef(t))
	in := apcRecord()
	in.Patient.PostcodeOfUsualAddress = inPostcode
	got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, in)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := proto.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	txt := []byte(prototext.Format(got))
	forbidden := []string{inNHS, "943 476 5919", inDOB, "19610723", inPostcode, "SM51AA", inLocalID}
	for enc, b := range map[string][]byte{"binary": bin, "json": js, "text": txt} {
		for _, s := range forbidden {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s encoding of the output contains an identifier (%s)", enc, s)
			}
		}
	}
	// Guard the guard: the same check finds the identifiers in the input.
	inBin, _ := proto.Marshal(in)
	for _, s := range forbidden[:1] {
		if !bytes.Contains(inBin, []byte(s)) {
			t.Fatalf("check is broken: input encoding lacks %s", s)
		}
	}
}

func TestDeidentifyPseudonymAbsent(t *testing.T) {
	d := NewDeidentifier(testRing(t, testKey("v1", 7)), nil)
	tests := []struct{ nhs, reason string }{
		{"", AbsentMissing},
		{"   ", AbsentMissing},
		{"9434765918", AbsentInvalid}, // bad check digit
		{"0000000000", AbsentInvalid},
		{"943476591", AbsentInvalid},
		{"94347659AB", AbsentInvalid},
		{"9434765919", ""},
		{"943 476 5919", AbsentInvalid}, // NHS-001 refuses it: not an NHS number here either
		{"943-476-5919", AbsentInvalid},
		{"4000000020", ""},            // check digit 11 read as 0
		{"4000000080", AbsentInvalid}, // check value 10: no valid number
	}
	for _, tt := range tests {
		r := apcRecord()
		r.Patient.NhsNumber = tt.nhs
		got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
		if err != nil {
			t.Fatal(err)
		}
		if got.PseudonymAbsentReason != tt.reason {
			t.Errorf("NHS number %q: absent reason %q, want %q", tt.nhs, got.PseudonymAbsentReason, tt.reason)
		}
		if (tt.reason == "") != (got.PseudoNhsNumber != "" && got.PseudonymKeyVersion == "v1") {
			t.Errorf("NHS number %q: pseudonym %q version %q", tt.nhs, got.PseudoNhsNumber, got.PseudonymKeyVersion)
		}
	}
}

func TestDeidentifyResidence(t *testing.T) {
	d := NewDeidentifier(testRing(t, testKey("v1", 7)), sampleRef(t))
	tests := []struct {
		postcode string
		want     *dmicv1.Residence
	}{
		{"ZZ99 3VZ", &dmicv1.Residence{Note: NoteNoFixedAbode, PseudoPostcode: "3VZ"}},
		{"zz993vz", &dmicv1.Residence{Note: NoteNoFixedAbode, PseudoPostcode: "3VZ"}},
		{"ZZ99 3WZ", &dmicv1.Residence{Note: NoteNotKnown, PseudoPostcode: "3WZ"}},
		{"ZZ99 3CZ", &dmicv1.Residence{Country: "E92000001", Note: NoteEnglandNOS, PseudoPostcode: "3CZ"}},
		{"ZZ99 1WZ", &dmicv1.Residence{Country: "S92000003", Note: NoteScotlandNOS, PseudoPostcode: "1WZ"}},
		{"ZZ99 2WZ", &dmicv1.Residence{Country: "N92000002", Note: NoteNorthernIreland, PseudoPostcode: "2WZ"}},
		{"ZZ99 3GZ", &dmicv1.Residence{Country: "W92000004", Note: NoteWalesNOS, PseudoPostcode: "3GZ"}},
		{"ZZ99 6CZ", &dmicv1.Residence{Note: NoteOverseas, PseudoPostcode: "6CZ"}},
		{"ZZ99 4HZ", &dmicv1.Residence{Note: NoteOverseas, PseudoPostcode: "4HZ"}},
		{"SW1A 1AA", &dmicv1.Residence{PostcodeSector: "SW1A 1", Note: NoteNotInReference}},
		{"", &dmicv1.Residence{Note: NotePostcodeMissing}},
		{"NOT A POSTCODE", &dmicv1.Residence{Note: NotePostcodeInvalid}},
		{"LD1 5AB", &dmicv1.Residence{Lsoa_2011: "W01000455", Lsoa_2021: "W01000455", Msoa_2011: "W02000109", Msoa_2021: "W02000109",
			LocalAuthority: "W06000023", Country: "W92000004", PostcodeSector: "LD1 5", HealthArea: "W11000024", Region: "W99999999"}},
		{"SM2 7HS", &dmicv1.Residence{Lsoa_2011: "E01032624", Lsoa_2021: "E01032624", Msoa_2011: "E02006837", Msoa_2021: "E02006837",
			LocalAuthority: "E07000208", SubIcb: "92A", Icb: "QXU", Country: "E92000001", PostcodeSector: "SM2 7", ImdDecile: 10,
			HealthArea: "E38000264", Region: "E40000005"}},
		// HMP High Down, an Appendix F site (CAM step E): its code and hub, never the postcode.
		{"SM2 5PJ", &dmicv1.Residence{Lsoa_2011: "E01030563", Lsoa_2021: "E01030563", Msoa_2011: "E02006376", Msoa_2021: "E02006376",
			LocalAuthority: "E07000211", SubIcb: "92A", Icb: "QXU", Country: "E92000001", PostcodeSector: "SM2 5", ImdDecile: 9,
			HealthArea: "E38000264", Region: "E40000005", JusticeFacilityCode: "YDE39", JusticeHub: "97T"}},
	}
	for _, tt := range tests {
		r := apcRecord()
		r.Patient.PostcodeOfUsualAddress = tt.postcode
		got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.Residence, tt.want) {
			t.Errorf("postcode %q: residence %v, want %v", tt.postcode, got.Residence, tt.want)
		}
	}
}

func TestDeidentifyDatasetsAndAge(t *testing.T) {
	d := NewDeidentifier(testRing(t, testKey("v1", 7)), sampleRef(t))
	base := func() *dmicv1.CommissioningRecord {
		r := apcRecord()
		r.Patient.PersonBirthDate = "2025-03-01"
		return r
	}
	tests := []struct {
		name     string
		ds       dmicv1.Dataset
		activity any
		date     string
		years    int32
		weeks    int32
		band     string
	}{
		{"apc end date", dmicv1.Dataset_DATASET_APC, &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{StartDateEpisode: "2025-03-02", EndDateEpisode: "2025-03-30"}}, "2025-03-30", 0, 4, "0"},
		{"apc unfinished uses start", dmicv1.Dataset_DATASET_APC, &dmicv1.CommissioningRecord_Apc{Apc: &dmicv1.ApcEpisode{StartDateEpisode: "2025-03-15"}}, "2025-03-15", 0, 2, "0"},
		{"outpatient", dmicv1.Dataset_DATASET_OUTPATIENT, &dmicv1.CommissioningRecord_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AppointmentDate: "2026-03-01"}}, "2026-03-01", 1, 0, "1-4"},
		{"emergency care", dmicv1.Dataset_DATASET_EMERGENCY_CARE, &dmicv1.CommissioningRecord_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{EcArrivalDate: "2026-02-28"}}, "2026-02-28", 0, 52, "0"},
		{"local flow, dataset unspecified", dmicv1.Dataset_DATASET_UNSPECIFIED, &dmicv1.CommissioningRecord_LocalFlow{LocalFlow: &dmicv1.LocalFlowRecord{ActivityDate: "2030-03-01", PricePence: 12345}}, "2030-03-01", 5, 0, "5-9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			switch a := tt.activity.(type) {
			case *dmicv1.CommissioningRecord_Apc:
				r.Activity = a
			case *dmicv1.CommissioningRecord_Outpatient:
				r.Activity = a
			case *dmicv1.CommissioningRecord_EmergencyCare:
				r.Activity = a
			case *dmicv1.CommissioningRecord_LocalFlow:
				r.Activity = a
			}
			got, err := d.Deidentify(tt.ds, r)
			if err != nil {
				t.Fatal(err)
			}
			if got.ActivityDate != tt.date || got.AgeAtActivityYears != tt.years || got.AgeAtActivityWeeks != tt.weeks || got.AgeBand != tt.band {
				t.Errorf("date %q age %d y %d w band %q; want %q %d %d %q", got.ActivityDate, got.AgeAtActivityYears, got.AgeAtActivityWeeks, got.AgeBand, tt.date, tt.years, tt.weeks, tt.band)
			}
			if got.GetActivity() == nil {
				t.Error("activity not copied")
			}
		})
	}

	t.Run("unknown age", func(t *testing.T) {
		for _, dob := range []string{"", "2025-13-01", "2025-06-01"} { // missing, invalid, after activity
			r := apcRecord()
			r.Patient.PersonBirthDate = dob
			got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
			if err != nil {
				t.Fatal(err)
			}
			if got.AgeBand != "" || got.AgeAtActivityYears != 0 || got.AgeAtActivityWeeks != 0 {
				t.Errorf("DOB %q: age %d/%d band %q, want unknown", dob, got.AgeAtActivityYears, got.AgeAtActivityWeeks, got.AgeBand)
			}
		}
	})
}

func TestDeidentifyErrors(t *testing.T) {
	d := NewDeidentifier(testRing(t, testKey("v1", 7)), nil)
	if _, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, nil); err == nil {
		t.Error("nil record: no error")
	}
	r := apcRecord()
	_, err := d.Deidentify(dmicv1.Dataset_DATASET_OUTPATIENT, r)
	if err == nil || !strings.Contains(err.Error(), "apc") || !strings.Contains(err.Error(), "outpatient") {
		t.Errorf("dataset mismatch: err = %v", err)
	}
	r.Activity = nil
	if _, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r); err == nil {
		t.Error("replace without activity: no error")
	}
	for _, e := range []error{err} {
		for _, s := range []string{inNHS, inDOB, inLocalID, "sm51aa"} {
			if e != nil && strings.Contains(e.Error(), s) {
				t.Errorf("error %q contains an identifier", e)
			}
		}
	}
	// A delete may carry no activity: it still de-identifies.
	r.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
	if err != nil || got.UpdateType != dmicv1.UpdateType_UPDATE_TYPE_DELETE || got.CdsUniqueIdentifier != "BRVR00EP0001" {
		t.Errorf("delete: %v, %v", got, err)
	}
}

func TestMatchKey(t *testing.T) {
	tests := []struct {
		ds            dmicv1.Dataset
		provider, uid string
		want          string
	}{
		{dmicv1.Dataset_DATASET_APC, "RVR", "BRVR00EP0001", "apc|RVR|BRVR00EP0001"},
		{dmicv1.Dataset_DATASET_APC, "rvr00", " BRVR00EP0001 ", "apc|RVR|BRVR00EP0001"},
		{dmicv1.Dataset_DATASET_OUTPATIENT, "RVR01", "X1", "outpatient|RVR01|X1"},
		{dmicv1.Dataset_DATASET_EMERGENCY_CARE, "NT400", "X1", "emergency_care|NT4|X1"},
		{dmicv1.Dataset_DATASET_LOCAL_FLOW, "RVR", "L1", "local_flow|RVR|L1"},
		{dmicv1.Dataset_DATASET_APC, "RVR", "", ""},
	}
	for _, tt := range tests {
		if got := MatchKey(tt.ds, tt.provider, tt.uid); got != tt.want {
			t.Errorf("MatchKey(%v, %q, %q) = %q, want %q", tt.ds, tt.provider, tt.uid, got, tt.want)
		}
	}
	// Local and national copies of one activity meet; different activities do not.
	if MatchKey(dmicv1.Dataset_DATASET_APC, "RVR00", "U1") != MatchKey(dmicv1.Dataset_DATASET_APC, "RVR", "U1") {
		t.Error("local and national copies do not share a key")
	}
	if MatchKey(dmicv1.Dataset_DATASET_APC, "RVR", "U1") == MatchKey(dmicv1.Dataset_DATASET_OUTPATIENT, "RVR", "U1") {
		t.Error("datasets share a key")
	}
}

func BenchmarkDeidentify(b *testing.B) {
	d := NewDeidentifier(testRing(b, testKey("v1", 7)), sampleRef(b))
	r := apcRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPseudonymise(b *testing.B) {
	p := NewPseudonymiser(testKey("v1", 7))
	b.ReportAllocs()
	for b.Loop() {
		p.Pseudonymise(inNHS)
	}
}
