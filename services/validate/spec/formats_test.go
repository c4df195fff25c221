package spec

import (
	"fmt"
	"testing"
)

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
	for s, want := range map[string]bool{"H85001": true, "V81999": true, "V81998": true, "V81997": true, "h85001": false, "H8500": false, "HH5001": false, "H850011": false, "G9999981": true, "GUE010": true, "JER002": true, "ALD200": true, "ABC123": false, "GUE01": false, "JERX02": false} {
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
		{"postcode", 0, []string{"SW1A 1AA", "sw1a1aa", "ZZ99 3VZ", "zz996cz", "GIR 0AA"}, []string{"Q1 1AA", "SW1A 1CA", "SM1 A2B", "ZZ99 3AB"}},
		{"org_code", 0, []string{"RJ7", "NT401", "rj7"}, []string{"RJ", "RJ7001", "RJ-7"}},
		{"site_code", 0, []string{"RJ701", "RJ7010000"}, []string{"RJ70", "RJ70100000", "RJ7-01"}},
		{"practice_code", 0, []string{"H85001", "V81999", "V81998", "V81997", "G9999981", "JER002"}, []string{"h85001", "H8500", "HH5001", "H850011", "G9999982", "ABC123", "jer002"}},
		{"commissioner_code", 0, []string{"36L", "W2U3Z", "VPP00", "Q99"}, []string{"36", "W2U3ZZ", "36 L"}},
		{"icd10", 0, []string{"I219", "I10X", "N40X", "Z380", "I2191", "I219-", "A170-D", "G01X-A"}, []string{"J45", "I21.9", "i219", "I2", "I21A", "121", "I219A", "I219-X", "I2191D1"}},
		{"icd10_list", 0, []string{"I219", "E119;I10X", "A170-D;Z380"}, []string{"E119;", ";E119", "E119;;I10X", "E119; I10X", "E119,I10X", "E119;J45"}},
		{"opcs4_list", 0, []string{"K634", "K634;Y981"}, []string{"K634;", "K634;Y98", "K634 Y981", "K634;y981"}},
		{"opcs4", 0, []string{"W371", "K634"}, []string{"W37", "W3", "W3711", "w371", "W37A", "1371", "W37.1"}},
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
