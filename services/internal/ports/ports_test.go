package ports_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/ports"
)

func TestTable(t *testing.T) {
	d := ports.For(0)
	if d.Broker != 9092 || d.ClickHouse != 9000 || d.HTTP["ingest"] != 8080 || d.GRPC["ingest"] != 9101 || d.GRPC["load"] != 9106 || d.Ops["validate"] != 9202 || d.Ops["ingest"] != 9201 {
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
		check(n+" ops", s.Ops[n], d.Ops[n])
		if d.HTTP[n] != 0 {
			check(n+" http", s.HTTP[n], d.HTTP[n])
		}
	}
	// All is every port of the table, once each (a free port base is one
	// where all of them are free).
	all := s.All()
	if len(all) != len(seen) {
		t.Errorf("All = %v, want the %d ports %v", all, len(seen), seen)
	}
	for _, p := range all {
		if _, ok := seen[p]; !ok {
			t.Errorf("All has %d, which is no port of the table", p)
		}
	}
	// Only ingest has an HTTP API: the provider-facing listener.
	if len(d.HTTP) != 1 || len(s.HTTP) != 1 {
		t.Errorf("HTTP APIs: %v, want ingest's alone", d.HTTP)
	}
	if got := d.ControlAddrs("localhost"); got != "ingest=localhost:9101,validate=localhost:9102,deidentify=localhost:9103,assign=localhost:9104,reconcile=localhost:9105,load=localhost:9106" {
		t.Errorf("control addresses = %s", got)
	}
	if p, err := ports.Default("ingest"); err != nil || p != (ports.Ports{GRPC: 9101, HTTP: 8080, Ops: 9201}) {
		t.Errorf("ingest's defaults = %+v, %v", p, err)
	}
	if p, err := ports.Default("load"); err != nil || p != (ports.Ports{GRPC: 9106, Ops: 9206}) {
		t.Errorf("load's defaults = %+v, %v", p, err)
	}
	if _, err := ports.Default("dental"); err == nil {
		t.Error("a service not in the table has ports")
	}
}
