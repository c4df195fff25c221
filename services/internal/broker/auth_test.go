package broker_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// produce writes one message to partition 0 of topic as c and returns the
// error.
func produce(ctx context.Context, c kafkaconn.Cluster, topic string) error {
	w := kafkapipe.NewWriter(c, kafkapipe.WithMaxAttempts(1),
		kafkapipe.WithBalancer(kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })))
	defer w.Close()
	return w.WriteMessages(ctx, kafka.Message{Topic: topic, Key: []byte("k"), Value: []byte(`{"x":1}`)})
}

// readOne reads the first message of topic's partition 0 as c, without a
// consumer group.
func readOne(ctx context.Context, c kafkaconn.Cluster, topic string) (kafka.Message, error) {
	r := c.NewReader(kafka.ReaderConfig{Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	return r.ReadMessage(ctx)
}

// feed puts a message on every partition of dmic.raw as the superuser, so
// that a reader of any partition finds one.
func feed(t *testing.T, ctx context.Context, b *broker.Broker) {
	t.Helper()
	w := kafkapipe.NewWriter(brokertest.Admin(t, b), kafkapipe.WithBalancer(&kafka.RoundRobin{}))
	defer w.Close()
	var msgs []kafka.Message
	for i := range 2 * topics.DefaultPartitions {
		msgs = append(msgs, kafka.Message{Topic: topics.Raw, Key: []byte(strconv.Itoa(i)), Value: []byte(`{"nhs_number":"9434765919"}`)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("the superuser cannot produce to %s: %v", topics.Raw, err)
	}
}

// The ones who may, can: without this the refusals below would pass against
// a broker that refuses everyone.
func TestPrincipalsDoWhatTheyAreGranted(t *testing.T) {
	b := brokertest.New(t)
	ctx := testContext(t, time.Minute)
	if !b.Auth() {
		t.Fatal("the embedded broker runs without authentication by default")
	}
	if err := produce(ctx, brokertest.As(t, b, topics.ServicePrincipal("ingest")), topics.Raw); err != nil {
		t.Fatalf("ingest cannot write %s: %v", topics.Raw, err)
	}
	feed(t, ctx, b)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if m, err := readOne(rctx, brokertest.As(t, b, topics.ServicePrincipal("validate")), topics.Raw); err != nil || len(m.Value) == 0 {
		t.Fatalf("validate cannot read %s: %v", topics.Raw, err)
	}
}

// A wrong password is refused; the same client with the right one is not,
// so the refusal is the password's.
func TestWrongPasswordIsRefused(t *testing.T) {
	b := brokertest.New(t)
	ctx := testContext(t, 30*time.Second)
	ingest := topics.ServicePrincipal("ingest")
	c, err := kafkaconn.New([]string{b.Addr()}, kafkaconn.Auth{Mechanism: broker.Mechanism,
		User: ingest, Password: secret.Of("not-the-password", "test")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// kfake closes the connection (a real broker answers
	// SASL_AUTHENTICATION_FAILED first): either way, nothing gets through.
	if err := produce(ctx, c, topics.Raw); err == nil {
		t.Fatal("a wrong password could produce to dmic.raw")
	}
	if conn, err := c.Dial(ctx); err == nil {
		conn.Close()
		t.Error("a wrong password could open a connection")
	}
	if err := produce(ctx, brokertest.As(t, b, ingest), topics.Raw); err != nil {
		t.Fatalf("the right password cannot produce: %v", err)
	}
}

func TestUnauthenticatedClientCannotProduce(t *testing.T) {
	b := brokertest.New(t)
	ctx := testContext(t, 30*time.Second)
	anon, err := kafkaconn.Insecure([]string{b.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := produce(ctx, anon, topics.Raw); err == nil {
		t.Fatal("a client without credentials could produce to dmic.raw")
	}
	resp, err := brokertest.Admin(t, b).Client(10*time.Second).ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topics.Raw: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	if po := resp.Topics[topics.Raw]; len(po) != 1 || po[0].Error != nil || po[0].LastOffset != 0 {
		t.Fatalf("after the anonymous attempt partition 0 of %s holds %+v, want nothing", topics.Raw, po)
	}
	feed(t, ctx, b)
	if _, err := readOne(ctx, anon, topics.Raw); err == nil {
		t.Fatal("a client without credentials could read dmic.raw")
	}
}

func TestAssignCannotReadRaw(t *testing.T) {
	b := brokertest.New(t)
	ctx := testContext(t, 30*time.Second)
	feed(t, ctx, b)
	assign := brokertest.As(t, b, topics.ServicePrincipal("assign"))
	m, err := readOne(ctx, assign, topics.Raw)
	if err == nil {
		t.Fatalf("assign read %s (a message of %d bytes)", topics.Raw, len(m.Value))
	}
	if !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Errorf("assign reading %s: %v, want topic authorization failed", topics.Raw, err)
	}
	// Nor may it look at validate's consumer group.
	resp, err := assign.Client(10*time.Second).OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "dmic-validate",
		Topics: map[string][]int{topics.Raw: {0}}})
	if err == nil {
		err = resp.Error
	}
	if !errors.Is(err, kafka.GroupAuthorizationFailed) {
		t.Errorf("assign fetching dmic-validate's offsets: %v, want group authorization failed", err)
	}
	// Its own input it reads.
	if err := produce(ctx, brokertest.Admin(t, b), topics.Deidentified); err != nil {
		t.Fatal(err)
	}
	if _, err := readOne(ctx, assign, topics.Deidentified); err != nil {
		t.Errorf("assign reading its input %s: %v", topics.Deidentified, err)
	}
}

func TestLoadCannotWriteRaw(t *testing.T) {
	b := brokertest.New(t)
	ctx := testContext(t, 30*time.Second)
	load := brokertest.As(t, b, topics.ServicePrincipal("load"))
	err := produce(ctx, load, topics.Raw)
	if err == nil {
		t.Fatal("load could write dmic.raw")
	}
	// The topic is hidden from load's metadata, or its write refused.
	if !errors.Is(err, kafka.UnknownTopicOrPartition) && !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Errorf("load writing %s: %v, want the topic hidden or refused", topics.Raw, err)
	}
	// The topic is there (the superuser writes it), and what load does
	// write, it can.
	if err := produce(ctx, brokertest.Admin(t, b), topics.Raw); err != nil {
		t.Fatal(err)
	}
	if err := produce(ctx, load, topics.Rejected); err != nil {
		t.Fatalf("load cannot write %s: %v", topics.Rejected, err)
	}
}

// librdkafka (kcat) uses SASL only with a broker that lists SaslHandshake
// version 0; kfake lists it from version 1, so the broker lowers that
// minimum (advertiseHandshakeV0). A kafka-go client still authenticates.
func TestHandshakeVersionZeroIsListed(t *testing.T) {
	b := brokertest.New(t)
	conn, err := (&kafka.Dialer{Timeout: 10 * time.Second}).Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	versions, err := conn.ApiVersions()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range versions {
		if v.ApiKey == 17 { // SaslHandshake
			found = true
			if v.MinVersion != 0 || v.MaxVersion < 1 {
				t.Errorf("SaslHandshake versions %d..%d, want 0..1 or more", v.MinVersion, v.MaxVersion)
			}
		}
	}
	if !found || len(versions) < 20 {
		t.Errorf("ApiVersions lists %d keys (SaslHandshake among them: %v)", len(versions), found)
	}
	if _, err := brokertest.As(t, b, topics.Operator).Dial(context.Background()); err != nil {
		t.Errorf("kafka-go cannot authenticate after the change: %v", err)
	}
}
