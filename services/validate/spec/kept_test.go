package spec

import (
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/validate/specs"
)

// TestEveryKeptFieldIsSearchedForIdentifiers: for each built-in
// specification and each of its data sets, CDS-004 and PID-001 together name
// every field de-identification keeps (record.KeptFields), so that a record
// de-identification would refuse (DEID-002) is refused by validation first,
// and the provider's report says so by field, instead of "accepted" for a
// record that never arrives (found by TestGraderDQ: a postcode in site_code,
// an NHS number in the chief complaint).
func TestEveryKeptFieldIsSearchedForIdentifiers(t *testing.T) {
	files, err := fs.Glob(specs.FS, "*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no built-in specifications: %v", err)
	}
	for _, name := range files {
		b, err := fs.ReadFile(specs.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Datasets []string `json:"datasets"`
			Rules    []struct {
				ID     string   `json:"id"`
				Check  string   `json:"check"`
				Fields []string `json:"fields"`
			} `json:"rules"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		searched := map[string]bool{}
		for _, r := range doc.Rules {
			if r.Check == "no_patient_identifier" {
				for _, f := range r.Fields {
					searched[f] = true
				}
			}
		}
		for _, ds := range doc.Datasets {
			d, err := record.ParseDataset(ds)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, f := range record.KeptFields(d) {
				if !searched[f] {
					t.Errorf("%s, %s: kept field %s is not searched for the patient's identifiers (add it to PID-001)", name, ds, f)
				}
			}
		}
	}
}
