package didi

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/validate/specs"
	"google.golang.org/protobuf/proto"
)

// Edge cases of the derived items (age, age band, residence, IMD decile)
// that TestAgeAt, TestAgeBand and TestDeidentifyResidence do not cover.

// derivedDeidentifier is the one place these tests build a Deidentifier.
func derivedDeidentifier(t *testing.T, ref *refdata.Reference) *Deidentifier {
	t.Helper()
	return NewDeidentifier(testRing(t, testKey("v1", 7)), ref)
}

func TestAgeAtEdgeCases(t *testing.T) {
	tests := []struct {
		name            string
		birth, activity string
		years, weeks    int
		wantErr         error
	}{
		// Babies under one: completed weeks, counted in days, not calendar months.
		{"under one, 6 days before the first birthday", "2023-03-15", "2024-03-09", 0, 51, nil},
		{"under one, 357 days old", "2023-03-15", "2024-03-06", 0, 51, nil},
		{"under one, 364 days old", "2023-03-15", "2024-03-13", 0, 52, nil},
		{"under one, the day before the first birthday (365 days, a leap year)", "2023-03-15", "2024-03-14", 0, 52, nil},
		{"under one, 13 days old", "2024-01-01", "2024-01-14", 0, 1, nil},
		{"under one, 14 days old", "2024-01-01", "2024-01-15", 0, 2, nil},
		{"exactly one year: weeks are 0 again", "2023-03-15", "2024-03-15", 1, 0, nil},
		{"one year and a day", "2023-03-15", "2024-03-16", 1, 0, nil},
		// Leap-day births in century years: 2000 was a leap year, 2100 is not.
		{"leap-day birth 2000, 28 Feb 2100 (not leap)", "2000-02-29", "2100-02-28", 99, 0, nil},
		{"leap-day birth 2000, 1 Mar 2100 (not leap)", "2000-02-29", "2100-03-01", 100, 0, nil},
		{"leap-day birth, 29 Feb of a later leap year", "2004-02-29", "2008-02-29", 4, 0, nil},
		{"leap-day birth, 28 Feb of a later leap year", "2004-02-29", "2008-02-28", 3, 0, nil},
		// Birthdays on the activity date at band boundaries.
		{"fifth birthday on the activity date", "2019-06-30", "2024-06-30", 5, 0, nil},
		{"day before the fifth birthday", "2019-06-30", "2024-06-29", 4, 0, nil},
		{"ninetieth birthday on the activity date", "1934-11-01", "2024-11-01", 90, 0, nil},
		{"day before the ninetieth birthday", "1934-11-01", "2024-10-31", 89, 0, nil},
		{"31 Dec birth, 1 Jan activity", "2023-12-31", "2024-01-01", 0, 0, nil},
		// Unknown: the dates cannot give an age.
		{"birth one day after the activity", "2024-03-16", "2024-03-15", 0, 0, errBirthAfter},
		{"birth a year after the activity", "2025-03-15", "2024-03-15", 0, 0, errBirthAfter},
		// SUS: a date of birth before 1880-01-01 is invalid (domain brief
		// §3); a national record carries it past validation (DOB-002 is a
		// warning there), so the age is unknown, not 144.
		{"birth the day before 1880-01-01", "1879-12-31", "2024-01-01", 0, 0, errBirthEarly},
		{"birth on 1880-01-01", "1880-01-01", "2024-01-01", 144, 0, nil},
		{"birth 29 Feb of a non-leap year", "1900-02-29", "2024-01-01", 0, 0, errBirthDate},
		{"birth 31 Apr", "2000-04-31", "2024-01-01", 0, 0, errBirthDate},
		{"birth month 00", "2000-00-10", "2024-01-01", 0, 0, errBirthDate},
		{"birth day 00", "2000-01-00", "2024-01-01", 0, 0, errBirthDate},
		{"birth with a time", "2000-01-01T00:00", "2024-01-01", 0, 0, errBirthDate},
		{"birth as YYYYMMDD", "20000101", "2024-01-01", 0, 0, errBirthDate},
		{"birth as DD/MM/YYYY", "01/01/2000", "2024-01-01", 0, 0, errBirthDate},
		{"birth with a sign", "+200-01-01", "2024-01-01", 0, 0, errBirthDate},
		{"activity missing", "2000-01-01", "", 0, 0, errActivityDate},
		{"activity 29 Feb of a non-leap year", "2000-01-01", "2023-02-29", 0, 0, errActivityDate},
		{"both missing: the birth date is reported", "", "", 0, 0, errBirthDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y, w, err := AgeAt(tt.birth, tt.activity)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AgeAt(%q, %q) err = %v, want %v", tt.birth, tt.activity, err, tt.wantErr)
			}
			if y != tt.years || w != tt.weeks {
				t.Errorf("AgeAt(%q, %q) = %d years %d weeks, want %d years %d weeks", tt.birth, tt.activity, y, w, tt.years, tt.weeks)
			}
		})
	}
}

