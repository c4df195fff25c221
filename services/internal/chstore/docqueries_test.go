package chstore

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
)

// TestDataQualityDocQueries runs every SQL example of the data-quality section
// of docs/analytics.md against a real ClickHouse holding the conformance
// suite's outcomes, so that what analysts are told to run does run.
func TestDataQualityDocQueries(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## Data quality: validation outcomes and submissions"
	start := strings.Index(string(doc), heading)
	if start < 0 {
		t.Fatalf("docs/analytics.md has no section %q", heading)
	}
	section := string(doc)[start+len(heading):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	queries := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(queries) < 5 {
		t.Fatalf("found %d SQL examples in the section, want the examples", len(queries))
	}

	ctx, conn, fresh := testServer(t)
	db, w := fresh(t)
	for _, c := range append(dqreporttest.Cases(), outpatientMarch()) {
		writeCase(ctx, t, w, c)
	}
	for _, m := range queries {
		q := strings.ReplaceAll(m[1], "dmic.", db+".")
		q = strings.ReplaceAll(q, "'sub-…'", "'sub-mixed'")
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Errorf("%s\n=> %v", q, err)
			continue
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s\n=> %v", q, err)
		}
		rows.Close()
	}
}
