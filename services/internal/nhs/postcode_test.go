package nhs

import "testing"

// The postcode rules. Sources, by row: [RM] the Royal Mail postcode format
// as the domain brief gives it (commissioning-data.md, "Postcode format":
// outward A9 A99 AA9 AA99 A9A AA9A, inward 9AA, the excluded letters, GIR
// 0AA); [ONSPD] the ONS Postcode Directory's pcd (7 characters), pcd2 (8,
// inward code at position 6) and pcds (one space) forms (shared reference
// README, file 10); [CDS] the pseudo-postcodes of POSTCODE OF USUAL ADDRESS
// (domain brief, section 3); [CAM] NHS England CAM 2025/26 guidance,
// Appendix H (reference file 19: every one is ZZ99 digit letter Z);
// [dmic] the tolerance chosen here (package documentation).
func TestNormalisePostcode(t *testing.T) {
	tests := []struct {
		in, want string
		why      string
	}{
		// Each outward form [RM].
		{"M1 1AE", "M1 1AE", "A9 [RM]"},
		{"B33 8TH", "B33 8TH", "A99 [RM]"},
		{"W1A 0AX", "W1A 0AX", "A9A [RM]"},
		{"CR2 6XH", "CR2 6XH", "AA9 [RM]"},
		{"DN55 1PT", "DN55 1PT", "AA99 [RM]"},
		{"EC1A 1BB", "EC1A 1BB", "AA9A [RM]"},
		{"SW1A 1AA", "SW1A 1AA", "AA9A, already canonical [RM]"},
		// Case and spacing [dmic], and the ONSPD forms [ONSPD].
		{"sw1a1aa", "SW1A 1AA", "lower case, no space [dmic]"},
		{" sw1a  1aa ", "SW1A 1AA", "extra spaces around and inside [dmic]"},
		{"Sw1A\t1aA", "SW1A 1AA", "mixed case, a tab [dmic]"},
		{"s w 1 a 1 a a", "SW1A 1AA", "spaces anywhere [dmic]"},
		{"TD151LL", "TD15 1LL", "pcd form, 7 characters [ONSPD]"},
		{"HG1  1AA", "HG1 1AA", "pcd2 form, inward code at position 6 [ONSPD]"},
		{"M11AE", "M1 1AE", "the shortest, unspaced [dmic]"},
		// The special case [RM].
		{"GIR 0AA", "GIR 0AA", "GIR 0AA [RM]"},
		{"gir0aa", "GIR 0AA", "GIR 0AA, lower case, no space [RM]"},
		// Pseudo-postcodes [CDS] [CAM]: their inward letters (V, C) break
		// the letter rules.
		{"ZZ99 3VZ", PseudoNoFixedAbode, "no fixed abode [CDS]"},
		{"zz993wz", PseudoNotKnown, "not known, lower case [CDS]"},
		{"ZZ99 3CZ", PseudoEngland, "England n.o.s. [CDS]"},
		{"ZZ99 1WZ", PseudoScotland, "Scotland [CDS]"},
		{"ZZ99 2WZ", PseudoNorthernIreland, "Northern Ireland [CDS]"},
		{" zz99  3gz", PseudoWales, "Wales, spaced oddly [CDS]"},
		{"ZZ99 6CZ", "ZZ99 6CZ", "India [CDS] [CAM]"},
		{"ZZ99 4ZZ", "ZZ99 4ZZ", "Z as the middle letter [CAM]"},
		// Refused by the letter rules [RM].
		{"Q1 1AA", "", "Q never first [RM]"},
		{"V1 1AA", "", "V never first [RM]"},
		{"X1 1AA", "", "X never first [RM]"},
		{"AI1 1AA", "", "I never second [RM]"},
		{"AJ1 1AA", "", "J never second [RM]"},
		{"AZ1 1AA", "", "Z never second [RM]"},
		{"SW1A 1CA", "", "C not an inward letter [RM]"},
		{"SW1A 1AI", "", "I not an inward letter [RM]"},
		{"SW1A 1KA", "", "K not an inward letter [RM]"},
		{"SW1A 1MA", "", "M not an inward letter [RM]"},
		{"SW1A 1OA", "", "O not an inward letter [RM]"},
		{"SW1A 1AV", "", "V not an inward letter [RM]"},
		// Refused by shape [RM].
		{"SW1A AAA", "", "inward code starts with a digit [RM]"},
		{"SM1 A2B", "", "inward code starts with a digit [RM]"},
		{"SM2 77S", "", "inward code ends with two letters [RM]"},
		{"SMA 2AB", "", "outward AA then a letter: no digit [RM]"},
		{"1W1A 1AA", "", "outward starts with a letter [RM]"},
		{"S11A 1AA", "", "A99 has no letter after it [RM]"},
		{"GIR 0AB", "", "GIR is special for 0AA only [RM]"},
		// Length [RM]: 5 to 7 letters and digits.
		{"S 1AA", "", "too short: 4 [RM]"},
		{"1AA", "", "too short: inward only [RM]"},
		{"", "", "empty"},
		{"   ", "", "spaces only"},
		{"SW1AA 1AA", "", "too long: 8 [RM]"},
		{"SM2 7HSX", "", "too long: 8 [RM]"},
		{"SW1A 1AA X", "", "too long: a trailing word [RM]"},
		// Characters [dmic]: refused, never dropped.
		{"SW1A-1AA", "", "hyphen [dmic]"},
		{"SW1A.1AA", "", "full stop [dmic]"},
		{"SW1A\n1AA", "", "line break [dmic]"},
		{"SW1Ä 1AA", "", "non-ASCII letter [dmic]"},
		// Pseudo-postcodes: ZZ99 + digit + letter + Z only [CDS] [CAM].
		{"ZZ99 3AB", "", "a ZZ99 that does not end in Z [CAM]"},
		{"ZZ99 3V1", "", "digit as the last character [CAM]"},
		{"ZZ99 A3Z", "", "inward starts with a digit [CAM]"},
		{"ZZ9 3VZ", "", "the exception is for ZZ99 only [CAM]"},
		{"ZZ999 3VZ", "", "too long [CAM]"},
	}
	for _, tt := range tests {
		got, ok := NormalisePostcode(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("NormalisePostcode(%q) = %q, %v; want %q (%s)", tt.in, got, ok, tt.want, tt.why)
		}
		if valid := PostcodeValid(tt.in); valid != (tt.want != "") {
			t.Errorf("PostcodeValid(%q) = %v, want %v (%s)", tt.in, valid, !valid, tt.why)
		}
		// Canonical forms are fixed points: normalising again changes nothing.
		if tt.want != "" {
			if again, ok := NormalisePostcode(got); !ok || again != got {
				t.Errorf("NormalisePostcode(%q) = %q, %v; a canonical form must normalise to itself", got, again, ok)
			}
		}
	}
}

