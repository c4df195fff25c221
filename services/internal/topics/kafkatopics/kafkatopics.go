// Package kafkatopics makes a Kafka cluster ready for dmic and looks at it:
// it creates dmic's topics (package topics names them), the SCRAM users and
// the ACLs of the table in package topics (Setup), checks that a service's
// topics exist (Require), and measures a consumer group's lag.
package kafkatopics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Ensure creates any missing dmic topic with the given partition count, as
// a principal allowed to create topics (the administrator, or anyone on a
// broker without ACLs). Existing topics are left alone.
func Ensure(ctx context.Context, c kafkaconn.Cluster, partitions int) error {
	return create(ctx, c, partitions, topics.All())
}

// create creates the topics of specs that do not exist. It goes through
// c's connection pool (not a connection of its own) because the pool serves
// metadata from a cache that only a creation it makes itself refreshes: a
// writer of c would otherwise not see the new topics for seconds.
func create(ctx context.Context, c kafkaconn.Cluster, partitions int, specs []topics.Spec) error {
	var cfgs []kafka.TopicConfig
	for _, s := range specs {
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
	resp, err := c.Client(30*time.Second).CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	var errs []error
	for _, cfg := range cfgs {
		if err := resp.Errors[cfg.Topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("ensure topics: create %s: %w", cfg.Topic, err))
		}
	}
	return errors.Join(errs...)
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
func GroupLag(ctx context.Context, c kafkaconn.Cluster, group string, topicNames ...string) (int64, error) {
	parts, err := GroupLagByPartition(ctx, c, group, topicNames...)
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
func GroupLagByPartition(ctx context.Context, c kafkaconn.Cluster, group string, topicNames ...string) ([]PartitionLag, error) {
	client := c.Client(5 * time.Second)
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

// Require checks that the topics names exist, creating those that do not
// when the principal may (a development broker without ACLs); a service
// calls it at start for the topics it uses. On a cluster with ACLs only the
// administrator creates topics (Setup), and a missing topic is an error
// that says so.
func Require(ctx context.Context, c kafkaconn.Cluster, partitions int, names ...string) error {
	meta, err := c.Client(10*time.Second).Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return fmt.Errorf("metadata of dmic's topics: %w", err)
	}
	var missing []topics.Spec
	var errs []error
	for _, t := range meta.Topics {
		switch {
		case t.Error == nil:
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
			s, ok := spec(t.Name)
			if !ok {
				errs = append(errs, fmt.Errorf("topic %s does not exist and is not one of dmic's", t.Name))
				continue
			}
			missing = append(missing, s)
		case errors.Is(t.Error, kafka.TopicAuthorizationFailed):
			errs = append(errs, fmt.Errorf("topic %s: %s may not use it: the ACLs lack its grant (dmicctl kafka-setup applies them; docs/security.md)", t.Name, who(c)))
		default:
			errs = append(errs, fmt.Errorf("topic %s: %w", t.Name, t.Error))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	if err := create(ctx, c, partitions, missing); err != nil {
		var names []string
		for _, s := range missing {
			names = append(names, s.Name)
		}
		return fmt.Errorf("topics %s do not exist and %s could not create them (on a cluster with ACLs the administrator does: dmicctl kafka-setup): %w",
			strings.Join(names, ", "), who(c), err)
	}
	return nil
}

func spec(name string) (topics.Spec, bool) {
	i := slices.IndexFunc(topics.All(), func(s topics.Spec) bool { return s.Name == name })
	if i < 0 {
		return topics.Spec{}, false
	}
	return topics.All()[i], true
}

// who names the principal for an error.
func who(c kafkaconn.Cluster) string {
	if c.User() == "" {
		return "an anonymous client"
	}
	return "User:" + c.User()
}
