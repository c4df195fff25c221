package ports_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/ports"
)

func TestTable(t *testing.T) {
	d := ports.For(0)
	if d.Broker != 9092 || d.ClickHouse != 9000 || d.HTTP["ingest"] != 8080 || d.GRPC["ingest"] != 9101 || d.GRPC["load"] != 9106 || d.HTTP["validate"] != 9202 {
		t.Errorf("defaults = %+v", d)
	}
	// Every port of a shifted table is the default plus the base, and no
	// two ports of one table are the same.
	s := ports.For(1000)
	seen := map[int]string{}
	check := func(what string, got, def int) {
		if got != def+1000 {
			t.Errorf("%s: %d, want %d", what, got, def+1000)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%s and %s share port %d", what, other, got)
		}
		seen[got] = what
	}
	check("broker", s.Broker, d.Broker)
	check("broker http", s.BrokerHTTP, d.BrokerHTTP)
	check("clickhouse", s.ClickHouse, d.ClickHouse)
	for _, n := range ports.Services {
		check(n+" grpc", s.GRPC[n], d.GRPC[n])
		check(n+" http", s.HTTP[n], d.HTTP[n])
	}
	if got := d.ControlAddrs("localhost"); got != "ingest=localhost:9101,validate=localhost:9102,deidentify=localhost:9103,assign=localhost:9104,reconcile=localhost:9105,load=localhost:9106" {
		t.Errorf("control addresses = %s", got)
	}
	if _, _, err := ports.Default("dental"); err == nil {
		t.Error("a service not in the table has ports")
	}
}
