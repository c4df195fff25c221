package ingest

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// The parameter tables of docs/submitting.md list exactly the names each
// endpoint accepts: the code's table is the one list, and the page follows it.
func TestDocumentedQueryParametersAreTheAcceptedOnes(t *testing.T) {
	page, err := os.ReadFile("../../docs/submitting.md")
	if err != nil {
		t.Fatal(err)
	}
	tables := regexp.MustCompile("(?m)^\\| parameter \\| meaning \\|\\n\\|---\\|---\\|\\n((?:\\|.*\\n)+)").FindAllSubmatch(page, -1)
	if len(tables) != 2 {
		t.Fatalf("found %d parameter tables in docs/submitting.md, want 2 (submission, report)", len(tables))
	}
	for i, accepted := range [][]string{submitParams, reportParams} {
		var documented []string
		for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllSubmatch(tables[i][1], -1) {
			documented = append(documented, string(m[1]))
		}
		if !slices.Equal(documented, accepted) {
			t.Errorf("table %d documents %v; the endpoint accepts %v", i+1, documented, accepted)
		}
	}
}

func TestNearestName(t *testing.T) {
	for name, want := range map[string]string{
		"submiter": "submitter", "Dataset": "dataset", "result": "results", "idempotency-key": "idempotency_key",
		"sauce": "", "x": "", "dataset_id": "",
	} {
		if got := nearest(name, submitParams); got != want {
			t.Errorf("nearest(%q) = %q, want %q", name, got, want)
		}
	}
}
