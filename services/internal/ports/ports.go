// Package ports is the one table of dmic's default ports: the services'
// mains take their defaults from it, `make run` (devrun) and the tests'
// stacks shift it by a base, and dmicctl's default addresses and the make run
// banner are written from it. Two stacks side by side on one machine differ
// only by their base (devrun -port-base N).
//
//	what                         port (base 0)
//	embedded broker (Kafka)      9092, its /debug/pprof 9200
//	ingest                       HTTPS API (providers) 8080, gRPC 9101
//	validate … load              gRPC 9102 … 9106
//	operational HTTP             ingest 9201, validate … load 9202 … 9206:
//	  (/metrics, /healthz,       plain HTTP, on localhost by default, never
//	   /debug/pprof)             the provider-facing listener
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
	// GRPC is each service's gRPC port (control API, and ingest's and
	// validate's and deidentify's own APIs).
	GRPC map[string]int
	// HTTP is the port of a service's HTTP API: ingest's submission API,
	// the provider-facing one. Services without one are not in it.
	HTTP map[string]int
	// Ops is each service's operational port: /metrics, /healthz and
	// /debug/pprof.
	Ops map[string]int
}

// For is the table shifted by base (0: the defaults).
func For(base int) Table {
	t := Table{Base: base, Broker: 9092 + base, BrokerHTTP: 9200 + base, ClickHouse: 9000 + base, GRPC: map[string]int{}, HTTP: map[string]int{}, Ops: map[string]int{}}
	for i, n := range Services {
		t.GRPC[n] = 9101 + i + base
		t.Ops[n] = 9201 + i + base
	}
	t.HTTP["ingest"] = 8080 + base
	return t
}

// Ports are one service's ports; HTTP is 0 for a service without an HTTP API.
type Ports struct {
	GRPC, HTTP, Ops int
}

// Default is the ports of a service started on its own: For(0).
func Default(service string) (Ports, error) {
	t := For(0)
	g, ok := t.GRPC[service]
	if !ok {
		return Ports{}, fmt.Errorf("ports: no service %q (known: %s)", service, strings.Join(Services, ", "))
	}
	return Ports{GRPC: g, HTTP: t.HTTP[service], Ops: t.Ops[service]}, nil
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

// All lists every port of the table, once each: the broker's, the local
// ClickHouse server's, and each service's gRPC, operational and (ingest's)
// HTTP API ports.
func (t Table) All() []int {
	out := []int{t.Broker, t.BrokerHTTP, t.ClickHouse}
	for _, n := range Services {
		out = append(out, t.GRPC[n], t.Ops[n])
		if p, ok := t.HTTP[n]; ok {
			out = append(out, p)
		}
	}
	return out
}
