package chstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultSmallNumbersK is the k of the small_numbers view: it lists the
// combinations of quasi-identifiers with fewer than 5 records. A release
// rule may ask for more; SmallNumbers takes any k.
const DefaultSmallNumbersK = 5

// smallNumbersColumns are the columns of small_numbers, in order.
var smallNumbersColumns = []string{"source", "month", "age_band", "person_gender_code", "lsoa", "records", "patients"}

// smallNumbersQuery is the one query behind both the small_numbers view and
// SmallNumbers: the combinations of quasi-identifiers (age band, sex, LSOA
// of residence, activity month) with fewer than k current activity records,
// per source. where filters the current rows before they are grouped ("" for
// none) and may refer to source, provider_code, dataset and month; k is a
// literal (the view: 18.16 has no parameterised views) or "?" (bound).
//
// Why it is built this way:
//   - The rows are activity_current's (activity FINAL, deletes dropped after
//     the collapse), read from the table instead of the view so as not to
//     pay for the view's join with reconciliation, which nothing here uses.
//     Filters apply outside the FINAL subquery: a filter on activity_date
//     inside it could prune the partition holding a record's newest revision
//     and bring an older one back.
//   - Grouped by source: a provider's copy and the national (SUS) copy of
//     one activity are two rows, and a release draws on one source or the
//     other. Counting both would double a cell's count and hide a small cell.
//   - lsoa is the LSOA 2021, or the LSOA 2011 when the reference data had no
//     2021 code: the area an analyst would release the row under. Most codes
//     are the same in both vintages. Rows with neither (pseudo-postcodes,
//     postcodes not in the reference data) form their own cells with lsoa
//     "": an "unknown residence" row in a table can be small too. So can an
//     unknown age (age_band "").
//   - records counts rows; patients counts distinct pseudonyms (rows without
//     one add none), so a cell of one patient seen five times shows 5 and 1.
func smallNumbersQuery(db, where, k string) string {
	if where != "" {
		where = "\n" + where
	}
	return fmt.Sprintf(`SELECT source, month, age_band, person_gender_code, lsoa,
    count() AS records,
    uniqExactIf(pseudo_nhs_number, pseudo_nhs_number != '') AS patients
FROM (
    SELECT source, provider_code, dataset, toStartOfMonth(activity_date) AS month, age_band, person_gender_code,
        if(lsoa_2021 != '', lsoa_2021, lsoa_2011) AS lsoa, pseudo_nhs_number
    FROM %s.%s FINAL
    WHERE deleted = 0
)%s
GROUP BY source, month, age_band, person_gender_code, lsoa
HAVING records < %s`, db, TableActivity, where, k)
}

func smallNumbersView(db string) viewDef {
	return viewDef{
		name:    ViewSmallNumbers,
		columns: smallNumbersColumns,
		query:   smallNumbersQuery(db, "", strconv.Itoa(DefaultSmallNumbersK)),
	}
}

// SmallNumbersFilter selects the current activity the small-numbers check
// looks at. Empty strings and a zero time select everything.
type SmallNumbersFilter struct {
	Provider, Dataset, Source string
	// From is the first activity month included; only its year and month
	// (UTC) count.
	From time.Time
}

func (f SmallNumbersFilter) where() (string, []any) {
	// The same columns (provider_code, dataset, source, month) as the
	// data-quality views: one condition builder for both.
	return DQFilter{Provider: f.Provider, Dataset: f.Dataset, Source: f.Source, From: f.From}.where()
}

// SmallNumbersRow is one combination of quasi-identifiers with fewer than k
// records.
type SmallNumbersRow struct {
	Source string    // provider or national
	Month  time.Time // first day of the activity month
	// AgeBand is "" for an unknown age; Sex is PERSON GENDER CODE; LSOA is
	// the LSOA 2021 (else 2011) of residence, "" when unknown.
	AgeBand, Sex, LSOA string
	// Records is the number of current activity records in the combination,
	// 1 to k-1; Patients the distinct pseudonyms among them.
	Records, Patients uint64
}

// SmallNumbers lists the combinations of age band, sex, LSOA and activity
// month with fewer than k current activity records (k >= 2), per source,
// among the activity f selects: the small_numbers view with k chosen by the
// caller. Ordered by source, month, LSOA, age band and sex.
func SmallNumbers(ctx context.Context, conn driver.Conn, db string, k int, f SmallNumbersFilter) ([]SmallNumbersRow, error) {
	if err := validateDatabase(db); err != nil {
		return nil, err
	}
	if k < 2 {
		return nil, fmt.Errorf("small numbers: k = %d, want 2 or more (no combination has fewer than 1 record)", k)
	}
	where, args := f.where()
	q := smallNumbersQuery(db, where, "?") + "\nORDER BY source, month, lsoa, age_band, person_gender_code"
	rows, err := conn.Query(ctx, q, append(args, uint64(k))...)
	if err != nil {
		return nil, fmt.Errorf("small numbers over %s.%s: %w", db, TableActivity, err)
	}
	defer rows.Close()
	var out []SmallNumbersRow
	for rows.Next() {
		var r SmallNumbersRow
		if err := rows.Scan(&r.Source, &r.Month, &r.AgeBand, &r.Sex, &r.LSOA, &r.Records, &r.Patients); err != nil {
			return nil, fmt.Errorf("small numbers over %s.%s: %w", db, TableActivity, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("small numbers over %s.%s: %w", db, TableActivity, err)
	}
	return out, nil
}
