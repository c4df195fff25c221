package reconcile

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/reconcile/match"
)

// A record's life through reconcile, by the CDS net change protocol (domain
// brief §3, Submission protocol [C]): versions apply in the order of their
// applicable date/time (the envelope's version), whatever order they arrive
// in; a delete is a version; a version older than the one held changes
// nothing and goes nowhere (no result, no snapshot, no national return). The
// choices where the text is silent are docs/record-format.md's (Replacing and
// deleting records) and docs/reconciliation.md's.
func TestRecordLifeThroughReconcile(t *testing.T) {
	type step struct {
		rec  *dmicv1.DeidentifiedRecord
		want dmicv1.ReconciliationStatus // of the result; -1: no output at all
		// returned: the national return carries the record (a local revision
		// that moved or replayed the state), with this update type.
		returned bool
	}
	const none = dmicv1.ReconciliationStatus(-1)
	unspecified := dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_UNSPECIFIED
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"a delete arriving before the original it post-dates", []step{
			{rec(local, 20, "", true), unspecified, true},
			{rec(local, 10, "HN12A", false), none, false},
			{rec(national, 10, "HN12A", false), nationalOnly, false},
		}},
		{"a replacement after a delete is the record again", []step{
			{rec(local, 10, "HN12A", false), localOnly, true},
			{rec(national, 10, "HN12A", false), matched, false},
			{rec(local, 20, "", true), nationalOnly, true},
			{rec(local, 30, "HN12A", false), matched, true},
		}},
		{"a delete older than the version held deletes nothing", []step{
			{rec(local, 30, "HN12B", false), localOnly, true},
			{rec(local, 20, "", true), none, false},
			{rec(national, 10, "HN12B", false), matched, false},
		}},
		{"a late older version does not undo a newer one", []step{
			{rec(national, 10, "HN12B", false), nationalOnly, false},
			{rec(local, 20, "HN12B", false), matched, true},
			{rec(local, 10, "HN12A", false), none, false},
		}},
		{"the national copy's delete leaves the local one alone", []step{
			{rec(local, 10, "HN12A", false), localOnly, true},
			{rec(national, 10, "HN12A", false), matched, false},
			{rec(national, 20, "", true), localOnly, false},
		}},
		{"a redelivered version is answered again and changes nothing", []step{
			{rec(local, 10, "HN12A", false), localOnly, true},
			{rec(local, 10, "HN12A", false), localOnly, true},
			{rec(national, 10, "HN12B", false), mismatched, false},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			i := e.open(t.TempDir())
			var seq uint64
			for n, s := range c.steps {
				outs := e.batch(i, msg(t, s.rec))
				byTopic := outputsByTopic(outs)
				if s.want == none {
					if len(outs) != 0 {
						t.Fatalf("step %d: outputs %v, want none", n+1, byTopic)
					}
					continue
				}
				res := result(t, outs)
				if byTopic[topics.ReconcileState] == 1 {
					seq++
				}
				wantResult(t, fmt.Sprintf("step %d", n+1), res, s.want, seq)
				if got := byTopic[topics.NationalReturn] == 1; got != s.returned {
					t.Errorf("step %d: national return %v, want %v", n+1, got, s.returned)
				}
				if s.returned {
					ret := returnedRecord(t, outs)
					if ret.GetActivity().GetUpdateType() != s.rec.GetActivity().GetUpdateType() {
						t.Errorf("step %d: national return's update type %v, want %v", n+1, ret.GetActivity().GetUpdateType(), s.rec.GetActivity().GetUpdateType())
					}
				}
			}
		})
	}
}

// The compared fields include the point of delivery of every data set:
// a CDS activity's own (POINT OF DELIVERY CODE) as well as a local flow
// line's (domain brief §4: "Point of delivery differs" is a discrepancy
// commissioners look for).
func TestPointOfDeliveryDifferenceOfACDSActivity(t *testing.T) {
	l, n := rec(local, 10, "HN12A", false), rec(national, 10, "HN12A", false)
	l.Activity.PointOfDeliveryCode, n.Activity.PointOfDeliveryCode = "EL", "DC"
	e := &match.Entry{}
	e.Apply(revision(t, l))
	e.Apply(revision(t, n))
	res := e.Result("apc|RXX|B1")
	if res.Status != mismatched || !slices.Equal(res.DifferingFields, []string{"point_of_delivery_code"}) {
		t.Errorf("result %v %v, want mismatched on point_of_delivery_code", res.Status, res.DifferingFields)
	}
	fixed := rec(national, 20, "HN12A", false)
	fixed.Activity.PointOfDeliveryCode = "EL"
	e.Apply(revision(t, fixed))
	if res := e.Result("apc|RXX|B1"); res.Status != matched {
		t.Errorf("after the national copy's revision: %v %v, want matched", res.Status, res.DifferingFields)
	}
}

// returnedRecord is the national return among outs, decoded.
func returnedRecord(t *testing.T, outs []pipeline.Output) *dmicv1.DeidentifiedRecord {
	t.Helper()
	for _, o := range outs {
		if o.Topic == topics.NationalReturn {
			r := &dmicv1.DeidentifiedRecord{}
			if err := proto.Unmarshal(o.Value, r); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatal("no national return")
	return nil
}
