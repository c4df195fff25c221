package service

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/dmic-nhs/dmic/services/internal/limits"
)

// HTTPTimeouts bound the connections of a service's HTTP API (ingest's, the
// providers' door) against slow clients: a client that trickles its headers
// or its body, or holds an idle connection, or never reads its answer, holds
// a connection and a goroutine (and a submission's spool) only this long
// (issue 12, docs/operations.md "Limits").
type HTTPTimeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, its body included: at the
	// default body cap (1 GiB) and 30 minutes, a sender needs 0.6 MB/s.
	Read time.Duration
	// Write runs from the end of a request's headers to the end of its
	// answer (net/http's WriteTimeout): reading the body, storing it, and
	// writing the answer. It must exceed Read.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests.
	Idle time.Duration
}

// DefaultHTTPTimeouts are the flags' defaults.
func DefaultHTTPTimeouts() HTTPTimeouts {
	return HTTPTimeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Minute, Write: 45 * time.Minute, Idle: 2 * time.Minute}
}

// maxHeaderBytes bounds a request's headers: dmic's requests carry a few
// short ones (net/http's default is 1 MiB).
const maxHeaderBytes = 64 << 10

// RegisterFlags registers the timeouts' flags, with the defaults.
func (t *HTTPTimeouts) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultHTTPTimeouts()
	fs.DurationVar(&t.ReadHeader, "http-read-header-timeout", d.ReadHeader, "Longest time to read a request's headers on the HTTP API.")
	fs.DurationVar(&t.Read, "http-read-timeout", d.Read, "Longest time to read a whole request on the HTTP API, its body included (a submission of up to -max-submission-bytes).")
	fs.DurationVar(&t.Write, "http-write-timeout", d.Write, "Longest time from a request's headers to the end of its answer on the HTTP API: reading and storing the submission and answering. At least -http-read-timeout.")
	fs.DurationVar(&t.Idle, "http-idle-timeout", d.Idle, "Longest time a kept-alive HTTP API connection may wait for its next request.")
}

// Validate reports every problem at once.
func (t HTTPTimeouts) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"-http-read-header-timeout", t.ReadHeader}, {"-http-read-timeout", t.Read}, {"-http-write-timeout", t.Write}, {"-http-idle-timeout", t.Idle}} {
		if f.v < time.Second {
			errs = append(errs, fmt.Errorf("%s: %v is less than a second (slow clients are bounded only by a timeout)", f.name, f.v))
		}
	}
	if t.Write < t.Read {
		errs = append(errs, fmt.Errorf("-http-write-timeout: %v is less than -http-read-timeout (%v): it runs while the body is read, so a submission read in time would lose its answer", t.Write, t.Read))
	}
	return errors.Join(errs...)
}

// orDefault fills what was never set (a Config built in code) with the
// defaults: a zero would mean no timeout at all.
func (t HTTPTimeouts) orDefault() HTTPTimeouts {
	d := DefaultHTTPTimeouts()
	for _, p := range []struct{ v, d *time.Duration }{{&t.ReadHeader, &d.ReadHeader}, {&t.Read, &d.Read}, {&t.Write, &d.Write}, {&t.Idle, &d.Idle}} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	return t
}

// apply sets the timeouts on srv.
func (t HTTPTimeouts) apply(srv *http.Server) *http.Server {
	t = t.orDefault()
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = t.ReadHeader, t.Read, t.Write, t.Idle
	srv.MaxHeaderBytes = maxHeaderBytes
	return srv
}

// grpcLimits are the bounds of every dmic gRPC server. A SubmitRecords
// stream lasts as long as its submission; these bound what a client that
// vanished, or never finished its handshake, or opens streams without end,
// holds.
func grpcLimits() []grpc.ServerOption {
	return []grpc.ServerOption{
		// One message holds whole records (limits package doc).
		grpc.MaxRecvMsgSize(limits.MaxGRPCMessageBytes),
		// The TLS handshake of a new connection.
		grpc.ConnectionTimeout(10 * time.Second),
		// Streams in flight on one connection (gRPC's default is unbounded).
		grpc.MaxConcurrentStreams(100),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			// A connection with no call for this long is closed (GOAWAY):
			// clients reconnect when they next call.
			MaxConnectionIdle: 15 * time.Minute,
			// Ping a connection silent for a minute, and close it if the ping
			// is not answered in 20 s: a peer that vanished mid-stream (its
			// machine gone, a NAT forgot it) does not hold its stream for ever.
			Time:    time.Minute,
			Timeout: 20 * time.Second,
		}),
		// Clients' own keepalive pings are welcome down to every 10 s
		// (gRPC's default refuses them under 5 minutes and drops the
		// connection).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}
