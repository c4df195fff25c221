package service

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
)

// kafkaStats counts the requests the process's Kafka readers and writers
// made: produce requests (a writer's batches) and fetch requests, with the
// messages they carried. Requests per record, not records per second, is the
// figure that carries from one machine to another: each request costs system
// calls and a wake-up of the broker whether it carries one message or
// thousands (docs/performance.md).
//
// kafka-go's Reader.Stats resets its counters on every call, so this
// collector is the only caller and keeps the readers' running totals itself;
// the writers (kafkapipe.Writer) keep their own totals.
type kafkaStats struct {
	mu      sync.Mutex
	writers []*kafkapipe.Writer
	readers []*kafka.Reader
	totals  [2]float64 // the readers': fetch requests, fetched messages
	descs   [4]*prometheus.Desc
}

func newKafkaStats() *kafkaStats {
	return &kafkaStats{descs: [4]*prometheus.Desc{
		prometheus.NewDesc("dmic_kafka_produce_requests_total", "Produce requests (batches) sent by the process's Kafka writers.", nil, nil),
		prometheus.NewDesc("dmic_kafka_produced_messages_total", "Messages in those produce requests.", nil, nil),
		prometheus.NewDesc("dmic_kafka_fetch_requests_total", "Fetch requests made by the process's consumer-group readers.", nil, nil),
		prometheus.NewDesc("dmic_kafka_fetched_messages_total", "Messages those fetch requests returned.", nil, nil),
	}}
}

func (k *kafkaStats) addWriter(w *kafkapipe.Writer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writers = append(k.writers, w)
}

func (k *kafkaStats) addReader(r *kafka.Reader) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.readers = append(k.readers, r)
}

func (k *kafkaStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range k.descs {
		ch <- d
	}
}

func (k *kafkaStats) Collect(ch chan<- prometheus.Metric) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var values [4]float64 // produce requests, produced messages, fetch requests, fetched messages
	for _, w := range k.writers {
		s := w.Stats()
		values[0] += float64(s.Requests)
		values[1] += float64(s.Messages)
	}
	for _, r := range k.readers {
		s := r.Stats()
		k.totals[0] += float64(s.Fetches)
		k.totals[1] += float64(s.Messages)
	}
	values[2], values[3] = k.totals[0], k.totals[1]
	for i, d := range k.descs {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, values[i])
	}
}
