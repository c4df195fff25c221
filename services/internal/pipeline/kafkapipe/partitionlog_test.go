package kafkapipe_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// An output that names its partition goes there whatever its key; any
// other goes where murmur2 sends its key. The partition log reads each
// partition back by offset.
func TestPinnedOutputsAndThePartitionLog(t *testing.T) {
	b := brokertest.New(t, broker.WithDefaultPartitions(3))
	kc := brokertest.Admin(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	const topic = topics.ReconcileState
	var outs []pipeline.Output
	for i := range 12 {
		o := pipeline.Output{Topic: topic, Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "%d", i)}
		if i%2 == 0 {
			o = o.ToPartition(i % 3)
		}
		outs = append(outs, o)
	}
	if err := (kafkapipe.Sink{W: w}).Write(ctx, outs); err != nil {
		t.Fatal(err)
	}

	log := kafkapipe.PartitionLog(kc)
	info, err := log.Describe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if info.Partitions != 3 || info.Cluster == "" {
		t.Errorf("Describe = %+v, want 3 partitions and a cluster id", info)
	}
	other, err := kafkapipe.PartitionLog(brokertest.Admin(t, brokertest.New(t))).Describe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if other.Cluster == info.Cluster {
		t.Errorf("two embedded brokers share the cluster id %q", info.Cluster)
	}
	parts := []int{0, 1, 2}
	starts, err := log.StartOffsets(ctx, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := log.EndOffsets(ctx, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	var murmur2 kafka.Murmur2Balancer
	total := 0
	for _, p := range parts {
		if starts[p] != 0 {
			t.Errorf("partition %d starts at %d, want 0", p, starts[p])
		}
		var got []int64
		n, err := log.Read(ctx, topic, p, starts[p], ends[p], func(m pipeline.Message) error {
			var i int
			fmt.Sscan(string(m.Value), &i)
			want := murmur2.Balance(kafka.Message{Key: m.Key}, parts...)
			if i%2 == 0 {
				want = i % 3
			}
			if want != p || m.Partition != p || m.Topic != topic {
				t.Errorf("message %d in partition %d (as read: %d of %s), want %d", i, p, m.Partition, m.Topic, want)
			}
			got = append(got, m.Offset)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if int64(n) != ends[p] || len(got) != n {
			t.Errorf("partition %d: read %d messages (offsets %v), want %d", p, n, got, ends[p])
		}
		total += n
		// A range in the middle: exactly its messages.
		if ends[p] >= 3 {
			var mid []int64
			if _, err := log.Read(ctx, topic, p, 1, 2, func(m pipeline.Message) error { mid = append(mid, m.Offset); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(mid) != 1 || mid[0] != 1 {
				t.Errorf("partition %d [1, 2): offsets %v", p, mid)
			}
		}
	}
	if total != len(outs) {
		t.Errorf("read %d messages in all, want %d", total, len(outs))
	}
}