// TestDeidentifyAgeEdgeCases checks the three age items together, as the
// de-identified record carries them, at the band boundaries.
func TestDeidentifyAgeEdgeCases(t *testing.T) {
	d := derivedDeidentifier(t, nil)
	tests := []struct {
		name, birth  string // the activity is on 2024-03-01 (an outpatient appointment)
		years, weeks int32
		band         string
	}{
		{"born on the activity date", "2024-03-01", 0, 0, "0"},
		{"born 29 Feb, the next day", "2024-02-29", 0, 0, "0"},
		{"under one, 52 weeks", "2023-03-02", 0, 52, "0"},
		{"first birthday on the activity date", "2023-03-01", 1, 0, "1-4"},
		{"fourth birthday", "2020-03-01", 4, 0, "1-4"},
		{"fifth birthday on the activity date", "2019-03-01", 5, 0, "5-9"},
		{"day before the fifth birthday", "2019-03-02", 4, 0, "1-4"},
		{"leap-day birth, activity on 1 Mar of a leap year", "2000-02-29", 24, 0, "20-24"},
		{"89, the day before the ninetieth birthday", "1934-03-02", 89, 0, "85-89"},
		{"ninetieth birthday on the activity date", "1934-03-01", 90, 0, "90+"},
		{"120", "1904-03-01", 120, 0, "90+"},
		{"born after the activity: unknown", "2024-03-02", 0, 0, ""},
		{"missing birth date: unknown", "", 0, 0, ""},
		{"not a date: unknown", "2024-02-30", 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apcRecord()
			r.Patient.PersonBirthDate = tt.birth
			r.Activity = &dmicv1.CommissioningRecord_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AppointmentDate: "2024-03-01"}}
			got, err := d.Deidentify(dmicv1.Dataset_DATASET_OUTPATIENT, r)
			if err != nil {
				t.Fatal(err)
			}
			if got.AgeAtActivityYears != tt.years || got.AgeAtActivityWeeks != tt.weeks || got.AgeBand != tt.band {
				t.Errorf("birth %q: %d years %d weeks band %q, want %d years %d weeks band %q",
					tt.birth, got.AgeAtActivityYears, got.AgeAtActivityWeeks, got.AgeBand, tt.years, tt.weeks, tt.band)
			}
		})
	}
}

