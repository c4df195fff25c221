package validate_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// A producer writing straight to dmic.raw used to choose the specification
// version that judged its record, by setting dmic-received-time. Validate now
// judges by the message's Kafka timestamp: a record produced with a header
// years old is judged by the version in effect when it was appended, while
// ingest's records keep ingest's receipt time (ingest writes it as both).
// Everything here is real: ingest over HTTP, the broker over TCP, a consumer
// reading what the broker stored. (kfake keeps the producer's CreateTime,
// which kafka-go stamps at the write: the append time, to within its latency.)
func TestReceivedTimeIsTheMessageTimestampNotAForgedHeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := topicstest.Broker(t, 3)
	clk := clocktest.Manual(t)
	today := clk.Now()
	in := startInstance(t, ctx, brokers, clk.Clock())

	// An old version, in effect in 2020 (loaded by the audited override):
	// the one a forged header of 2020 would pick. Gender code 7 is an error
	// under it, a warning under the built-in version.
	const old = "apc/2019.1"
	if _, err := in.specs.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{
		Document: apcVersion(t, "2019.1", "2019-04-01"), AllowBackdated: true, Reason: "test: a version in effect in 2020",
	}); err != nil {
		t.Fatal(err)
	}
	record := apcRecord(`"person_gender_code":"7"`)

	// Straight to the raw topic, claiming receipt in 2020: an operator's
	// kcat may write there.
	ow := kafkapipe.NewWriter(brokertest.As(t, brokers, topics.Operator))
	t.Cleanup(func() { ow.Close() })
	forged := time.Date(2020, 6, 1, 12, 0, 0, 0, time.UTC)
	hs := envelope.Raw{Dataset: dmicv1.Dataset_DATASET_APC, Submitter: "RJ7", Received: forged}.Headers()
	if err := ow.WriteMessages(ctx, kafka.Message{Topic: topics.Raw, Key: []byte("RJ7|apc|forged"), Value: record, Headers: kafkapipe.ToKafkaHeaders(hs)}); err != nil {
		t.Fatal(err)
	}
	// Through ingest, received today by ingest's clock.
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	ic := brokertest.As(t, brokers, ingest.Access().Principal)
	w := kafkapipe.NewWriter(ic)
	t.Cleanup(func() { w.Close() })
	svc := ingest.New(w, ingest.NewAttempts(kafkalog.New(ic, topics.SubmissionAttempts, w), lg), lg, prometheus.NewRegistry(), ingest.WithClock(clk.Clock()))
	runCtx, stopIngest := context.WithCancel(ctx)
	ingestDone := make(chan struct{})
	go func() { defer close(ingestDone); _ = svc.Run(runCtx) }()
	t.Cleanup(func() { stopIngest(); <-ingestDone })
	// As ingest serves it: TLS, the authorisation layer, RJ7's certificate.
	pki := devpkitest.New(t, today)
	g, _ := pki.Guard(ic, clocktest.Clock(t))
	mux := access.NewMux()
	svc.RegisterHTTP(mux)
	url := pki.ServeHTTP(g, mux)
	rj7 := pki.HTTPClient(pki.Client(identity.Provider, "RJ7", "RJ7 EPR"))
	resp, err := rj7.Post(url+"/v1/submissions?dataset=apc&submitter=RJ7", "application/x-ndjson", strings.NewReader(string(record)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest answered %d", resp.StatusCode)
	}

	r := brokertest.Admin(t, brokers).NewReader(kafka.ReaderConfig{GroupID: "t-received", Topic: topics.Raw, StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	judged := 0
	for judged < 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %v", topics.Raw, err)
		}
		judged++
		outs, err := in.stage.Process(ctx, kafkapipe.FromKafka(m))
		if rej, ok := err.(*pipeline.Rejection); ok {
			outs = rej.Also
		} else if err != nil {
			t.Fatal(err)
		}
		v := verdictOf(t, outs)
		got, spec := v.Header.GetReceivedTime().AsTime(), v.Header.GetSpecVersion()
		if strings.HasPrefix(v.Header.GetSubmissionId(), "sub-") {
			// Ingest's: its receipt time, to the nanosecond, picks the version.
			if want := in.v.Registry().Select(dmicv1.Dataset_DATASET_APC, dmicv1.Source_SOURCE_PROVIDER, today).Label(); !got.Equal(today) || spec != want {
				t.Errorf("ingest's record: received %v under %s, want ingest's receipt %v under %s", got, spec, today, want)
			}
			continue
		}
		want := in.v.Registry().Select(dmicv1.Dataset_DATASET_APC, dmicv1.Source_SOURCE_PROVIDER, m.Time).Label()
		if !got.Equal(m.Time) || spec != want || spec == old || v.Outcome != validationv1.Outcome_OUTCOME_WARNED {
			t.Errorf("forged header: received %v under %s (%v), want the append time %v under %s, a warning", got, spec, v.Outcome, m.Time, want)
		}
		if got.Year() == forged.Year() {
			t.Errorf("forged header: judged as received in %d", forged.Year())
		}
	}
}
