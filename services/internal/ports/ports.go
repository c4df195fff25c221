// Package ports is the one table of dmic's default ports: the services'
// mains take their defaults from it, `make run` (devrun) and the tests'
// stacks shift it by a base, and dmicctl's default addresses and the make run
// banner are written from it. Two stacks side by side on one machine differ
// only by their base (devrun -port-base N).
//
//	what                         port (base 0)
//	embedded broker (Kafka)      9092, its /debug/pprof 9200
//	ingest                       HTTP API + /metrics 8080, gRPC 9101
//	validate … load              gRPC 9102 … 9106, HTTP (/metrics, /healthz) 9202 … 9206
//	ClickHouse (native)          9000, the server `make run` starts when
//	                             CLICKHOUSE_ADDR is not set: each stack has its
//	                             own, with its own users' passwords
package ports

import (
	"fmt"
	"strings"
)

// Services are dmic's services in pipeline order; their ports follow it.
var Services = []string{"ingest", "validate", "deidentify", "assign", "reconcile", "load"}

// Table is every port of one stack.
type Table struct {
	Base int
	// Broker is the embedded broker's Kafka port; BrokerHTTP its pprof.
	Broker, BrokerHTTP int
	// ClickHouse is the native port of the local ClickHouse server.
	ClickHouse int
	// GRPC and HTTP are each service's control and HTTP ports; ingest's
	// HTTP port is also its submission API.
	GRPC, HTTP map[string]int
}

// For is the table shifted by base (0: the defaults).
func For(base int) Table {
	t := Table{Base: base, Broker: 9092 + base, BrokerHTTP: 9200 + base, ClickHouse: 9000 + base, GRPC: map[string]int{}, HTTP: map[string]int{}}
	for i, n := range Services {
		t.GRPC[n] = 9101 + i + base
		t.HTTP[n] = 9201 + i + base
	}
	t.HTTP["ingest"] = 8080 + base
	return t
}

// Default is the table of a service started on its own: For(0).
func Default(service string) (grpc, http int, err error) {
	t := For(0)
	g, ok := t.GRPC[service]
	if !ok {
		return 0, 0, fmt.Errorf("ports: no service %q (known: %s)", service, strings.Join(Services, ", "))
	}
	return g, t.HTTP[service], nil
}

// ControlAddrs is dmicctl's -services value for the table: name=host:port,
// in pipeline order.
func (t Table) ControlAddrs(host string) string {
	parts := make([]string, len(Services))
	for i, n := range Services {
		parts[i] = fmt.Sprintf("%s=%s:%d", n, host, t.GRPC[n])
	}
	return strings.Join(parts, ",")
}
