package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
)

// TestKafkaStatsCountRequests: the counters the benchmark reads (requests per
// record) count the produce and fetch requests a real broker answered, and
// keep their totals across scrapes although kafka-go resets its own.
func TestKafkaStatsCountRequests(t *testing.T) {
	b := brokertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const topic = "stats-test"
	// As the broker's administrator: the ACLs are not what this test is about.
	kc := brokertest.Admin(t, b)
	// Created through kc's own pool, whose metadata cache then knows it.
	resp, err := kc.Client(10*time.Second).CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatal(err)
	}

	ks := newKafkaStats()
	reg := prometheus.NewRegistry()
	reg.MustRegister(ks)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	ks.addWriter(w)
	// Two calls of five messages: two produce requests (one partition).
	for call := range 2 {
		var msgs []kafka.Message
		for i := range 5 {
			msgs = append(msgs, kafka.Message{Topic: topic, Value: fmt.Appendf(nil, "%d-%d", call, i)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	got := scrape(t, reg)
	if got["dmic_kafka_produce_requests_total"] != 2 || got["dmic_kafka_produced_messages_total"] != 10 {
		t.Errorf("after two writes of five: %v", got)
	}

	r := kafkapipe.NewReader(kc, "stats-test-group", topic)
	defer r.Close()
	ks.addReader(r.R)
	for range 10 {
		if _, err := r.R.FetchMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got = scrape(t, reg)
	if got["dmic_kafka_fetched_messages_total"] != 10 || got["dmic_kafka_fetch_requests_total"] < 1 {
		t.Errorf("after reading ten: %v", got)
	}
	// A second scrape without new traffic keeps the totals.
	if again := scrape(t, reg); again["dmic_kafka_produced_messages_total"] != 10 || again["dmic_kafka_fetched_messages_total"] != 10 {
		t.Errorf("second scrape lost the totals: %v", again)
	}
}

func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	return out
}
