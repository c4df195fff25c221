package bench

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

const floorTestRefDir = "../../../reference/sample"

// floorTestLines generates n lines of provider records of all four datasets
// (local flows carry the integer fields) with the generator's deliberately
// broken lines among them.
func floorTestLines(t *testing.T, n int) [][]byte {
	t.Helper()
	ref, err := refdata.LoadDir(floorTestRefDir)
	if err != nil {
		t.Fatalf("load reference: %v", err)
	}
	items, err := synth.Generate(synth.Config{
		Seed: 3, Records: n,
		Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: ref.TrustCodes(),
		Datasets: []dmicv1.Dataset{dmicv1.Dataset_DATASET_APC, dmicv1.Dataset_DATASET_OUTPATIENT,
			dmicv1.Dataset_DATASET_EMERGENCY_CARE, dmicv1.Dataset_DATASET_LOCAL_FLOW},
	})
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if len(items) < n {
		t.Fatalf("generated %d items, want at least %d", len(items), n)
	}
	lines := make([][]byte, n)
	for i, it := range items[:n] {
		lines[i] = it.JSON
	}
	return lines
}

// floorTestSums is what the valid lines say the target table must hold,
// worked out with encoding/json independently of floorSelect.
type floorTestSums struct {
	valid, decodable int
	pricePence       int64
	uniqueIDs        map[string]bool
}

func floorTestExpect(t *testing.T, lines [][]byte) floorTestSums {
	t.Helper()
	s := floorTestSums{uniqueIDs: map[string]bool{}}
	for _, l := range lines {
		if _, _, err := record.DecodeJSON(l, dmicv1.Dataset_DATASET_UNSPECIFIED); err == nil {
			s.decodable++
		}
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(string(l)))
		d.UseNumber()
		if d.Decode(&m) != nil || d.More() {
			continue
		}
		s.valid++
		if p, ok := m["price_pence"].(json.Number); ok {
			v, err := p.Int64()
			if err != nil {
				t.Fatalf("price_pence %q is not an integer", p)
			}
			s.pricePence += v
		}
		if id, ok := m["cds_unique_identifier"].(string); ok {
			s.uniqueIDs[id] = true
		}
	}
	return s
}

func TestTransportFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse and a broker and moves 20,000 records")
	}
	ch := chstoretest.Config(t, chservertest.Server(t), chaccess.Migrator, "default")
	// Without authentication, as the benchmark gives the floor (TransportFloor).
	b := brokertest.New(t, broker.WithoutAuth(), broker.WithoutTopics())
	lines := floorTestLines(t, 20000)
	want := floorTestExpect(t, lines)
	if want.valid == len(lines) || want.pricePence == 0 {
		t.Fatalf("test data lacks broken lines or local flows: %d valid of %d, price sum %d", want.valid, len(lines), want.pricePence)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var target string
	inspected := false
	log := slog.New(slog.NewTextHandler(floorTestWriter{t}, nil))
	res, err := floorTransport(ctx, brokertest.Admin(t, b), ch, lines, log, func(ctx context.Context, conn driver.Conn, tbl string) error {
		target, inspected = tbl, true
		var rows, ids uint64
		var price int64
		if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(cds_unique_identifier), sum(price_pence) FROM "+tbl).Scan(&rows, &ids, &price); err != nil {
			t.Errorf("read target: %v", err)
			return nil
		}
		if rows != uint64(want.valid) {
			t.Errorf("target has %d rows, want %d", rows, want.valid)
		}
		// Records lacking an identifier count once, as "".
		if ids != uint64(len(want.uniqueIDs)) && ids != uint64(len(want.uniqueIDs))+1 {
			t.Errorf("target has %d distinct cds_unique_identifier, want %d", ids, len(want.uniqueIDs))
		}
		if price != want.pricePence {
			t.Errorf("target sum(price_pence) = %d, want %d", price, want.pricePence)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("TransportFloor: %v", err)
	}
	if !inspected {
		t.Fatal("the target table was never inspected")
	}
	if res.Records != want.valid {
		t.Errorf("Records = %d, want %d valid lines", res.Records, want.valid)
	}
	if res.Seconds <= 0 || res.RecordsPerSec <= 0 {
		t.Errorf("rate = %v records/s over %v s, want positive", res.RecordsPerSec, res.Seconds)
	}
	t.Logf("transport floor: %d records in %.2f s = %.0f records/s", res.Records, res.Seconds, res.RecordsPerSec)

	// Everything it made is gone, so no Kafka consumer is left inside the
	// server when the test's cleanup stops it.
	conn, err := ch.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	suffix := strings.TrimPrefix(target, "default.floor_target_")
	var left uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = 'default' AND name LIKE ?", "floor_%"+suffix).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d floor tables for %s are left in ClickHouse", left, suffix)
	}
}

