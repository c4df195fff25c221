package chstore

import (
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// TestIMDDecileColumn: the residence's IMD decile is stored in activity and
// shown by activity_current; anything that is not a decile (1..10) is stored
// as 0, unknown.
func TestIMDDecileColumn(t *testing.T) {
	ctx, conn, fresh := testServer(t)
	db, w := fresh(t)
	deciles := map[string]int32{"D1": 1, "D7": 7, "D10": 10, "D0": 0, "D11": 11, "DNEG": -3}
	var recs []*dmicv1.DeidentifiedRecord
	for key, d := range deciles {
		r := apcRecord(key, 1)
		r.Activity.Residence.ImdDecile = d
		recs = append(recs, r)
	}
	noResidence := apcRecord("NORES", 1)
	noResidence.Activity.Residence = nil
	recs = append(recs, noResidence)
	if err := w.WriteActivity(ctx, recs); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint8{"D1": 1, "D7": 7, "D10": 10, "D0": 0, "D11": 0, "DNEG": 0, "NORES": 0}
	for _, from := range []string{TableActivity + " FINAL", ViewActivityCurrent} {
		rows, err := conn.Query(ctx, "SELECT record_key, imd_decile FROM "+db+"."+from)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint8{}
		for rows.Next() {
			var key string
			var d uint8
			if err := rows.Scan(&key, &d); err != nil {
				t.Fatal(err)
			}
			got[key] = d
		}
		rows.Close()
		if len(got) != len(want) {
			t.Errorf("%s: %d rows, want %d", from, len(got), len(want))
		}
		for key, d := range want {
			if got[key] != d {
				t.Errorf("%s: %s imd_decile = %d, want %d", from, key, got[key], d)
			}
		}
	}
}
