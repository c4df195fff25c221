package chstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
)

func suiteCase(t *testing.T, name string) dqreporttest.Case {
	t.Helper()
	for _, c := range dqreporttest.Cases() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no suite case %q", name)
	return dqreporttest.Case{}
}

const mixedCase = "accepted, warned, rejected and refused at the door"

// outpatientMarch is a second provider's submission, received a month
// earlier: RJ7, outpatient, 4 records of which line 4 was rejected, then
// accepted on re-validation.
func outpatientMarch() dqreporttest.Case {
	const sub = "sub-rj7-march"
	received := time.Date(2025, 3, 31, 23, 59, 59, 0, time.UTC)
	o := func(line int64, v validationv1.Outcome, fs ...*dmicv1.Failure) *validationv1.ValidationOutcome {
		out := dqreporttest.Outcome(sub, line, v, fs...)
		out.Header.Dataset, out.Header.SubmitterOrgCode, out.ProviderCode = dmicv1.Dataset_DATASET_OUTPATIENT, "RJ7", "RJ7"
		out.Header.ReceivedTime = timestamppb.New(received)
		return out
	}
	later := o(4, validationv1.Outcome_OUTCOME_ACCEPTED)
	later.ValidatedTime = timestamppb.New(dqreporttest.Validated.Add(time.Hour))
	return dqreporttest.Case{
		SubmissionID: sub,
		Batches: [][]*validationv1.ValidationOutcome{
			{
				o(1, validationv1.Outcome_OUTCOME_ACCEPTED),
				o(2, validationv1.Outcome_OUTCOME_ACCEPTED),
				o(3, validationv1.Outcome_OUTCOME_REJECTED, dqreporttest.Failure("R-1", "hrg_code", dmicv1.Severity_SEVERITY_ERROR)),
				o(4, validationv1.Outcome_OUTCOME_REJECTED, dqreporttest.Failure("X-OLD", "hrg_code", dmicv1.Severity_SEVERITY_ERROR)),
			},
			{later},
		},
	}
}

