package kafkapipe_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
)

// cluster starts an embedded broker cluster of n brokers over TCP, with
// topics of six partitions, led by the brokers in turn.
func cluster(t *testing.T, n int, topicNames ...string) kafkaconn.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(n), kfake.SeedTopics(6, topicNames...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	kc, err := kafkaconn.Insecure(c.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// readAll reads every message of topic, partition by partition.
func readAll(t *testing.T, ctx context.Context, kc kafkaconn.Cluster, topic string, want int) map[int][]kafka.Message {
	t.Helper()
	out := map[int][]kafka.Message{}
	got := 0
	for p := range 6 {
		end, err := kc.Client(10*time.Second).ListOffsets(ctx, &kafka.ListOffsetsRequest{
			Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		last := end.Topics[topic][0].LastOffset
		if last == 0 {
			continue
		}
		r := kc.NewReader(kafka.ReaderConfig{Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond, MaxBytes: 16 << 20})
		for int64(len(out[p])) < last {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("%s/%d: %v", topic, p, err)
			}
			out[p] = append(out[p], m)
		}
		r.Close()
		got += len(out[p])
	}
	if got != want {
		t.Fatalf("%s holds %d messages, want %d", topic, got, want)
	}
	return out
}

// TestWriterOneRequestPerBroker: a write of many topics and partitions is
// one produce request per broker that leads any of them (kafka-go's Writer
// made one per topic-partition), and every message lands where the
// murmur2 balancer puts it, in the order written.
func TestWriterOneRequestPerBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	kc := cluster(t, 3, "a", "b")
	w := kafkapipe.NewWriter(kc, kafkapipe.WithCompression(0))
	defer w.Close()
	var msgs []kafka.Message
	for i := range 600 {
		topic := []string{"a", "b"}[i%2]
		// 60 keys, each written five times to each topic: order per key.
		msgs = append(msgs, kafka.Message{Topic: topic, Key: fmt.Appendf(nil, "k%d", i/2%60), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Requests != 3 || s.Messages != 600 {
		t.Errorf("stats %+v, want 3 requests (one per broker) of 600 messages", s)
	}
	var b kafkapipe.Balancer
	for _, topic := range []string{"a", "b"} {
		last := map[string]int{}
		for p, ms := range readAll(t, ctx, kc, topic, 300) {
			for _, m := range ms {
				if want := b.Balance(m, 0, 1, 2, 3, 4, 5); want != p {
					t.Errorf("%s: key %s on partition %d, want %d", topic, m.Key, p, want)
				}
				var i int
				fmt.Sscan(string(m.Value), &i)
				if prev, ok := last[string(m.Key)]; ok && prev > i {
					t.Errorf("%s: key %s: message %d after %d", topic, m.Key, i, prev)
				}
				last[string(m.Key)] = i
			}
		}
	}
}

// TestWriterKeepsOrderAcrossRequests: more than a record batch's worth
// for one partition goes in several requests, one after the other, each
// within limits.WriterBatchBytes, and the partition holds them in order.
func TestWriterKeepsOrderAcrossRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	kc := cluster(t, 1, "big")
	w := kafkapipe.NewWriter(kc, kafkapipe.WithCompression(0))
	defer w.Close()
	value := strings.Repeat("x", limits.WriterBatchBytes/3)
	var msgs []kafka.Message
	for i := range 7 {
		msgs = append(msgs, pinned("big", fmt.Appendf(nil, "%d%s", i, value), 2))
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	// Two messages fit under the limit, a third would not: four requests.
	if s := w.Stats(); s.Requests != 4 {
		t.Errorf("%d requests, want 4 of at most two messages", s.Requests)
	}
	got := readAll(t, ctx, kc, "big", 7)[2]
	for i, m := range got {
		if m.Value[0] != byte('0'+i) {
			t.Errorf("message %d of partition 2 is %c…", i, m.Value[0])
		}
	}
}

// TestWriterRefusals: what the broker refuses comes back as kafka-go's
// errors, per message, so that IsPermanent judges them as before: a
// message above the writer's limit before anything is sent, the broker's
// MESSAGE_TOO_LARGE, an unknown partition. The rest of the write is stored.
func TestWriterRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	kc := cluster(t, 1, "t")
	resp, err := kc.Client(10*time.Second).CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: "small", NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "1000"}}}}})
	if err != nil || resp.Errors["small"] != nil {
		t.Fatal(err, resp.Errors)
	}
	w := kafkapipe.NewWriter(kc, kafkapipe.WithCompression(0), kafkapipe.WithMaxAttempts(1))
	defer w.Close()

	huge := kafka.Message{Topic: "t", Value: make([]byte, limits.WriterBatchBytes)}
	if err := w.WriteMessages(ctx, kafka.Message{Topic: "t"}, huge); !errors.As(err, new(kafka.MessageTooLargeError)) || !kafkapipe.IsPermanent(err) {
		t.Errorf("a message above the writer's limit: %v, want a permanent MessageTooLargeError", err)
	}
	if s := w.Stats(); s.Requests != 0 {
		t.Errorf("%d requests for a refused write, want none", s.Requests)
	}

	err = w.WriteMessages(ctx,
		kafka.Message{Topic: "t", Value: []byte("ok")},
		kafka.Message{Topic: "small", Value: make([]byte, 2000)},
		pinned("t", []byte("lost"), 9))
	var we kafka.WriteErrors
	if !errors.As(err, &we) || len(we) != 3 {
		t.Fatalf("err = %v, want a kafka.WriteErrors of three", err)
	}
	if we[0] != nil || !errors.Is(we[1], kafka.MessageSizeTooLarge) || !errors.Is(we[2], kafka.UnknownTopicOrPartition) {
		t.Errorf("errors %v, want nil, MESSAGE_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION", we)
	}
	if !kafkapipe.IsPermanent(err) {
		t.Errorf("%v: not permanent", err)
	}
	readAll(t, ctx, kc, "t", 1)
}

// TestWriterClosed: a closed writer refuses a write, as kafka-go's does.
func TestWriterClosed(t *testing.T) {
	kc := cluster(t, 1, "t")
	w := kafkapipe.NewWriter(kc)
	w.Close()
	if err := w.WriteMessages(t.Context(), kafka.Message{Topic: "t"}); err == nil {
		t.Error("a closed writer wrote")
	}
}

// pinned is a message for partition p, pinned as a stage pins one.
func pinned(topic string, value []byte, p int) kafka.Message {
	return kafkapipe.ToKafka(pipeline.Output{Topic: topic, Value: value}.ToPartition(p))
}
