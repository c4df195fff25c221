package validate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// A revision without a CDS applicable date/time is ordered by when it was
// received (docs/topics.md, Versions and replays; docs/record-format.md, A
// record's life, exactly): the message's timestamp, or, for a message
// produced without one, the time validate judged it received (its clock).
// Not the Unix epoch: that would make the revision older than every other,
// so that it could never replace or delete anything.
func TestVersionWithoutApplicableTimeIsTheReceivedTime(t *testing.T) {
	withTime := apcRecord("")
	noApplicable := []byte(strings.Replace(string(withTime), `"cds_applicable_date_time":"2026-01-06T09:15:00Z",`, "", 1))
	if string(noApplicable) == string(withTime) {
		t.Fatal("could not remove the applicable date/time")
	}
	stamped := message(noApplicable, rawHeaders())
	unstamped := message(noApplicable, rawHeaders())
	unstamped.Time = time.Time{}
	for _, c := range []struct {
		name string
		m    pipeline.Message
		want time.Time
	}{
		{"stamped by the broker", stamped, received},
		{"produced without a timestamp", unstamped, clocktest.Now()},
	} {
		outs, err := newStage().Process(context.Background(), c.m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		recs := recordOutputs(outs)
		if len(recs) != 1 {
			t.Fatalf("%s: %d records out, want 1", c.name, len(recs))
		}
		var vr dmicv1.ValidatedRecord
		if err := proto.Unmarshal(recs[0].Value, &vr); err != nil {
			t.Fatal(err)
		}
		if got, want := vr.GetHeader().GetVersion(), envelope.Version(c.want, c.m.Offset); got != want {
			t.Errorf("%s: version %d, want %d (received %s)", c.name, got, want, c.want.Format(time.RFC3339))
		}
	}
}
