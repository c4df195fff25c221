package validation

import (
	"fmt"
	"testing"
)

// nhsRule is the NHS-00x rule a present number breaks, as the spec's rules
// order them: format first, then repeated digits, then the check digit.
func nhsRule(s string) string {
	switch {
	case !nhsTenDigits(s):
		return "NHS-001"
	case nhsRepeated(s):
		return "NHS-003"
	case !nhsCheckDigitOK(s):
		return "NHS-002"
	}
	return ""
}

func TestNHSNumberValid(t *testing.T) {
	type tc struct {
		in   string
		want bool
		rule string
	}
	tests := []tc{
		{"9434765919", true, ""},
		{"9434765918", false, "NHS-002"},
		{"4010232137", true, ""},
		{"9449305552", true, ""},
		{"0000000000", false, "NHS-003"},
		{"1111111111", false, "NHS-003"},
		{"9999999999", false, "NHS-003"},
		{"943476591", false, "NHS-001"},
		{"94347659190", false, "NHS-001"},
		{"943 476 5919", false, "NHS-001"},
		{"943476591X", false, "NHS-001"},
		{"", false, "NHS-001"},
		{"９４３４７６５９１９", false, "NHS-001"}, // full-width digits
	}
	// 123456789x has check value 10 for every last digit: never valid.
	for x := 0; x <= 9; x++ {
		tests = append(tests, tc{fmt.Sprintf("123456789%d", x), false, "NHS-002"})
	}
	for _, tt := range tests {
		if got := NHSNumberValid(tt.in); got != tt.want {
			t.Errorf("NHSNumberValid(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if got := nhsRule(tt.in); got != tt.rule {
			t.Errorf("rule of %q = %q, want %q", tt.in, got, tt.rule)
		}
	}
}

// Exactly one in eleven-ish 9-digit prefixes has no valid check digit; for
// the others exactly one last digit is valid.
func TestNHSNumberOneCheckDigit(t *testing.T) {
	for _, prefix := range []string{"943476591", "401023213", "123456780", "987654321", "600000000"} {
		valid := 0
		for x := 0; x <= 9; x++ {
			if NHSNumberValid(fmt.Sprintf("%s%d", prefix, x)) {
				valid++
			}
		}
		if valid > 1 {
			t.Errorf("prefix %s: %d valid check digits", prefix, valid)
		}
	}
}

func TestNormalisePostcode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"sw1a1aa", "SW1A 1AA", true},
		{"SW1A 1AA", "SW1A 1AA", true},
		{" sw1a  1aa ", "SW1A 1AA", true},
		{"EC1A 1BB", "EC1A 1BB", true},
		{"W1A 0AX", "W1A 0AX", true},   // A9A
		{"M1 1AE", "M1 1AE", true},     // A9
		{"B33 8TH", "B33 8TH", true},   // A99
		{"CR2 6XH", "CR2 6XH", true},   // AA9
		{"DN55 1PT", "DN55 1PT", true}, // AA99
		{"SW17 0QT", "SW17 0QT", true},
		{"ZZ99 3VZ", "ZZ99 3VZ", true}, // no fixed abode: V is allowed in pseudo-postcodes
		{"zz993wz", "ZZ99 3WZ", true},
		{"ZZ99 6CZ", "ZZ99 6CZ", true},
		{"ZZ99 3CZ", "ZZ99 3CZ", true}, // England n.o.s.
		{"ZZ99 1WZ", "ZZ99 1WZ", true}, // Scotland
		{"ZZ99 2WZ", "ZZ99 2WZ", true}, // Northern Ireland
		{"zz99 3gz", "ZZ99 3GZ", true}, // Wales
		{"ZZ993VZ", "ZZ99 3VZ", true},
		{"GIR 0AA", "GIR 0AA", true},
		{"gir0aa", "GIR 0AA", true},
		{"Q1 1AA", "", false},   // Q never first
		{"V1 1AA", "", false},   // V never first
		{"X1 1AA", "", false},   // X never first
		{"AI1 1AA", "", false},  // I never second
		{"AZ1 1AA", "", false},  // Z never second
		{"SW1A 1CA", "", false}, // C not an inward letter
		{"SW1A 1AI", "", false},
		{"SW1A 1KA", "", false},
		{"SW1A 1MA", "", false},
		{"SW1A 1OA", "", false},
		{"SW1A 1AV", "", false},
		{"SW1A AAA", "", false}, // inward starts with a digit
		{"SW1AA 1AA", "", false},
		{"1W1A 1AA", "", false},
		{"S11AA 1AA", "", false},
		{"SWA 1AA", "", false},
		{"S 1AA", "", false},
		{"1AA", "", false},
		{"", "", false},
		{"SW1A-1AA", "", false},
		{"SW1A 1AA X", "", false},
		{"ZZ99 3V1", "", false},
		{"ZZ9 3VZ", "", false}, // the ZZ exception is for ZZ99 only
		{"SW1Ä 1AA", "", false},
	}
	for _, tt := range tests {
		got, ok := NormalisePostcode(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalisePostcode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if postcodeValid(tt.in) != tt.ok {
			t.Errorf("postcodeValid(%q) != %v", tt.in, tt.ok)
		}
	}
}