func TestIsPseudoPostcode(t *testing.T) {
	tests := map[string]bool{
		PseudoNoFixedAbode: true, PseudoNotKnown: true, PseudoEngland: true,
		PseudoScotland: true, PseudoNorthernIreland: true, PseudoWales: true,
		"ZZ99 6CZ": true, "ZZ99 9SZ": true, // India; CAM Appendix H
		"ZZ99 3AB": false, // not ending in Z
		"zz99 3vz": false, // not canonical: normalise first
		"ZZ993VZ":  false, // not canonical
		"SW1A 1AA": false, // a real postcode
		"ZZ9 3VZ":  false, // not ZZ99
		"":         false,
	}
	for in, want := range tests {
		if got := IsPseudoPostcode(in); got != want {
			t.Errorf("IsPseudoPostcode(%q) = %v, want %v", in, got, want)
		}
	}
}

// The sector is the outward code and the first character of the inward code
// (domain brief, section 1: "postcode sector or district at most").
func TestPostcodeSector(t *testing.T) {
	tests := map[string]string{
		"SM1 2AB": "SM1 2", "EC1A 1BB": "EC1A 1", "M1 1AE": "M1 1", "DN55 1PT": "DN55 1", "GIR 0AA": "GIR 0",
		"SM12AB": "", "": "", "SM1 2": "", "SM1  2AB": "", // not canonical
	}
	for in, want := range tests {
		if got := PostcodeSector(in); got != want {
			t.Errorf("PostcodeSector(%q) = %q, want %q", in, got, want)
		}
	}
}

// Validate checks and rewrites the postcode of every record: a canonical
// postcode costs no allocation.
func TestPostcodeNoAllocWhenCanonical(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if pc, ok := NormalisePostcode("SW1A 1AA"); !ok || pc != "SW1A 1AA" {
			t.Fatal("not valid")
		}
		if !PostcodeValid("sw1a1aa") || !IsPseudoPostcode(PseudoNotKnown) || PostcodeSector("SW1A 1AA") != "SW1A 1" {
			t.Fatal("wrong verdict")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}

func BenchmarkNormalisePostcode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := NormalisePostcode("sw1a1aa"); !ok {
			b.Fatal("invalid")
		}
	}
}