func TestOutcomes(t *testing.T) {
	ctx, conn, fresh := testServer(t)

	t.Run("a redelivered batch is one row per record", func(t *testing.T) {
		db, w := fresh(t)
		c := suiteCase(t, mixedCase)
		writeCase(ctx, t, w, c)
		writeCase(ctx, t, w, c)
		if n := count(t, conn, "SELECT count() FROM "+db+".validation_outcomes"); n != 16 {
			t.Errorf("raw rows = %d, want 16 (two inserts; the collapse happens under FINAL)", n)
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".validation_outcomes FINAL"); n != 8 {
			t.Errorf("rows under FINAL = %d, want 8", n)
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".submissions FINAL"); n != 1 {
			t.Errorf("receipts under FINAL = %d, want 1", n)
		}
		got, _, err := SubmissionReport(ctx, conn, db, c.SubmissionID, c.Limit)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, c.Want) {
			t.Errorf("report after redelivery:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(c.Want))
		}
	})

	t.Run("the latest verdict is the row, whatever the order of arrival", func(t *testing.T) {
		db, w := fresh(t)
		writeCase(ctx, t, w, suiteCase(t, "a later verdict replaces an earlier one, a stale one does not"))
		type row struct {
			Line    int64  `ch:"line_number"`
			Outcome string `ch:"outcome"`
			Spec    string `ch:"spec_version"`
		}
		for _, q := range []string{"", "OPTIMIZE TABLE " + db + ".validation_outcomes FINAL"} {
			if q != "" {
				if err := conn.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			var rows []row
			if err := conn.Select(ctx, &rows, "SELECT line_number, outcome, spec_version FROM "+db+".validation_outcomes FINAL ORDER BY line_number"); err != nil {
				t.Fatal(err)
			}
			want := []row{{1, "accepted", "apc-2025.2"}, {2, "warned", "apc-2025.2"}}
			if !slices.Equal(rows, want) {
				t.Errorf("rows %s= %v, want %v", map[bool]string{true: "after OPTIMIZE "}[q != ""], rows, want)
			}
		}
	})

	t.Run("an unknown submission is not found", func(t *testing.T) {
		db, w := fresh(t)
		writeCase(ctx, t, w, suiteCase(t, mixedCase))
		for _, id := range []string{"sub-unknown", "sub-mixed' OR 1 = 1 --", `sub-mixed\`} {
			r, found, err := SubmissionReport(ctx, conn, db, id, 10)
			if err != nil || found || r != nil {
				t.Errorf("SubmissionReport(%q) = %v, %v, %v; want not found", id, r, found, err)
			}
		}
	})

	t.Run("ids are bound, not written into SQL", func(t *testing.T) {
		db, w := fresh(t)
		c := suiteCase(t, mixedCase)
		const id = `it's "quoted" \ and ?`
		c.Receipts[0].SubmissionId = id
		for _, b := range c.Batches {
			for _, o := range b {
				o.Header.SubmissionId = id
			}
		}
		c.Want.SubmissionId = id
		writeCase(ctx, t, w, c)
		got, found, err := SubmissionReport(ctx, conn, db, id, c.Limit)
		if err != nil || !found {
			t.Fatalf("SubmissionReport = %v, %v", found, err)
		}
		if !proto.Equal(got, c.Want) {
			t.Errorf("report:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(c.Want))
		}
	})

	t.Run("nothing is inserted for no outcomes or receipts", func(t *testing.T) {
		db, w := fresh(t)
		for _, err := range []error{
			w.WriteOutcomes(ctx, nil), w.WriteOutcomes(ctx, []*validationv1.ValidationOutcome{nil}),
			w.WriteReceipts(ctx, nil), w.WriteReceipts(ctx, []*validationv1.SubmissionReceipt{nil}),
		} {
			if err != nil {
				t.Errorf("write of nothing: %v", err)
			}
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".validation_outcomes") + count(t, conn, "SELECT count() FROM "+db+".submissions"); n != 0 {
			t.Errorf("%d rows inserted, want none", n)
		}
	})

	t.Run("a bad database name is refused", func(t *testing.T) {
		w := NewWriter(conn, "dmic; DROP DATABASE dmic")
		if err := w.WriteOutcomes(ctx, []*validationv1.ValidationOutcome{{}}); err == nil {
			t.Error("WriteOutcomes into a bad database name succeeded")
		}
		if err := w.WriteReceipts(ctx, []*validationv1.SubmissionReceipt{{}}); err == nil {
			t.Error("WriteReceipts into a bad database name succeeded")
		}
		if _, _, err := SubmissionReport(ctx, conn, "x.y", "s", 1); err == nil {
			t.Error("SubmissionReport with a bad database name succeeded")
		}
		if _, err := DQSummary(ctx, conn, "x y", DQFilter{}); err == nil {
			t.Error("DQSummary with a bad database name succeeded")
		}
		if _, err := DQRules(ctx, conn, "", DQFilter{}); err == nil {
			t.Error("DQRules with a bad database name succeeded")
		}
	})

	t.Run("the data-quality views", func(t *testing.T) {
		db, w := fresh(t)
		writeCase(ctx, t, w, suiteCase(t, mixedCase))
		writeCase(ctx, t, w, suiteCase(t, mixedCase)) // redelivered: counted once
		writeCase(ctx, t, w, outpatientMarch())

		april := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
		march := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
		rr8 := DQRow{"RR8", "apc", "provider", april, 8, 2, 2, 4, 0.5, 1}
		rj7 := DQRow{"RJ7", "outpatient", "provider", march, 4, 3, 0, 1, 0.75, 1}
		for _, tc := range []struct {
			name string
			f    DQFilter
			want []DQRow
		}{
			{"all, by month", DQFilter{}, []DQRow{rj7, rr8}},
			{"one provider", DQFilter{Provider: "RR8"}, []DQRow{rr8}},
			{"one dataset", DQFilter{Dataset: "outpatient"}, []DQRow{rj7}},
			{"one source", DQFilter{Source: "national"}, nil},
			{"from a month (any day in it)", DQFilter{From: april.AddDate(0, 0, 20)}, []DQRow{rr8}},
			{"to a month", DQFilter{To: march.AddDate(0, 0, 30)}, []DQRow{rj7}},
			{"a month", DQFilter{From: march, To: march}, []DQRow{rj7}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := DQSummary(ctx, conn, db, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(got, tc.want, dqRowEqual) {
					t.Errorf("DQSummary = %+v\nwant %+v", got, tc.want)
				}
			})
		}

		rules, err := DQRules(ctx, conn, db, DQFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rules {
			got = append(got, fmt.Sprintf("%s %s %s %s %s %s %s %d", r.Month.Format("2006-01"), r.Provider, r.Dataset, r.Source, r.RuleID, r.Field, r.Severity, r.Records))
		}
		want := []string{
			// X-OLD was replaced by a later verdict: not counted.
			"2025-03 RJ7 outpatient provider R-1 hrg_code error 1",
			"2025-04 RR8 apc provider W-GP-UNKNOWN general_medical_practice_code warning 3",
			"2025-04 RR8 apc provider NHS-002 nhs_number error 2",
			"2025-04 RR8 apc provider DEC-JSON  error 1",
			"2025-04 RR8 apc provider DOB-001 person_birth_date error 1",
			"2025-04 RR8 apc provider PC-001 postcode_of_usual_address error 1",
			"2025-04 RR8 apc provider W-ETHNIC ethnic_category warning 1",
		}
		if !slices.Equal(got, want) {
			t.Errorf("DQRules =\n%v\nwant\n%v", got, want)
		}
		if only, err := DQRules(ctx, conn, db, DQFilter{Provider: "RJ7"}); err != nil || len(only) != 1 {
			t.Errorf("DQRules for RJ7 = %v, %v; want one row", only, err)
		}
	})

	t.Run("an older outcomes table gains the new columns", func(t *testing.T) {
		db := fmt.Sprintf("dmic_test_oldoutcomes_%d", time.Now().UnixNano()%1e6)
		t.Cleanup(func() { _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db) })
		for _, q := range []string{
			"CREATE DATABASE " + db,
			"CREATE TABLE " + db + ".validation_outcomes (submission_id String, position UInt64, line_number Int64, outcome String, " +
				"received_time DateTime, validated_time DateTime) " +
				"ENGINE = ReplacingMergeTree(validated_time) PARTITION BY toYYYYMM(received_time) ORDER BY (submission_id, position)",
			"INSERT INTO " + db + ".validation_outcomes (submission_id, position, line_number, outcome, received_time, validated_time) " +
				"SELECT 'sub-old', 1, 1, 'rejected', toDateTime('2025-04-02 10:30:15'), toDateTime('2025-04-02 10:30:17')",
			"CREATE TABLE " + db + ".submissions (submission_id String, records Int64) ENGINE = ReplacingMergeTree() ORDER BY (submission_id)",
			"CREATE VIEW " + db + ".dq_summary AS SELECT submission_id FROM " + db + ".validation_outcomes",
		} {
			if err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := ApplySchema(ctx, conn, db); err != nil {
			t.Fatalf("ApplySchema over older tables: %v", err)
		}
		for _, c := range []struct{ table, column string }{
			{TableOutcomes, "failure_rule_id"}, {TableOutcomes, "spec_version"}, {TableSubmissions, "transport"}, {ViewDQSummary, "valid_share"},
		} {
			if n := count(t, conn, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?", db, c.table, c.column); n != 1 {
				t.Errorf("%s has no %s after the upgrade", c.table, c.column)
			}
		}
		w := NewWriter(conn, db)
		c := suiteCase(t, mixedCase)
		writeCase(ctx, t, w, c)
		if got, _, err := SubmissionReport(ctx, conn, db, c.SubmissionID, c.Limit); err != nil || !proto.Equal(got, c.Want) {
			t.Errorf("report after the upgrade = %v, %v", got, err)
		}
		// The old row reads the new columns as their defaults.
		old, found, err := SubmissionReport(ctx, conn, db, "sub-old", 10)
		if err != nil || !found || old.GetRejected() != 1 || len(old.GetFailingRecords()) != 1 || len(old.GetFailingRecords()[0].GetFailures()) != 0 {
			t.Errorf("old row's report = %v, %v, %v; want one rejected record without failures", old, found, err)
		}
	})
}

func dqRowEqual(a, b DQRow) bool {
	return a.Provider == b.Provider && a.Dataset == b.Dataset && a.Source == b.Source &&
		a.Month.Format("2006-01-02") == b.Month.Format("2006-01-02") &&
		a.Records == b.Records && a.Accepted == b.Accepted && a.Warned == b.Warned && a.Rejected == b.Rejected &&
		a.ValidShare == b.ValidShare && a.Submissions == b.Submissions
}
