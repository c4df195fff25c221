// Package kafkatopics creates dmic's topics (package topics names them) on a
// Kafka cluster, and measures a consumer group's lag on them.
package kafkatopics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

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
	for _, s := range topics.All() {
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