func TestTransportFloorRefusesNoUsableLines(t *testing.T) {
	c, err := kafkaconn.Insecure([]string{"127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = TransportFloor(context.Background(), c, chstore.Config{Addr: "127.0.0.1:1"}, [][]byte{[]byte(`{"a":`), []byte(`[1]`), []byte(`{"price_pence":"x"}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "none of the 3 lines") {
		t.Fatalf("err = %v, want none of the 3 lines usable", err)
	}
}

func TestFloorSelect(t *testing.T) {
	lines := [][]byte{
		[]byte(`{"dataset":"local_flow","price_pence":120,"activity_count":2}`),
		[]byte(`{"dataset":"apc","hrg_code":"FD01A"}`),
		[]byte(`{"dataset":"apc","hrg_code":"FD01A",}`),      // trailing comma
		[]byte(`{"dataset":"apc","hrg_co`),                   // truncated
		[]byte(`{"dataset":"apc","episode_number":1}`),       // number in a string column
		[]byte(`{"dataset":"local_flow","price_pence":"1"}`), // string in an integer column
		[]byte(`{"dataset":"apc","extra":{"a":"b"}}`),        // nested
		[]byte(`{"bad name":"x"}`),
		[]byte(`["apc"]`),
		[]byte(``),
	}
	valid, cols := floorSelect(lines)
	if len(valid) != 2 {
		t.Fatalf("kept %d lines, want 2: %q", len(valid), valid)
	}
	got := floorColumnsDDL(cols)
	want := "`activity_count` Int64, `dataset` String, `hrg_code` String, `price_pence` Int64"
	if got != want {
		t.Errorf("columns = %s, want %s", got, want)
	}
}

func TestComputeFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("processes 20,000 records")
	}
	lines := floorTestLines(t, 20000)
	want := floorTestExpect(t, lines)
	if want.decodable == len(lines) {
		t.Fatal("test data has no undecodable lines")
	}
	res, err := ComputeFloor(context.Background(), lines, floorTestRefDir)
	if err != nil {
		t.Fatalf("ComputeFloor: %v", err)
	}
	if res.Records != want.decodable {
		t.Errorf("Records = %d, want %d decodable lines", res.Records, want.decodable)
	}
	if res.Seconds <= 0 || res.RecordsPerSec <= 0 {
		t.Errorf("rate = %v records/s over %v s, want positive", res.RecordsPerSec, res.Seconds)
	}
	t.Logf("compute floor: %d records in %.3f s = %.0f records/s", res.Records, res.Seconds, res.RecordsPerSec)
}

func TestComputeFloorErrors(t *testing.T) {
	if _, err := ComputeFloor(context.Background(), nil, t.TempDir()); err == nil {
		t.Error("ComputeFloor with an empty reference directory: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ComputeFloor(ctx, [][]byte{[]byte(`{}`)}, floorTestRefDir); err == nil {
		t.Error("ComputeFloor with a cancelled context: no error")
	}
}

type floorTestWriter struct{ t *testing.T }

func (w floorTestWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The floor's ClickHouse table cannot authenticate: a broker that wants
// SASL is refused before anything is made, with the reason.
func TestTransportFloorRefusesAnAuthenticatingBroker(t *testing.T) {
	c, err := kafkaconn.New([]string{"127.0.0.1:1"}, kafkaconn.Auth{Mechanism: kafkaconn.ScramSHA512, User: "u", Password: secret.Of("p", "test")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = TransportFloor(context.Background(), c, chstore.Config{Addr: "127.0.0.1:1"}, [][]byte{[]byte(`{"a":"b"}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "SASL") {
		t.Fatalf("err = %v, want a refusal naming SASL", err)
	}
}
