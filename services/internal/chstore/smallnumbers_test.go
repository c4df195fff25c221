package chstore_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
)

// The combinations of chstoretest.SmallNumbersActivity, as
// "source month age_band sex lsoa records patients".
const (
	cellA     = "provider 2025-03 65-69 2 E01000001 2 2" // RR8 APC + RJ7 outpatient
	cellB     = "provider 2025-03 65-69 1 E01000001 4 2"
	cellC     = "provider 2025-03 65-69 2 E01000002 5 5"
	cellD     = "provider 2025-04 0 1 - 2 1" // no LSOA; one record without a pseudonym
	cellE     = "provider 2025-04 30-34 2 E01009999 5 5"
	cellFProv = "provider 2025-05 90+ 9 E01000003 6 6"
	cellI     = "provider 2025-06 50-54 1 E01000005 4 4"
	cellJ     = "provider 2025-07 50-54 1 E01000005 1 1"
	cellFNat  = "national 2025-05 90+ 9 E01000003 2 2"
)

func cellString(r chstore.SmallNumbersRow) string {
	lsoa := r.LSOA
	if lsoa == "" {
		lsoa = "-"
	}
	return fmt.Sprintf("%s %s %s %s %s %d %d", r.Source, r.Month.Format("2006-01"), r.AgeBand, r.Sex, lsoa, r.Records, r.Patients)
}

// TestSmallNumbers writes activity with known combination sizes to a real
// ClickHouse and checks that the small_numbers view (k = 5) and SmallNumbers
// (any k, filters) list exactly the combinations below k.
func TestSmallNumbers(t *testing.T) {
	conn, cfg := chstoretest.Database(t, "dmic_small")
	db := cfg.Database
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := chstore.NewWriter(conn, db)
	for _, b := range chstoretest.SmallNumbersActivity() {
		if err := w.WriteActivity(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("the view lists the combinations under 5", func(t *testing.T) {
		rows, err := conn.Query(ctx, "SELECT "+strings.Join([]string{"source", "month", "age_band", "person_gender_code", "lsoa", "records", "patients"}, ", ")+
			" FROM "+db+"."+chstore.ViewSmallNumbers+" ORDER BY source DESC, month, lsoa, age_band, person_gender_code")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var r chstore.SmallNumbersRow
			if err := rows.Scan(&r.Source, &r.Month, &r.AgeBand, &r.Sex, &r.LSOA, &r.Records, &r.Patients); err != nil {
				t.Fatal(err)
			}
			got = append(got, cellString(r))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		// source DESC puts provider first, as in the list below.
		want := []string{cellB, cellA, cellD, cellI, cellJ, cellFNat}
		if !slices.Equal(got, want) {
			t.Errorf("small_numbers =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	tests := []struct {
		name string
		k    int
		f    chstore.SmallNumbersFilter
		want []string
	}{
		{"k 5, as the view", 5, chstore.SmallNumbersFilter{}, []string{cellFNat, cellB, cellA, cellD, cellI, cellJ}},
		{"k 2: single records only", 2, chstore.SmallNumbersFilter{}, []string{cellJ}},
		{"k 6 adds the combinations of 5", 6, chstore.SmallNumbersFilter{}, []string{cellFNat, cellB, cellA, cellC, cellD, cellE, cellI, cellJ}},
		{"k 7 adds the provider's 6", 7, chstore.SmallNumbersFilter{}, []string{cellFNat, cellB, cellA, cellC, cellD, cellE, cellFProv, cellI, cellJ}},
		{"one provider: RJ7's record no longer counts with RR8's", 5, chstore.SmallNumbersFilter{Provider: "RR8"},
			[]string{cellFNat, cellB, "provider 2025-03 65-69 2 E01000001 1 1", cellD, cellI, cellJ}},
		{"one dataset", 5, chstore.SmallNumbersFilter{Dataset: "outpatient"}, []string{"provider 2025-03 65-69 2 E01000001 1 1"}},
		{"one source", 5, chstore.SmallNumbersFilter{Source: "national"}, []string{cellFNat}},
		{"activity from June", 5, chstore.SmallNumbersFilter{From: time.Date(2025, 6, 20, 0, 0, 0, 0, time.UTC)}, []string{cellI, cellJ}},
		{"nothing small", 5, chstore.SmallNumbersFilter{From: time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := chstore.SmallNumbers(ctx, conn, db, tt.k, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, cellString(r))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("SmallNumbers(k=%d, %+v) =\n%s\nwant\n%s", tt.k, tt.f, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	t.Run("k below 2 is refused", func(t *testing.T) {
		for _, k := range []int{1, 0, -5} {
			if _, err := chstore.SmallNumbers(ctx, conn, db, k, chstore.SmallNumbersFilter{}); err == nil || !strings.Contains(err.Error(), "k =") {
				t.Errorf("k = %d: err = %v, want a refusal naming k", k, err)
			}
		}
	})
}

// TestSmallNumbersDocQueries runs the SQL examples of the small-numbers
// section of docs/analytics.md against a real ClickHouse, so that what
// analysts are told to run does run, and checks the first one's answer.
func TestSmallNumbersDocQueries(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## Small numbers: checking a release"
	start := strings.Index(string(doc), heading)
	if start < 0 {
		t.Fatalf("docs/analytics.md has no section %q", heading)
	}
	section := string(doc)[start+len(heading):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	queries := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(queries) != 2 {
		t.Fatalf("found %d SQL examples in the section, want 2", len(queries))
	}

	conn, cfg := chstoretest.Database(t, "dmic_small_doc")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := chstore.NewWriter(conn, cfg.Database)
	for _, b := range chstoretest.SmallNumbersActivity() {
		if err := w.WriteActivity(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var counts []int
	for _, m := range queries {
		q := strings.ReplaceAll(m[1], "dmic.", cfg.Database+".")
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Errorf("%s\n=> %v", q, err)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s\n=> %v", q, err)
		}
		rows.Close()
		counts = append(counts, n)
	}
	// Query 19, March 2025: the provider's two small combinations (4 and 2
	// records); the 5-record one is not small.
	if len(counts) > 0 && counts[0] != 2 {
		t.Errorf("query 19 returned %d rows, want 2", counts[0])
	}
}
