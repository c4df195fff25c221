package chstore

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// benchActivity is n assigned records as load reads them from
// dmic.assigned, the four data sets in turn.
func benchActivity(b *testing.B, n int) [][]byte {
	b.Helper()
	msgs := make([][]byte, n)
	for i := range msgs {
		var rec *dmicv1.DeidentifiedRecord
		switch i % 4 {
		case 0:
			rec = apcRecord(fmt.Sprintf("RR8|apc|%08d", i), uint64(i))
		case 1:
			rec = outpatientRecord(fmt.Sprintf("RR8|outpatient|%08d", i), uint64(i))
		case 2:
			rec = emergencyRecord(fmt.Sprintf("RR8|emergency_care|%08d", i), uint64(i))
		default:
			rec = localFlowRecord(fmt.Sprintf("RR8|local_flow|%08d", i), uint64(i))
		}
		v, err := proto.Marshal(rec)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = v
	}
	return msgs
}

// BenchmarkActivityRows is load's work per activity row short of the
// driver: decode the message and keep its row (the stage), then build the
// INSERT's columns from a block of rows (the sink). live-B/row and
// live-objects/row are what a batch holds per row between the two, which
// bounds the batch's size under the memory limit and is what the garbage
// collector marks.
func BenchmarkActivityRows(b *testing.B) {
	msgs := benchActivity(b, blockRows)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	keep := func() []PackedActivity {
		rows := make([]PackedActivity, len(msgs))
		for i, m := range msgs {
			rec := &dmicv1.DeidentifiedRecord{}
			if err := proto.Unmarshal(m, rec); err != nil {
				b.Fatal(err)
			}
			rows[i] = PackActivity(rec, now)
		}
		return rows
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	held := keep()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(held)

	bl := newBlock(activityColumns, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rows := keep()
		if err := bl.fill(0, len(rows), func(i int) []byte { return rows[i].b }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/row")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(held)), "live-B/row")
	b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/float64(len(held)), "live-objects/row")
}
