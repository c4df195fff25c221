package cam

import (
	"strings"
	"testing"
)

// CAM reads epraccur's National Grouping (W00, guidance p.11-12, p.15) and
// High Level Health Geography (Q99, YAC-YAF: p.29, p.37). The newer ODS
// "Data Search and Export" epraccur leaves both empty for non-English
// practices (shared reference README, file 2), so the reference data must
// give CAM the same codes from either layout. Here the sample's classic rows
// of a BFPO DMS practice (A91183), an Alderney practice (ALD200) and a Welsh
// practice (W00199) are replaced by their rows in
// epraccur_2026-02_dse-format.csv, and every case of the private/overseas
// and border/devolved tables must still be decided as with the classic file.
func TestNewerEpraccurExportGivesCAMTheSameInputs(t *testing.T) {
	dse := map[string]string{
		"A91183": `"A91183","BIELEFELD MEDICAL CENTRE","","","THE MEDICAL CENTRE","BUILDING 9","BFPO 39","BFPO","","BF1 0AP","20130401","","ACTIVE","B","13Q","20130401","","","","","","1","","13Q","","RO72",""`,
		"ALD200": `"ALD200","DR R LYONS' PRACTICE","","","STEFAN HOUSE,OLLIVIER CT","OLLIVIER STREET, ST ANNES","ALDERNEY","GUERNSEY","","GY9 3TD","19900101","","ACTIVE","Z","","","","01481 822494","","","","1","","","","RO72",""`,
		"W00199": `"W00199","BRECON MEDICAL FACILITY","","","DERING LINES","","","BRECON","","LD3 7RA","20230214","","ACTIVE","B","7A7","20230214","","01874 613554","","","","1","","7A7","","RO76",""`,
	}
	a := assignerWithPractices(t, func(file string) string {
		lines := strings.SplitAfter(file, "\n")
		replaced := 0
		for i, l := range lines {
			for code, row := range dse {
				if strings.HasPrefix(l, `"`+code+`"`) {
					lines[i] = row + "\r\n"
					replaced++
				}
			}
		}
		if replaced != len(dse) {
			t.Fatalf("replaced %d sample rows, want %d", replaced, len(dse))
		}
		return strings.Join(lines, "")
	})
	for _, tc := range append(privateAndOverseasCases(), borderAndDevolvedCases()...) {
		var r Result
		a.Decide(tc.act, nil, &r)
		if r.Step != tc.step || r.Commissioner != tc.comm || r.ReasonCode != tc.reason {
			t.Errorf("%s (%s), practices from the newer export: got %s step %s, %s; want %s step %s, %s",
				tc.name, tc.section, r.Commissioner, r.Step, r.ReasonCode, tc.comm, tc.step, tc.reason)
		}
	}
}
