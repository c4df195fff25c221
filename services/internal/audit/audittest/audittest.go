// Package audittest reads the audit trail back for tests that check what a
// door recorded.
package audittest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Trail reads dmic.audit from its start until want entries are there, and
// fails the test if they do not come within 20 s (entries are written in
// the background of the call that caused them).
func Trail(t testing.TB, c kafkaconn.Cluster, want int) []audit.Entry {
	t.Helper()
	r := c.NewReader(kafka.ReaderConfig{Topic: topics.Audit, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []audit.Entry
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("audit trail: %d entries of %d: %v (%+v)", len(out), want, err, out)
		}
		var e audit.Entry
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatalf("audit entry %s: %v", m.Value, err)
		}
		out = append(out, e)
	}
	return out
}