func TestNormalisePostcodeNoAllocWhenNormal(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := NormalisePostcode("SW1A 1AA"); !ok {
			t.Fatal("not valid")
		}
		if !postcodeValid("sw1a1aa") {
			t.Fatal("not valid")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"2026-01-05", 20260105, true},
		{"2024-02-29", 20240229, true},
		{"2000-02-29", 20000229, true},
		{"1900-02-29", 0, false},
		{"2025-02-29", 0, false},
		{"2026-04-31", 0, false},
		{"2026-12-31", 20261231, true},
		{"2026-13-01", 0, false},
		{"2026-00-10", 0, false},
		{"2026-01-00", 0, false},
		{"0000-01-01", 0, false},
		{"2026-1-05", 0, false},
		{"2026/01/05", 0, false},
		{"20260105", 0, false},
		{"2026-01-05T00:00", 0, false},
		{"2O26-01-05", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDate(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseDate(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSmallFormats(t *testing.T) {
	for s, want := range map[string]bool{"00:00": true, "23:59": true, "01:12:30": true, "24:00": false, "12:60": false, "1:12": false, "12.30": false, "12:30:60": false, "12:30-00": false, "": false} {
		if timeValid(s) != want {
			t.Errorf("timeValid(%q) != %v", s, want)
		}
	}
	for s, want := range map[string]bool{"H85001": true, "V81999": true, "V81998": true, "V81997": true, "h85001": false, "H8500": false, "HH5001": false, "H850011": false, "G9999981": false} {
		if practiceCodeValid(s) != want {
			t.Errorf("practiceCodeValid(%q) != %v", s, want)
		}
	}
	long := "B" + fmt.Sprintf("%034d", 0)
	for s, want := range map[string]bool{"BRJ7-0001": true, long: true, long + "1": false, "BRJ7_0001": false, "BRJ7 0001": false, "BRJ7é": false} {
		if uniqueIdentifierValid(s) != want {
			t.Errorf("uniqueIdentifierValid(%q) != %v", s, want)
		}
	}
}

func TestFormats(t *testing.T) {
	tests := []struct {
		format string
		length int
		ok     []string
		bad    []string
	}{
		{"date", 0, []string{"2026-01-05", "2024-02-29", "1880-01-01"}, []string{"2025-02-29", "2026-1-05", "05/01/2026", ""}},
		{"date_time", 0, []string{"2026-01-06T09:15:00Z", "2026-01-06T09:15:00+01:00", "2026-01-06T09:15:00.123Z"}, []string{"2026-01-06 09:15", "2026-01-06", "2026-01-06T25:00:00Z"}},
		{"time_hhmm", 0, []string{"00:00", "23:59", "01:12:30"}, []string{"24:00", "1:12", "12.30"}},
		{"postcode", 0, []string{"SW1A 1AA", "sw1a1aa", "ZZ99 3VZ", "GIR 0AA"}, []string{"Q1 1AA", "SW1A 1CA", "SM1 A2B"}},
		{"org_code", 0, []string{"RJ7", "NT401", "rj7"}, []string{"RJ", "RJ7001", "RJ-7"}},
		{"site_code", 0, []string{"RJ701", "RJ7010000"}, []string{"RJ70", "RJ70100000", "RJ7-01"}},
		{"practice_code", 0, []string{"H85001", "V81999", "V81998", "V81997"}, []string{"h85001", "H8500", "HH5001", "H850011", "G9999981"}},
		{"commissioner_code", 0, []string{"36L", "W2U3Z", "VPP00", "Q99"}, []string{"36", "W2U3ZZ", "36 L"}},
		{"icd10", 0, []string{"I219", "I10X", "J45", "N40X", "Z380"}, []string{"I21.9", "i219", "I2", "I2199", "I21A", "121"}},
		{"opcs4", 0, []string{"W371", "W37", "K634"}, []string{"W3", "W3711", "w371", "W37A", "1371"}},
		{"hrg", 0, []string{"HN12A", "VB09Z", "UZ01Z"}, []string{"HN12", "hn12a", "HN1A2", "H112A", "HN12AA"}},
		{"snomed_ct", 0, []string{"29857009", "267036007", "123456", "123456789012345678"}, []string{"12345", "1234567890123456789", "029857009", "2985700X"}},
		{"cds_unique_identifier", 0, []string{"BRJ7-0001", "B" + fmt.Sprintf("%034d", 0)}, []string{"B" + fmt.Sprintf("%035d", 0), "BRJ7_0001", "BRJ7 0001", "BRJ7é"}},
		{"digits", 3, []string{"300", "812", "000"}, []string{"30", "3000", "30A", "３００"}},
	}
	for _, tt := range tests {
		f, ok := formatByName(tt.format)
		if !ok {
			t.Fatalf("no format %q", tt.format)
		}
		for _, s := range tt.ok {
			if !formatValid(f.kind, tt.length, s) {
				t.Errorf("%s: %q refused", tt.format, s)
			}
		}
		for _, s := range tt.bad {
			if formatValid(f.kind, tt.length, s) {
				t.Errorf("%s: %q accepted", tt.format, s)
			}
		}
	}
	if len(tests) != len(formatDefs) {
		t.Errorf("%d formats tested, %d defined", len(tests), len(formatDefs))
	}
}
