package kafkapipe_test

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
)

// TestConversionSharesTheBytes: a message crosses the adapter once, with its
// key, value and header values as the same slices (the bench counts copies),
// and every field the stages read arrives.
func TestConversionSharesTheBytes(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	km := kafka.Message{Topic: "dmic.raw", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("value"), Time: at,
		Headers: []kafka.Header{{Key: "dmic-dataset", Value: []byte("apc")}, {Key: "dmic-line", Value: []byte("7")}}}
	m := kafkapipe.FromKafka(km)
	if m.Topic != km.Topic || m.Partition != 2 || m.Offset != 41 || !m.Time.Equal(at) || string(m.Key) != "k" || string(m.Value) != "value" {
		t.Fatalf("FromKafka = %+v", m)
	}
	if &m.Value[0] != &km.Value[0] || &m.Key[0] != &km.Key[0] {
		t.Error("key or value copied; want the same slices")
	}
	if len(m.Headers) != 2 || m.Headers[1].Key != "dmic-line" || &m.Headers[1].Value[0] != &km.Headers[1].Value[0] {
		t.Errorf("headers = %+v, want both, values shared", m.Headers)
	}
	if kafkapipe.FromKafka(kafka.Message{Value: []byte("x")}).Headers != nil {
		t.Error("no headers became a non-nil slice: an allocation for nothing")
	}

	out := kafkapipe.ToKafka(pipeline.Output{Topic: "dmic.validated", Key: m.Key, Value: m.Value, Headers: m.Headers})
	if out.Topic != "dmic.validated" || &out.Value[0] != &km.Value[0] || len(out.Headers) != 2 || out.Headers[0].Key != "dmic-dataset" {
		t.Errorf("ToKafka = %+v", out)
	}
}

// TestSinkRefusesRows: a row is for a row sink; given to Kafka it is a wiring
// bug that retrying cannot cure, refused before anything is produced.
func TestSinkRefusesRows(t *testing.T) {
	c, err := kafkaconn.Insecure([]string{"127.0.0.1:1"}) // never dialled
	if err != nil {
		t.Fatal(err)
	}
	w := kafkapipe.NewWriter(c)
	defer w.Close()
	err = kafkapipe.Sink{W: w}.Write(t.Context(), []pipeline.Output{pipeline.RowOutput(1)})
	if !pipeline.IsPermanent(err) {
		t.Errorf("Write of a row = %v, want a permanent error", err)
	}
}