func TestDeidentifyResidenceEdgeCases(t *testing.T) {
	d := derivedDeidentifier(t, sampleRef(t))
	sm27hs := &dmicv1.Residence{Lsoa_2011: "E01032624", Lsoa_2021: "E01032624", Msoa_2011: "E02006837", Msoa_2021: "E02006837",
		LocalAuthority: "E07000208", SubIcb: "92A", Icb: "QXU", Country: refdata.CountryEngland, PostcodeSector: "SM2 7", ImdDecile: 10}
	tests := []struct {
		name, postcode string
		want           *dmicv1.Residence
	}{
		{"lower case, no space", "sm27hs", sm27hs},
		{"lower case, spaces around and inside", "  sm2  7hs ", sm27hs},
		{"mixed case", "Sm2 7hS", sm27hs},
		{"Scottish: no sub-ICB, ICB or IMD decile", "TD1 1AA", &dmicv1.Residence{
			Lsoa_2011: "S01012275", Lsoa_2021: "S01019597", Msoa_2011: "S02002297", Msoa_2021: "S02003625",
			LocalAuthority: "S12000026", Country: refdata.CountryScotland, PostcodeSector: "TD1 1"}},
		{"English side of the border (TD)", "TD12 4FH", &dmicv1.Residence{
			Lsoa_2011: "E01027375", Lsoa_2021: "E01027375", Msoa_2011: "E02005708", Msoa_2021: "E02005708",
			LocalAuthority: "E06000057", SubIcb: "00L", Icb: "QHM", Country: refdata.CountryEngland, PostcodeSector: "TD12 4", ImdDecile: 5}},
		{"unknown postcode, lower case: its sector only", "sw1a1aa", &dmicv1.Residence{PostcodeSector: "SW1A 1", Note: NoteNotInReference}},
		{"unknown postcode, short outward code", "M1 1AE", &dmicv1.Residence{PostcodeSector: "M1 1", Note: NoteNotInReference}},
		{"pseudo-postcode, lower case, no space", "zz993wz", &dmicv1.Residence{Note: NoteNotKnown}},
		{"pseudo-postcode Scotland, spaced oddly", " ZZ99  1WZ", &dmicv1.Residence{Country: refdata.CountryScotland, Note: NoteScotlandNOS}},
		{"other ZZ99 nXZ: overseas", "ZZ99 9AZ", &dmicv1.Residence{Note: NoteOverseas}},
		{"other ZZ99 nXZ, lower case", "zz995kz", &dmicv1.Residence{Note: NoteOverseas}},
		{"ZZ99 not ending in Z: invalid, never a sector", "ZZ99 3AB", &dmicv1.Residence{Note: NotePostcodeInvalid}},
		{"whitespace only: missing", " \t ", &dmicv1.Residence{Note: NotePostcodeMissing}},
		{"too long", "SM2 7HSX", &dmicv1.Residence{Note: NotePostcodeInvalid}},
		{"punctuation", "SM2-7HS", &dmicv1.Residence{Note: NotePostcodeInvalid}},
		{"inward code not digit-letter-letter", "SM2 77S", &dmicv1.Residence{Note: NotePostcodeInvalid}},
		// Validation's postcode format is the one rule (package nhs): what it
		// calls malformed (only a warning on a national record) is never
		// given a sector or looked up here.
		{"C as an inward letter: malformed to validation too", "SW1A 1CA", &dmicv1.Residence{Note: NotePostcodeInvalid}},
		{"Q as the first letter", "Q1 1AA", &dmicv1.Residence{Note: NotePostcodeInvalid}},
		{"outward code with no digit", "SMA 2AB", &dmicv1.Residence{Note: NotePostcodeInvalid}},
		{"GIR 0AA: the special case has a sector", "gir0aa", &dmicv1.Residence{PostcodeSector: "GIR 0", Note: NoteNotInReference}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apcRecord()
			r.Patient.PostcodeOfUsualAddress = tt.postcode
			got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
			if err != nil {
				t.Fatal(err)
			}
			// These cases are about reading the postcode; the CAM areas
			// (health area, region, pseudo postcode) are checked in
			// TestDeidentifyResidence.
			res := proto.Clone(got.GetResidence()).(*dmicv1.Residence)
			res.HealthArea, res.Region, res.PseudoPostcode = "", "", ""
			if !proto.Equal(res, tt.want) {
				t.Errorf("postcode %q: residence {%v}, want {%v}", tt.postcode, got.GetResidence(), tt.want)
			}
		})
	}
}

// TestDeidentifyIMDDecile: the decile comes from the reference data's IMD
// file for the LSOA 2021, and is 0 (unknown) when the file is absent, when
// the LSOA is not English, or when no area is known.
func TestDeidentifyIMDDecile(t *testing.T) {
	withIMD := derivedDeidentifier(t, sampleRef(t))
	withoutIMD := derivedDeidentifier(t, refWithoutIMD(t))
	noRef := derivedDeidentifier(t, nil)
	tests := []struct {
		name     string
		d        *Deidentifier
		postcode string
		lsoa21   string
		decile   int32
	}{
		{"English LSOA, decile 4", withIMD, "SM5 1AA", "E01004128", 4},
		{"English LSOA, decile 10 (least deprived)", withIMD, "SM2 7HS", "E01032624", 10},
		{"Welsh LSOA: IMD 2025 is English only", withIMD, "LD1 5AB", "W01000455", 0},
		{"Scottish data zone", withIMD, "TD1 1AA", "S01019597", 0},
		{"no IMD file in the reference directory", withoutIMD, "SM5 1AA", "E01004128", 0},
		{"postcode not in reference data", withIMD, "SW1A 1AA", "", 0},
		{"pseudo-postcode", withIMD, "ZZ99 3CZ", "", 0},
		{"no reference data at all", noRef, "SM5 1AA", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apcRecord()
			r.Patient.PostcodeOfUsualAddress = tt.postcode
			got, err := tt.d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
			if err != nil {
				t.Fatal(err)
			}
			res := got.GetResidence()
			if res.GetImdDecile() != tt.decile || res.GetLsoa_2021() != tt.lsoa21 {
				t.Errorf("postcode %q: LSOA 2021 %q decile %d, want %q decile %d", tt.postcode, res.GetLsoa_2021(), res.GetImdDecile(), tt.lsoa21, tt.decile)
			}
		})
	}
}

