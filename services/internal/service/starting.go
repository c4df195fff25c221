package service

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/control"
)

// starting is what answers on the service's ports before Serve: health
// NOT_SERVING and a status that says what the service is waiting for, so
// that a service waiting for the broker or replaying a control log is seen
// starting, not unreachable. Its gRPC server is a small one of its own: the
// service's own server cannot be served before every API is registered.
type starting struct {
	stop func()
}

// startingTarget is the control target while starting: no counters yet,
// and nothing to pause.
type startingTarget struct{}

func (startingTarget) Pause()           {}
func (startingTarget) Resume()          {}
func (startingTarget) Paused() bool     { return false }
func (startingTarget) Processed() int64 { return 0 }
func (startingTarget) Rejected() int64  { return 0 }

// ServeStarting listens on the service's ports until Serve takes them over
// (or stop is called): gRPC health, GetStatus and /healthz answer
// NOT_SERVING with the reason ("starting", and any dependency WaitFor is
// waiting for). A port that cannot be taken is left for Serve to report.
func (d *Daemon) ServeStarting() (stop func()) {
	d.Health.Set("starting", false, "the service is starting")
	ctx, cancel := context.WithCancel(context.Background())
	var stops []func()
	gs := d.newGRPCServer()
	// Quiet: being not yet serving while starting is no news; WaitFor logs
	// what the service waits for.
	quiet := slog.New(slog.DiscardHandler)
	cs, hs := control.Register(gs, control.Info{Service: d.Name, Version: Version()}, startingTarget{}, nil, d.Health, quiet)
	if l, err := net.Listen("tcp", d.Config.GRPCAddr); err == nil {
		watched := make(chan struct{})
		go func() { cs.Watch(ctx, hs, d.Health, 200*time.Millisecond); close(watched) }()
		go func() { _ = gs.Serve(l) }()
		stops = append(stops, func() { gs.Stop(); <-watched })
	}
	serveHTTP := func(l net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(quiet.Handler(), slog.LevelDebug)}
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.Log.Warn("starting HTTP server", "err", err)
			}
		}()
		stops = append(stops, func() { _ = srv.Close() })
	}
	// The API says it is starting to anyone (nothing is served but that),
	// over TLS like the service it will be.
	if d.Config.HTTPAddr != "" {
		if l, err := net.Listen("tcp", d.Config.HTTPAddr); err == nil {
			serveHTTP(tls.NewListener(l, d.apiTLS()), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, d.Name+" is starting; retry shortly", http.StatusServiceUnavailable)
			}))
		}
	}
	if d.Config.OpsAddr != "" {
		if l, err := net.Listen("tcp", d.Config.OpsAddr); err == nil {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
				_, reason := d.Health.Status()
				http.Error(w, "not serving: "+reason, http.StatusServiceUnavailable)
			})
			mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, d.Name+" is starting; retry shortly", http.StatusServiceUnavailable)
			})
			serveHTTP(l, mux)
		}
	}
	stop = sync.OnceFunc(func() {
		cancel()
		for _, s := range stops {
			s()
		}
		d.Health.Set("starting", true, "")
	})
	d.starting = &starting{stop: stop}
	return stop
}
