package chstore

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
)

// A run's rows are kept once each however often they are written, the
// server says which moved, and the queries docs/analytics.md gives analysts
// run and answer the moves by step.
func TestCamRerunTable(t *testing.T) {
	ctx, conn, fresh := testServer(t)
	db, w := fresh(t)
	const run = "0123456789abcdef"
	at := timestamppb.New(time.Date(2026, 2, 10, 9, 0, 0, 0, time.UTC))
	rows := []*assignmentv1.CamRerunRow{
		{RecordKey: "a", FromCommissioner: "36L", ToCommissioner: "13R", FromStep: "C-6", ToStep: "C-6", ActivityCount: 1},
		{RecordKey: "b", FromCommissioner: "36L", ToCommissioner: "13R", FromStep: "C-6", ToStep: "C-6", ActivityCount: 1},
		{RecordKey: "c", FromCommissioner: "02T", ToCommissioner: "85J", FromStep: "C-6", ToStep: "C-0b", ActivityCount: 1},
		{RecordKey: "d", FromCommissioner: "36L", ToCommissioner: "36L", FromStep: "C-5", ToStep: "C-5", ActivityCount: 3, PricePence: 990},
	}
	for _, r := range rows {
		r.RunId, r.RunTime, r.CamVersion = run, at, "2024/25"
	}
	for range 2 {
		if err := w.WriteCamReruns(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	var n, moved uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), sum(moved) FROM %s.cam_rerun FINAL", db)).Scan(&n, &moved); err != nil {
		t.Fatal(err)
	}
	if n != 4 || moved != 3 {
		t.Errorf("%d rows, %d moved; want 4 and 3", n, moved)
	}

	queries := docQueries(t, "## Commissioner assignment re-runs")
	if len(queries) < 3 {
		t.Fatalf("%d SQL examples, want the section's", len(queries))
	}
	for i, q := range queries {
		res, err := conn.Query(ctx, strings.ReplaceAll(q, "dmic.", db+"."))
		if err != nil {
			t.Errorf("%s\n=> %v", q, err)
			continue
		}
		var got []string
		for res.Next() {
			if i != 1 {
				continue
			}
			var from, fromStep, to, toStep string
			var records uint64
			var activity int64
			var price float64
			if err := res.Scan(&from, &fromStep, &to, &toStep, &records, &activity, &price); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %s -> %s %s: %d", from, fromStep, to, toStep, records))
		}
		if err := res.Err(); err != nil {
			t.Errorf("%s\n=> %v", q, err)
		}
		res.Close()
		if want := []string{"36L C-6 -> 13R C-6: 2", "02T C-6 -> 85J C-0b: 1"}; i == 1 && !slices.Equal(got, want) {
			t.Errorf("moves by step: %q, want %q", got, want)
		}
	}
}
