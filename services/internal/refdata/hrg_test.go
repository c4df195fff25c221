package refdata

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The HRG4+ list is the published one (reference file 21: the National
// Casemix Office's Code to Group workbooks, 2020/21 to 2025/26), as the
// sample copies it whole.
func TestHRGListFromPublishedFile(t *testing.T) {
	f, err := os.Open(filepath.Join(sampleDir, HRGFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := LoadHRGs(f)
	if err != nil {
		t.Fatal(err)
	}
	// README, file 21: "Rows: 2,959. 2,900 are current in the 2025/26 Local
	// Payment Grouper; 59 were retired after 2021/22."
	current, retired := 0, 0
	for _, g := range l.codes {
		if g.To == "" {
			current++
		} else {
			retired++
		}
	}
	if len(l.codes) != 2959 || current != 2900 || retired != 59 {
		t.Fatalf("codes %d (current %d, retired %d), want 2959 (2900, 59)", len(l.codes), current, retired)
	}
	if g, ok := l.Lookup(" ff37d "); !ok || g.Kind != "Core" || !strings.HasPrefix(g.Description, "Appendicectomy Procedures, 19 years and over") {
		t.Fatalf("FF37D: %+v %v", g, ok)
	}

	cases := []struct {
		name, code, day string
		valid, covered  bool
	}{
		{"a current code in 2025/26", "FF37D", "2025-06-15", true, true},
		{"the ungroupable code is a code of the list", "UZ01Z", "2025-06-15", true, true},
		// AB19Z (injection into joint for pain management) left the grouper
		// after 2021/22: Valid_To 2022-03-31.
		{"a retired code on its last day", "AB19Z", "2022-03-31", true, true},
		{"a retired code the day after", "AB19Z", "2022-04-01", false, true},
		// FF10B was an HRG4 appendicectomy code; no release from 2020/21 has it.
		{"a code of no release from 2020/21", "FF10B", "2025-06-15", false, true},
		{"not an HRG at all", "ZZ99Z", "2021-01-01", false, true},
		{"before the list's first release: not known", "FF10B", "2020-03-31", false, false},
		{"the list's first day", "FF37D", "2020-04-01", true, true},
		// The latest release is 2025/26; its codes stand until a newer list.
		{"after the latest release", "FF37D", "2026-12-01", true, true},
		{"no date", "FF37D", "", false, false},
		{"not a date", "FF37D", "2025-02-30", false, false},
	}
	for _, tc := range cases {
		valid, covered := l.HRGValidOn(tc.code, tc.day)
		if valid != tc.valid || covered != tc.covered {
			t.Errorf("%s: HRGValidOn(%q, %q) = %v, %v; want %v, %v", tc.name, tc.code, tc.day, valid, covered, tc.valid, tc.covered)
		}
	}
}

// A code first grouped after the list's first release is not valid before
// its Valid_From.
func TestHRGNotYetGrouped(t *testing.T) {
	l, err := LoadHRGs(strings.NewReader("HRGCode,HRGDescription,Core_Or_Unbundled,Valid_From,Valid_To\n" +
		"AA22C,old,Core,2020-04-01,\n" +
		"XX01A,new,Core,2022-04-01,\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, c := l.HRGValidOn("XX01A", "2022-03-31"); v || !c {
		t.Errorf("XX01A the day before its first release: %v, %v", v, c)
	}
	if v, c := l.HRGValidOn("XX01A", "2022-04-01"); !v || !c {
		t.Errorf("XX01A on its first day: %v, %v", v, c)
	}
}

func TestHRGListErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no code column", "Code,Valid_From,Valid_To\nAA22C,2020-04-01,\n", `no "hrgcode" column`},
		{"a bad date", "HRGCode,Valid_From,Valid_To\nAA22C,2020-04-01,\nAA22D,01/04/2020,\n", `line 3: HRG4+ code AA22D: Valid_From "01/04/2020" is not a date`},
		{"no code", "HRGCode,Valid_From,Valid_To\n,2020-04-01,\n", "line 2: HRG4+ code row has no HRGCode"},
	} {
		_, err := LoadHRGs(strings.NewReader(tc.in))
		var pe *ParseError
		if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// LoadDir reads the list when the folder has it, and does without it.
func TestLoadDirHRGs(t *testing.T) {
	r, err := LoadDir(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	if v, c := r.HRGValidOn("AB19Z", "2023-01-01"); v || !c {
		t.Errorf("sample: AB19Z in 2023: %v, %v", v, c)
	}
	if g, ok := r.HRG("DZ11R"); !ok || g.Code != "DZ11R" {
		t.Errorf("sample: DZ11R: %+v %v", g, ok)
	}
	var none *Reference = New(nil, nil, nil, nil, nil)
	if _, c := none.HRGValidOn("DZ11R", "2025-06-15"); c {
		t.Error("no list loaded, yet the answer is known")
	}
}
