package kafkatopics_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// partitionCounts lists every topic of the broker and its partition count.
func partitionCounts(t *testing.T, ctx context.Context, c kafkaconn.Cluster) map[string]int {
	t.Helper()
	client := c.Client(10 * time.Second)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	got := map[string]int{}
	for _, tp := range meta.Topics {
		if tp.Error != nil {
			t.Fatalf("metadata of %s: %v", tp.Name, tp.Error)
		}
		got[tp.Name] = len(tp.Partitions)
	}
	return got
}

func TestEnsure(t *testing.T) {
	// The broker would auto-create with 2: a topic with 3 was made by Ensure.
	b := brokertest.New(t, broker.WithDefaultPartitions(2), broker.WithoutTopics())
	ctx := testContext(t)
	admin := brokertest.Admin(t, b)
	if err := kafkatopics.Ensure(ctx, admin, 3); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	got := partitionCounts(t, ctx, admin)
	for _, s := range topics.All() {
		want := 3
		if s.Partitions > 0 {
			want = s.Partitions
		}
		if n, ok := got[s.Name]; !ok || n != want {
			t.Errorf("topic %s: present %v with %d partitions, want %d", s.Name, ok, n, want)
		}
	}
	if len(topics.All()) != 17 {
		t.Errorf("All lists %d topics, want 17", len(topics.All()))
	}
	for _, one := range []string{topics.Specifications, topics.SubmissionAttempts} {
		if got[one] != 1 {
			t.Errorf("%s has %d partitions, want 1: its readers need one total order", one, got[one])
		}
	}

	// Again, even with another count: existing topics are left alone.
	if err := kafkatopics.Ensure(ctx, admin, 5); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	again := partitionCounts(t, ctx, admin)
	for _, s := range topics.All() {
		if again[s.Name] != got[s.Name] {
			t.Errorf("after a second Ensure topic %s has %d partitions, want %d", s.Name, again[s.Name], got[s.Name])
		}
	}
}

func TestEnsureConfig(t *testing.T) {
	b := brokertest.New(t, broker.WithoutTopics())
	ctx := testContext(t)
	admin := brokertest.Admin(t, b)
	if err := kafkatopics.Ensure(ctx, admin, 1); err != nil {
		t.Fatal(err)
	}
	client := admin.Client(10 * time.Second)
	for _, s := range topics.All() {
		resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: s.Name, ConfigNames: []string{"retention.ms", "cleanup.policy", "max.message.bytes"},
		}}})
		if err != nil {
			t.Fatalf("describe %s: %v", s.Name, err)
		}
		cfg := map[string]string{}
		for _, r := range resp.Resources {
			if r.Error != nil {
				t.Fatalf("describe %s: %v", s.Name, r.Error)
			}
			for _, e := range r.ConfigEntries {
				cfg[e.ConfigName] = e.ConfigValue
			}
		}
		if want := strconv.FormatInt(s.RetentionMs, 10); cfg["retention.ms"] != want {
			t.Errorf("%s retention.ms = %q, want %q", s.Name, cfg["retention.ms"], want)
		}
		wantPolicy := "delete"
		if s.Compact {
			wantPolicy = "compact"
		}
		if cfg["cleanup.policy"] != wantPolicy {
			t.Errorf("%s cleanup.policy = %q, want %q", s.Name, cfg["cleanup.policy"], wantPolicy)
		}
		// The broker's limit on a batch, above every writer's (package limits).
		if want := strconv.Itoa(limits.TopicMaxMessageBytes); cfg["max.message.bytes"] != want {
			t.Errorf("%s max.message.bytes = %q, want %q", s.Name, cfg["max.message.bytes"], want)
		}
	}
}

func produce(t *testing.T, ctx context.Context, c kafkaconn.Cluster, topic string, n int) {
	t.Helper()
	w := &kafka.Writer{Addr: c.Addr(), Transport: c.Transport(), Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: topic, Key: []byte("k" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// lag is GroupLag as the operators' principal, which may see every dmic
// group's offsets.
func lag(t *testing.T, ctx context.Context, b *broker.Broker, group string, names ...string) int64 {
	t.Helper()
	n, err := kafkatopics.GroupLag(ctx, brokertest.As(t, b, topics.Operator), group, names...)
	if err != nil {
		t.Fatalf("GroupLag: %v", err)
	}
	return n
}

func TestGroupLag(t *testing.T) {
	b := brokertest.New(t, broker.WithDefaultPartitions(3))
	ctx := testContext(t)
	admin := brokertest.Admin(t, b)
	const group = "dmic-lag-test"
	produce(t, ctx, admin, topics.Raw, 20)
	produce(t, ctx, admin, topics.NationalReturn, 5)

	// The group joins and reads, but has committed nothing yet.
	r := admin.NewReader(kafka.ReaderConfig{GroupID: group, GroupTopics: []string{topics.Raw},
		StartOffset: kafka.FirstOffset, CommitInterval: 0, MaxWait: 100 * time.Millisecond,
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second})
	defer r.Close()
	const committed = 8
	msgs := make([]kafka.Message, 0, committed)
	for len(msgs) < committed {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		msgs = append(msgs, m)
	}
	if got := lag(t, ctx, b, group, topics.Raw); got != 20 {
		t.Errorf("lag before any commit = %d, want 20", got)
	}
	if got := lag(t, ctx, b, group, topics.Raw, topics.NationalReturn); got != 25 {
		t.Errorf("lag over two topics before any commit = %d, want 25", got)
	}

	if err := r.CommitMessages(ctx, msgs...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got := lag(t, ctx, b, group, topics.Raw); got != 20-committed {
		t.Errorf("lag after committing %d = %d, want %d", committed, got, 20-committed)
	}
	if got := lag(t, ctx, b, group, topics.Raw, topics.NationalReturn); got != 25-committed {
		t.Errorf("lag over two topics after committing %d = %d, want %d", committed, got, 25-committed)
	}
}

func TestGroupLagEmptyTopics(t *testing.T) {
	b := brokertest.New(t, broker.WithDefaultPartitions(3))
	ctx := testContext(t)
	joinGroup(t, ctx, brokertest.Admin(t, b), "dmic-empty", topics.Raw)
	if got := lag(t, ctx, b, "dmic-empty", topics.Raw); got != 0 {
		t.Errorf("lag of an empty topic = %d, want 0", got)
	}
}

// joinGroup makes group exist on the broker without committing anything.
func joinGroup(t *testing.T, ctx context.Context, c kafkaconn.Cluster, group, topic string) {
	t.Helper()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{ID: group, Brokers: c.Brokers(), Dialer: c.Dialer(), Topics: []string{topic},
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	if _, err := cg.Next(ctx); err != nil {
		t.Fatalf("join group %s: %v", group, err)
	}
}

// A group the broker has never seen has committed nothing: all of its
// topics' messages are its lag. Real Kafka answers OffsetFetch for an unknown
// group with offset -1 and no error; the embedded broker (kfake) answers
// GROUP_ID_NOT_FOUND; both mean nothing is committed.
func TestGroupLagUnknownGroup(t *testing.T) {
	b := brokertest.New(t, broker.WithDefaultPartitions(3))
	ctx := testContext(t)
	produce(t, ctx, brokertest.Admin(t, b), topics.Raw, 7)
	if n := lag(t, ctx, b, "dmic-never-seen", topics.Raw); n != 7 {
		t.Errorf("lag of an unknown group = %d, want 7", n)
	}
}