// refWithoutIMD loads a copy of the sample reference directory without its
// IMD file, which LoadDir treats as optional.
func refWithoutIMD(t *testing.T) *refdata.Reference {
	t.Helper()
	src := "../../../reference/sample"
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".csv" || e.Name() == refdata.IMDFile {
			continue
		}
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
	ref, err := refdata.LoadDir(dst)
	if err != nil {
		t.Fatalf("load reference without IMD: %v", err)
	}
	return ref
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// A patient's postcode is placed by the postcode directory's row for it,
// live or terminated, whatever the activity date: CAM derives a commissioner
// from "the matching record" of the directory with no date (guidance
// p.11-12), and the ONSPD keeps terminated postcodes, with the areas they
// lay in, so that older addresses can be placed (shared reference README,
// files 10 and 11). In reference/sample/onspd.csv HX1 1AB was introduced in
// 2012-09 and terminated in 2015-04; HX3 8FY was introduced in 2025-10.
func TestDeidentifyResidenceTerminatedPostcode(t *testing.T) {
	d := derivedDeidentifier(t, sampleRef(t))
	hx11ab := &dmicv1.Residence{Lsoa_2011: "E01010994", Lsoa_2021: "E01034582", LocalAuthority: "E08000033",
		SubIcb: "02T", Icb: "QWO", Country: refdata.CountryEngland, PostcodeSector: "HX1 1"}
	hx38fy := &dmicv1.Residence{Lsoa_2011: "E01010909", Lsoa_2021: "E01010909",
		LocalAuthority: "E08000033", SubIcb: "02T", Icb: "QWO", Country: refdata.CountryEngland, PostcodeSector: "HX3 8"}
	tests := []struct {
		name, postcode, episodeEnd string
		want                       *dmicv1.Residence
	}{
		{"terminated since the activity", "hx11ab", "2014-06-30", hx11ab},
		{"terminated before the activity (an address not updated)", "HX1 1AB", "2016-04-01", hx11ab},
		{"introduced after the activity (an address recorded later)", "HX3 8FY", "2025-09-30", hx38fy},
		{"live", "HX3 8FY", "2025-10-01", hx38fy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apcRecord()
			r.Patient.PostcodeOfUsualAddress = tt.postcode
			apc := r.GetApc()
			apc.StartDateHospitalProviderSpell, apc.StartDateEpisode, apc.EndDateEpisode = tt.episodeEnd, tt.episodeEnd, tt.episodeEnd
			got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
			if err != nil {
				t.Fatal(err)
			}
			res := proto.Clone(got.GetResidence()).(*dmicv1.Residence)
			// MSOA, IMD and the CAM areas are TestDeidentifyResidence's.
			res.HealthArea, res.Region, res.PseudoPostcode = "", "", ""
			res.Msoa_2011, res.Msoa_2021, res.ImdDecile = "", "", 0
			if !proto.Equal(res, tt.want) {
				t.Errorf("postcode %q on %s: residence {%v}, want {%v}", tt.postcode, tt.episodeEnd, got.GetResidence(), tt.want)
			}
		})
	}
}

// A live postcode with no geography in the directory (a non-geographic,
// large-user postcode: NSPL November 2021, SR43 2AA, usertype 1, every area
// column empty; shared reference README, file 11) gets its sector and a
// note saying why there is no area, not an empty residence.
func TestDeidentifyNonGeographicPostcode(t *testing.T) {
	const shared = "/work/shared/reference"
	if _, err := os.Stat(filepath.Join(shared, "nspl_nov2021_extract.csv")); err != nil {
		t.Skip("shared reference files not present")
	}
	ref, err := refdata.LoadDir(shared)
	if err != nil {
		t.Fatal(err)
	}
	d := derivedDeidentifier(t, ref)
	r := apcRecord()
	r.Patient.PostcodeOfUsualAddress = "SR43 2AA"
	got, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
	if err != nil {
		t.Fatal(err)
	}
	want := &dmicv1.Residence{PostcodeSector: "SR43 2", Note: NoteNoArea}
	if !proto.Equal(got.GetResidence(), want) {
		t.Errorf("SR43 2AA: residence {%v}, want {%v}", got.GetResidence(), want)
	}
}

// The earliest valid date of birth is one rule in two places that must
// agree: validation's DOB-002 (its date parameter, in every built-in
// specification) and the age here (SUS data-integrity rule, domain brief §3).
func TestEarliestBirthMatchesDOB002(t *testing.T) {
	names, err := fs.Glob(specs.FS, "*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("built-in specifications: %v, %d", err, len(names))
	}
	seen := 0
	for _, name := range names {
		b, err := specs.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Rules []struct {
				ID     string `json:"id"`
				Params struct {
					Date string `json:"date"`
				} `json:"params"`
			} `json:"rules"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, r := range doc.Rules {
			if r.ID != "DOB-002" {
				continue
			}
			seen++
			y, m, d, ok := record.ParseDate(r.Params.Date)
			if !ok || y*10000+m*100+d != earliestBirth {
				t.Errorf("%s: DOB-002 date %q, de-identification's earliest birth %d", name, r.Params.Date, earliestBirth)
			}
		}
	}
	if seen == 0 {
		t.Error("no specification has DOB-002")
	}
}
