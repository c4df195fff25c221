package main

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
)

// TestDQ writes outcomes to a real ClickHouse and reads them back with
// `dmicctl dq`.
func TestDQ(t *testing.T) {
	conn, cfg := chstoretest.Database(t, "dmicctl_test")
	db := cfg.Database
	// dq reads as the analyst, whose password file it is given.
	analyst := chstoretest.Args(chstoretest.As(t, cfg, chaccess.Analyst))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := chstore.NewWriter(conn, db)
	// RR8's APC submission of April 2025 (the suite's mixed case: 8 records,
	// 2 accepted, 2 warned, 4 rejected) and two RJ7 outpatient records of
	// January 2025, one rejected.
	for _, c := range dqreporttest.Cases() {
		if c.Name != "accepted, warned, rejected and refused at the door" {
			continue
		}
		for _, b := range c.Batches {
			if err := w.WriteOutcomes(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	var rj7 []*validationv1.ValidationOutcome
	for line, v := range []validationv1.Outcome{validationv1.Outcome_OUTCOME_ACCEPTED, validationv1.Outcome_OUTCOME_REJECTED} {
		var fs []*dmicv1.Failure
		if v == validationv1.Outcome_OUTCOME_REJECTED {
			fs = append(fs, dqreporttest.Failure("HRG-001", "hrg_code", dmicv1.Severity_SEVERITY_ERROR))
		}
		o := dqreporttest.Outcome("sub-rj7", int64(line+1), v, fs...)
		o.Header.Dataset, o.Header.SubmitterOrgCode, o.ProviderCode = dmicv1.Dataset_DATASET_OUTPATIENT, "RJ7", "RJ7"
		o.Header.ReceivedTime = timestamppb.New(time.Date(2025, 1, 15, 9, 0, 0, 0, time.UTC))
		rj7 = append(rj7, o)
	}
	if err := w.WriteOutcomes(ctx, rj7); err != nil {
		t.Fatal(err)
	}

	now := time.Date(2025, 5, 20, 12, 0, 0, 0, time.UTC)
	run := func(t *testing.T, args ...string) (string, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := dq(ctx, append(slices.Clone(analyst), args...), &out, &errOut, time.Minute, now)
		return out.String(), errOut.String(), code
	}
	rr8Row := regexp.MustCompile(`(?m)^2025-04 +RR8 +apc +provider +8 +2 +2 +4 +50\.0% +1$`)
	rj7Row := regexp.MustCompile(`(?m)^2025-01 +RJ7 +outpatient +provider +2 +1 +0 +1 +50\.0% +1$`)

	t.Run("the last three months", func(t *testing.T) {
		out, errOut, code := run(t)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !regexp.MustCompile(`(?m)^MONTH +PROVIDER +DATASET +SOURCE +RECORDS +ACCEPTED +WARNED +REJECTED +VALID +SUBMISSIONS$`).MatchString(out) || !rr8Row.MatchString(out) {
			t.Errorf("output lacks the header or RR8's April row:\n%s", out)
		}
		if rj7Row.MatchString(out) {
			t.Errorf("January is more than three months before May:\n%s", out)
		}
		if strings.Contains(out, "RULE") {
			t.Errorf("rules shown without -rules:\n%s", out)
		}
	})

	t.Run("six months, one provider, with rules", func(t *testing.T) {
		out, errOut, code := run(t, "-months", "6", "-provider", "RJ7", "-rules")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !rj7Row.MatchString(out) || rr8Row.MatchString(out) {
			t.Errorf("want RJ7's January row only:\n%s", out)
		}
		if !regexp.MustCompile(`(?m)^2025-01 +RJ7 +outpatient +provider +HRG-001 +hrg_code +error +1$`).MatchString(out) {
			t.Errorf("rules table lacks HRG-001:\n%s", out)
		}
	})

	t.Run("rules, most failed first", func(t *testing.T) {
		out, errOut, code := run(t, "-dataset", "APC", "-rules")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		t.Log("\n" + out)
		first := regexp.MustCompile(`(?m)^2025-04 +RR8 +apc +provider +(\S+) `).FindAllStringSubmatch(out, -1)
		var rules []string
		for _, m := range first {
			rules = append(rules, m[1])
		}
		// The summary row's fifth column is the record count; the rule rows follow.
		want := "8,W-GP-UNKNOWN,NHS-002,DEC-JSON,DOB-001,PC-001,W-ETHNIC"
		if strings.Join(rules, ",") != want {
			t.Errorf("rows = %v, want %s:\n%s", rules, want, out)
		}
	})

	t.Run("nothing selected", func(t *testing.T) {
		out, _, code := run(t, "-months", "1", "-provider", "RJ7")
		if code != 0 || strings.TrimSpace(out) != "No validation outcomes for provider RJ7, received since 2025-05." {
			t.Errorf("exit %d, output %q", code, out)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"-dataset", "dental"}, {"-source", "elsewhere"}, {"-months", "-1"}, {"extra"}} {
			if _, errOut, code := run(t, args...); code != 2 || errOut == "" {
				t.Errorf("dq %v: exit %d, stderr %q; want 2 and a reason", args, code, errOut)
			}
		}
	})

	t.Run("no ClickHouse schema", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := dq(ctx, append(slices.Clone(analyst), "-clickhouse-database", "dmicctl_missing"), &out, &errOut, time.Minute, now)
		if code != 1 || !strings.Contains(errOut.String(), "dq_summary") {
			t.Errorf("exit %d, stderr %q; want 1 naming dq_summary", code, errOut.String())
		}
	})
}
