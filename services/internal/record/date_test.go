package record

import "testing"

// The record format's dates (docs/record-format.md): YYYY-MM-DD calendar
// dates, the Gregorian leap-year rule deciding 29 February (NHS Data
// Dictionary date items are calendar dates; a date that does not exist,
// such as 2023-02-29, is invalid: rules DOB-001 and DATE-001).
func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		y, m, d int
		ok      bool
	}{
		{"2024-02-29", 2024, 2, 29, true}, // divisible by 4
		{"2000-02-29", 2000, 2, 29, true}, // divisible by 400
		{"2023-02-29", 0, 0, 0, false},
		{"1900-02-29", 0, 0, 0, false}, // a century not divisible by 400
		{"2100-02-29", 0, 0, 0, false},
		{"2025-04-31", 0, 0, 0, false},
		{"2025-12-31", 2025, 12, 31, true},
		{"2025-13-01", 0, 0, 0, false},
		{"2025-00-10", 0, 0, 0, false},
		{"2025-01-00", 0, 0, 0, false},
		{"0001-01-01", 1, 1, 1, true},
		{"0000-01-01", 0, 0, 0, false}, // there is no year 0
		{"20250101", 0, 0, 0, false},
		{"2025-1-01", 0, 0, 0, false},
		{"2025-01-01T00:00", 0, 0, 0, false},
		{"2025/01/01", 0, 0, 0, false},
		{"2025-0a-01", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tt := range tests {
		y, m, d, ok := ParseDate(tt.in)
		if ok != tt.ok || y != tt.y || m != tt.m || d != tt.d {
			t.Errorf("ParseDate(%q) = %d, %d, %d, %v; want %d, %d, %d, %v", tt.in, y, m, d, ok, tt.y, tt.m, tt.d, tt.ok)
		}
	}
}
