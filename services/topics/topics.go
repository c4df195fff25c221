// Package topics names dmic's Kafka topics and creates them.
//
// Every topic has the same partition count: reconcile joins a local record and
// its national counterpart by key, which only works if a key maps to the same
// partition number on every topic it passes through.
package topics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/limits"
)

// Topic names. See docs/topics.md.
const (
	Raw            = "dmic.raw"
	Validated      = "dmic.validated"
	Rejected       = "dmic.rejected"
	Deidentified   = "dmic.deidentified"
	Assigned       = "dmic.assigned"
	Reconciled     = "dmic.reconciled"
	NationalReturn = "dmic.national-return"
	ReconcileState = "dmic.reconcile-state"
	// ValidationOutcomes carries the verdict on every submitted record (no
	// identifier values): the source of submission reports and DQ summaries.
	ValidationOutcomes = "dmic.validation-outcomes"
	// Submissions carries the receipts of each attempt to store a submission
	// (its start, and how it ended), from ingest.
	Submissions = "dmic.submissions"
	// SubmissionAttempts is ingest's own log of every attempt to store a
	// submission: every ingest instance reads all of it at start and
	// follows it, to recognise a resend and refuse a reused idempotency key.
	SubmissionAttempts = "dmic.submission-attempts"
	// Specifications carries the data specifications loaded at run time; every
	// validate instance reads all of it at start and follows it.
	Specifications = "dmic.specifications"
	// KeyRotations carries which pseudonymisation key version is active per
	// domain (never a secret); every deidentify instance follows it.
	KeyRotations = "dmic.key-rotations"
	// OperatorAudit carries every operator's skip or replay of a message,
	// with who asked and why; every instance of a stage applies its skips.
	OperatorAudit = "dmic.operator-audit"
)

// DefaultPartitions is the partition count of every dmic topic.
const DefaultPartitions = 6

// Spec describes one topic.
type Spec struct {
	Name string
	// RetentionMs is -1 for unlimited.
	RetentionMs int64
	Compact     bool
	// Identifiable topics hold patient-identifiable data: short retention, and
	// only ingest, validate and deidentify may read or write them.
	Identifiable bool
	// Partitions overrides the partition count (0: the count every record
	// topic shares). Topics whose messages are not keyed by record identity
	// and that are read whole by every reader have one partition, so that
	// their order is total.
	Partitions int
}

const (
	week = 7 * 24 * time.Hour
)

// All lists every topic dmic uses.
func All() []Spec {
	return []Spec{
		{Name: Raw, RetentionMs: week.Milliseconds(), Identifiable: true},
		{Name: Validated, RetentionMs: week.Milliseconds(), Identifiable: true},
		{Name: Rejected, RetentionMs: (4 * week).Milliseconds(), Identifiable: true},
		{Name: Deidentified, RetentionMs: (4 * week).Milliseconds()},
		{Name: Assigned, RetentionMs: (4 * week).Milliseconds()},
		{Name: Reconciled, RetentionMs: (4 * week).Milliseconds()},
		{Name: NationalReturn, RetentionMs: (4 * week).Milliseconds()},
		{Name: ReconcileState, RetentionMs: -1, Compact: true},
		{Name: ValidationOutcomes, RetentionMs: (4 * week).Milliseconds()},
		{Name: Submissions, RetentionMs: (4 * week).Milliseconds()},
		{Name: Specifications, RetentionMs: -1, Compact: true, Partitions: 1},
		{Name: KeyRotations, RetentionMs: -1, Compact: true, Partitions: 1},
		{Name: OperatorAudit, RetentionMs: -1, Partitions: 1},
		// Kept whole (not compacted): the first start of a key must stay
		// before any later one, in one partition.
		{Name: SubmissionAttempts, RetentionMs: -1, Partitions: 1},
	}
}

// Ensure creates any missing dmic topic with the given partition count. It is
// safe to call from every service at start: existing topics are left alone.
func Ensure(ctx context.Context, brokers []string, partitions int) error {
	if len(brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	conn, err := (&kafka.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("ensure topics: dial %s: %w", brokers[0], err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("ensure topics: find controller: %w", err)
	}
	cc, err := (&kafka.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("ensure topics: dial controller: %w", err)
	}
	defer cc.Close()
	var cfgs []kafka.TopicConfig
	for _, s := range All() {
		entries := []kafka.ConfigEntry{
			{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(s.RetentionMs, 10)},
			// Explicit, so that a cluster whose default is lower still takes
			// every batch a dmic writer sends (package limits).
			{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(limits.TopicMaxMessageBytes)},
		}
		if s.Compact {
			entries = append(entries, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
		}
		n := partitions
		if s.Partitions > 0 {
			n = s.Partitions
		}
		cfgs = append(cfgs, kafka.TopicConfig{Topic: s.Name, NumPartitions: n, ReplicationFactor: -1, ConfigEntries: entries})
	}
	// CreateTopics reports "already exists" per topic; kafka-go surfaces it as
	// an error for the whole call, so create them one at a time and ignore that.
	for _, c := range cfgs {
		if err := cc.CreateTopics(c); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("ensure topics: create %s: %w", c.Topic, err)
		}
	}
	return nil
}

// PartitionLag is a consumer group's lag on one partition.
type PartitionLag struct {
	Topic     string
	Partition int
	Lag       int64
}

// GroupLag is how many messages of topic the consumer group has not yet
// committed, summed over partitions. A partition the group never committed
// counts from its first offset.
func GroupLag(ctx context.Context, brokers []string, group string, topicNames ...string) (int64, error) {
	parts, err := GroupLagByPartition(ctx, brokers, group, topicNames...)
	if err != nil {
		return 0, err
	}
	var lag int64
	for _, p := range parts {
		lag += p.Lag
	}
	return lag, nil
}

// GroupLagByPartition is GroupLag for each partition of the topics.
func GroupLagByPartition(ctx context.Context, brokers []string, group string, topicNames ...string) ([]PartitionLag, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topicNames})
	if err != nil {
		return nil, fmt.Errorf("lag: metadata: %w", err)
	}
	parts := map[string][]int{}
	var reqs = map[string][]kafka.OffsetRequest{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("lag: topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
			reqs[t.Name] = append(reqs[t.Name], kafka.LastOffsetOf(p.ID), kafka.FirstOffsetOf(p.ID))
		}
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: reqs})
	if err != nil {
		return nil, fmt.Errorf("lag: list offsets: %w", err)
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return nil, fmt.Errorf("lag: offset fetch for group %s: %w", group, err)
	}
	// A group that never committed is "not found" on some brokers (kfake) and
	// has no offsets on others (Kafka): either way, all of it is lag.
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return nil, fmt.Errorf("lag: offset fetch for group %s: %w", group, committed.Error)
	}
	done := map[string]map[int]int64{}
	for t, ps := range committed.Topics {
		done[t] = map[int]int64{}
		for _, p := range ps {
			done[t][p.Partition] = p.CommittedOffset
		}
	}
	var out []PartitionLag
	for t, ps := range offs.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("lag: offsets of %s/%d: %w", t, p.Partition, p.Error)
			}
			c, ok := done[t][p.Partition]
			if !ok || c < 0 {
				c = p.FirstOffset
			}
			out = append(out, PartitionLag{Topic: t, Partition: p.Partition, Lag: max(p.LastOffset-c, 0)})
		}
	}
	return out, nil
}
