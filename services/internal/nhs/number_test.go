package nhs

import (
	"fmt"
	"testing"
)

// The NHS number rules: NHS Data Dictionary, "NHS Number" (format n10 and
// the Modulus 11 check digit), with the worked examples of the domain brief
// (commissioning-data.md, "NHS number Modulus 11"). S is the weighted sum
// of the first nine digits (weights 10 to 2), c = 11 - (S mod 11).
func TestNumber(t *testing.T) {
	type tc struct {
		in                          string
		wellFormed, checkOK, repeat bool
		why                         string
	}
	tests := []tc{
		// Worked examples of the domain brief.
		{"9434765919", true, true, false, "S 299, c 9"},
		{"9434765918", true, false, false, "S 299, c 9: last digit 8"},
		{"9449305552", true, true, false, "S 284, c 2"},
		{"4010232137", true, true, false, "S 92, c 7"},
		// c = 11 is read as 0.
		{"4000000020", true, true, false, "S 44, c 11 -> 0"},
		{"4000000021", true, false, false, "S 44, check digit is 0, not 1"},
		// c = 1, the other end.
		{"4000000071", true, true, false, "S 54, c 1"},
		// Repeated digits pass Modulus 11 but are not NHS numbers.
		{"0000000000", true, true, true, "S 0, c 11 -> 0, one digit repeated"},
		{"1111111111", true, true, true, "S 54, c 1, one digit repeated"},
		{"9999999999", true, true, true, "S 486, c 9, one digit repeated"},
		// The form: exactly 10 ASCII digits, nothing tolerated.
		{"943476591", false, false, false, "9 digits"},
		{"94347659190", false, false, false, "11 digits"},
		{"943 476 5919", false, false, false, "spaces between the digits"},
		{"943-476-5919", false, false, false, "hyphens"},
		{" 9434765919", false, false, false, "a leading space"},
		{"9434765919\t", false, false, false, "a trailing tab"},
		{"943476591X", false, false, false, "a letter"},
		{"", false, false, false, "empty"},
		{"９４３４７６５９１９", false, false, false, "full-width digits"},
	}
	// c = 10: "123456789x" (S 210) and "400000008x" (S 56) have no valid
	// check digit, whatever x is.
	for x := 0; x <= 9; x++ {
		tests = append(tests,
			tc{fmt.Sprintf("123456789%d", x), true, false, false, "S 210, c 10"},
			tc{fmt.Sprintf("400000008%d", x), true, false, false, "S 56, c 10"})
	}
	for _, tt := range tests {
		valid := tt.wellFormed && tt.checkOK && !tt.repeat
		if got := NumberWellFormed(tt.in); got != tt.wellFormed {
			t.Errorf("NumberWellFormed(%q) = %v, want %v (%s)", tt.in, got, tt.wellFormed, tt.why)
		}
		if got := NumberCheckDigitOK(tt.in); got != tt.checkOK {
			t.Errorf("NumberCheckDigitOK(%q) = %v, want %v (%s)", tt.in, got, tt.checkOK, tt.why)
		}
		if tt.wellFormed {
			if got := NumberRepeated(tt.in); got != tt.repeat {
				t.Errorf("NumberRepeated(%q) = %v, want %v (%s)", tt.in, got, tt.repeat, tt.why)
			}
		}
		if got := NumberValid(tt.in); got != valid {
			t.Errorf("NumberValid(%q) = %v, want %v (%s)", tt.in, got, valid, tt.why)
		}
	}
}

func TestCheckDigit(t *testing.T) {
	tests := []struct {
		in    string
		digit byte
		ok    bool
	}{
		{"943476591", '9', true},  // S 299
		{"944930555", '2', true},  // S 284
		{"401023213", '7', true},  // S 92
		{"400000002", '0', true},  // S 44: 11 read as 0
		{"400000007", '1', true},  // S 54
		{"123456789", 0, false},   // S 210: 10, no check digit
		{"400000008", 0, false},   // S 56: 10
		{"9434765919", '9', true}, // the first nine of a whole number
		{"94347659", 0, false},    // too short
		{"94347659X", 0, false},   // not digits
		{"", 0, false},
	}
	for _, tt := range tests {
		d, ok := CheckDigit(tt.in)
		if d != tt.digit || ok != tt.ok {
			t.Errorf("CheckDigit(%q) = %q, %v; want %q, %v", tt.in, d, ok, tt.digit, tt.ok)
		}
	}
}

// For every nine-digit prefix there is at most one valid tenth digit, and it
// is the one CheckDigit gives: the generator and the check are one rule.
func TestCheckDigitIsTheOnlyValidLastDigit(t *testing.T) {
	for _, prefix := range []string{"943476591", "401023213", "123456780", "987654321", "600000000", "400000002", "400000008", "799999999"} {
		want, ok := CheckDigit(prefix)
		valid := 0
		for x := byte('0'); x <= '9'; x++ {
			if NumberCheckDigitOK(prefix + string(x)) {
				valid++
				if !ok || x != want {
					t.Errorf("prefix %s: %c passes, CheckDigit says %q, %v", prefix, x, want, ok)
				}
			}
		}
		if ok && valid != 1 || !ok && valid != 0 {
			t.Errorf("prefix %s: %d valid last digits (CheckDigit ok %v)", prefix, valid, ok)
		}
	}
}

func TestNumberRulesDoNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if !NumberValid("9434765919") || NumberValid("9434765918") {
			t.Fatal("wrong verdict")
		}
		if _, ok := CheckDigit("943476591"); !ok {
			t.Fatal("no check digit")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}
