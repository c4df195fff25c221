package validation

import (
	"fmt"
	"testing"
)

func TestNHSNumberValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
		rule string
	}{
		{"9434765919", true, ""},
		{"9434765918", false, RuleNHSCheckDigit},
		{"4010232137", true, ""},
		{"9449305552", true, ""},
		{"0000000000", false, RuleNHSRepeated},
		{"1111111111", false, RuleNHSRepeated},
		{"9999999999", false, RuleNHSRepeated},
		{"943476591", false, RuleNHSFormat},
		{"94347659190", false, RuleNHSFormat},
		{"943 476 5919", false, RuleNHSFormat},
		{"943476591X", false, RuleNHSFormat},
		{"", false, RuleNHSFormat},
		{"９４３４７６５９１９", false, RuleNHSFormat}, // full-width digits
	}
	// 123456789x has check value 10 for every last digit: never valid.
	for x := 0; x <= 9; x++ {
		tests = append(tests, struct {
			in   string
			want bool
			rule string
		}{fmt.Sprintf("123456789%d", x), false, RuleNHSCheckDigit})
	}
	for _, tt := range tests {
		if got := NHSNumberValid(tt.in); got != tt.want {
			t.Errorf("NHSNumberValid(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if got := nhsNumberRule(tt.in); got != tt.rule {
			t.Errorf("nhsNumberRule(%q) = %q, want %q", tt.in, got, tt.rule)
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
