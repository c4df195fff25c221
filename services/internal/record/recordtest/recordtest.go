// Package recordtest builds provider records for tests of the components
// that carry them.
package recordtest

import (
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// Outpatient is a small, valid outpatient record of provider RXX as a JSON
// line.
func Outpatient(uid string) string {
	return `{"cds_unique_identifier":"` + uid + `","provider_code":"RXX","person_birth_date":"1980-01-01","attendance_identifier":"A1",` +
		`"appointment_date":"2026-01-02","attended_or_did_not_attend_code":"5","treatment_function_code":"100"}`
}

// OutpatientOfSize is Outpatient(uid) with its hrg_code padded so that the
// line, in the canonical form ingest stores on dmic.raw, is exactly n bytes.
func OutpatientOfSize(t testing.TB, uid string, n int) string {
	t.Helper()
	base := strings.Replace(Outpatient(uid), `"treatment_function_code":"100"`, `"treatment_function_code":"100","hrg_code":"A"`, 1)
	rec, ds, err := record.DecodeJSON([]byte(base), dmicv1.Dataset_DATASET_OUTPATIENT)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := record.EncodeJSON(ds, rec)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Replace(string(canon), `"hrg_code":"A"`, `"hrg_code":"`+strings.Repeat("A", n-len(canon)+1)+`"`, 1)
	if len(line) != n {
		t.Fatalf("sized line is %d bytes, want %d", len(line), n)
	}
	return line
}
