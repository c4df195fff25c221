package nhs_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/nhs"
)

// The data dictionary facts of the domain brief (commissioning-data.md), each
// case citing where its rule is stated: [M11] section 3, "NHS number
// Modulus 11" (weights 10..2, c = 11 - S mod 11, 11 -> 0, 10 invalid, its
// table of worked examples, repeated digits rejected); [N10] section 3,
// "NHS NUMBER n10" (ten digits, so a leading zero is part of the number);
// [PC] section 5, "Postcode format"; [PSEUDO] section 3, POSTCODE OF USUAL
// ADDRESS pseudo-postcodes.

func TestDictionaryNHSNumber(t *testing.T) {
	tests := []struct {
		in    string
		valid bool
		why   string
	}{
		{"9434765919", true, "[M11] table: S 299, S mod 11 = 2, c 9, valid"},
		{"9434765918", false, "[M11] table: c 9, last digit 8, invalid"},
		{"9449305552", true, "[M11] table: S 284, c 2, valid"},
		{"4010232137", true, "[M11] table: S 92, c 7, valid"},
		{"1234567890", false, "[M11] table: S 210, c 10, invalid for any last digit"},
		{"1234567891", false, "[M11] table: c 10"},
		{"1234567899", false, "[M11] table: c 10"},
		{"4000000020", true, "[M11] c = 11 is read as 0 (S 44)"},
		{"4000000029", false, "[M11] c = 11 -> 0, so 9 is wrong"},
		{"0123456789", true, "[N10] leading zero kept: S 156, c 9"},
		{"123456789", false, "[N10] the same number without its leading zero is 9 digits"},
		{"0000000000", false, "[M11] passes the checksum, all one digit"},
		{"1111111111", false, "[M11] passes the checksum, all one digit"},
		{"2222222222", false, "[M11] one digit repeated"},
		{"5555555555", false, "[M11] one digit repeated"},
		{"9999999999", false, "[M11] one digit repeated"},
		{"943 476 5919", false, "[N10] n10: digits only"},
	}
	for _, tt := range tests {
		if got := nhs.NumberValid(tt.in); got != tt.valid {
			t.Errorf("NumberValid(%q) = %v, want %v: %s", tt.in, got, tt.valid, tt.why)
		}
	}
	// [M11]: every repeated-digit number passes Modulus 11 but is refused.
	for c := byte('0'); c <= '9'; c++ {
		n := string([]byte{c, c, c, c, c, c, c, c, c, c})
		if !nhs.NumberCheckDigitOK(n) || !nhs.NumberRepeated(n) || nhs.NumberValid(n) {
			t.Errorf("%s: check digit ok %v, repeated %v, valid %v; want true, true, false",
				n, nhs.NumberCheckDigitOK(n), nhs.NumberRepeated(n), nhs.NumberValid(n))
		}
	}
}

func TestDictionaryPostcode(t *testing.T) {
	tests := []struct {
		in, want string
		why      string
	}{
		{"M1 1AE", "M1 1AE", "[PC] outward A9"},
		{"B33 8TH", "B33 8TH", "[PC] outward A99"},
		{"CR2 6XH", "CR2 6XH", "[PC] outward AA9"},
		{"DN55 1PT", "DN55 1PT", "[PC] outward AA99"},
		{"W1A 0AX", "W1A 0AX", "[PC] outward A9A"},
		{"EC1A 1BB", "EC1A 1BB", "[PC] outward AA9A"},
		{"GIR 0AA", "GIR 0AA", "[PC] GIR 0AA is a special case"},
		{"ec1a1bb", "EC1A 1BB", "[PC] normalise: upper case, a space before the last 3"},
		{" EC1A  1BB ", "EC1A 1BB", "[PC] normalise: spaces stripped first"},
		{"DN551PT", "DN55 1PT", "[PC] pcd (7 characters)"},
		{"M1   1AE", "M1 1AE", "[PC] pcd2 (8 characters, inward code at position 6)"},
		{"ZZ99 3VZ", "ZZ99 3VZ", "[PSEUDO] no fixed abode"},
		{"ZZ99 3WZ", "ZZ99 3WZ", "[PSEUDO] not known"},
		{"ZZ99 3CZ", "ZZ99 3CZ", "[PSEUDO] England n.o.s."},
		{"ZZ99 1WZ", "ZZ99 1WZ", "[PSEUDO] Scotland"},
		{"ZZ99 2WZ", "ZZ99 2WZ", "[PSEUDO] Northern Ireland"},
		{"ZZ99 3GZ", "ZZ99 3GZ", "[PSEUDO] Wales"},
		{"zz996cz", "ZZ99 6CZ", "[PSEUDO] ZZ99 nXZ: India"},
		{"Q1 1AA", "", "[PC] position 1 never Q"},
		{"V1 1AA", "", "[PC] position 1 never V"},
		{"X1 1AA", "", "[PC] position 1 never X"},
		{"AI1 1AA", "", "[PC] position 2 never I"},
		{"AJ1 1AA", "", "[PC] position 2 never J"},
		{"AZ1 1AA", "", "[PC] position 2 never Z"},
		{"M1 1CA", "", "[PC] inward letters exclude C"},
		{"M1 1AI", "", "[PC] inward letters exclude I"},
		{"M1 1KA", "", "[PC] inward letters exclude K"},
		{"M1 1AM", "", "[PC] inward letters exclude M"},
		{"M1 1OA", "", "[PC] inward letters exclude O"},
		{"M1 1AV", "", "[PC] inward letters exclude V"},
		{"M1 AAA", "", "[PC] inward code is 9AA"},
		{"M1 11A", "", "[PC] inward code is 9AA"},
		{"MMM1 1AA", "", "[PC] no outward form AAA9"},
		{"M111 1AA", "", "[PC] no outward form A999"},
		{"M1AA 1AA", "", "[PC] no outward form A9AA"},
	}
	for _, tt := range tests {
		got, ok := nhs.NormalisePostcode(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("NormalisePostcode(%q) = %q, %v; want %q: %s", tt.in, got, ok, tt.want, tt.why)
		}
		if ok && nhs.IsPseudoPostcode(got) != (got[:4] == "ZZ99") {
			t.Errorf("IsPseudoPostcode(%q) = %v: %s", got, !(got[:4] == "ZZ99"), tt.why)
		}
	}
}
