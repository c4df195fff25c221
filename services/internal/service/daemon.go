package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/control"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
)

// Daemon is one running service process: logger, metrics, gRPC server.
type Daemon struct {
	Name   string
	Config Config
	// Kafka is the cluster as this service's principal: every Kafka client
	// of the service is built from it.
	Kafka    kafkaconn.Cluster
	Log      *slog.Logger
	Registry *prometheus.Registry
	GRPC     *grpc.Server
	// HTTP is served on MetricsAddr beside /metrics; services may add routes.
	HTTP *http.ServeMux
	// Clock is the process's one clock: the composition root hands it to
	// every component that decides by the date (docs/architecture.md).
	Clock clock.Clock
	// Health is the service's health: gRPC health, /healthz and status
	// report it. The runner adds itself; WaitFor sets a dependency's state.
	Health *control.Checks
	// operator serves skips and replays of a stage's input (RunStage).
	operator control.Operator
	// starting answers on the ports until Serve takes them (ServeStarting).
	starting *starting
	// kafkaStats counts the Kafka requests of the writers and readers the
	// daemon made (NewWriter, RunStage).
	kafkaStats *kafkaStats
}

// New builds the daemon's shared parts. It does not listen yet.
func New(name string, cfg Config, kafka kafkaconn.Cluster) *Daemon {
	reg := prometheus.NewRegistry()
	ks := newKafkaStats()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), ks)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	checks := control.NewChecks()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, reason := checks.Status(); !ok {
			http.Error(w, "not serving: "+reason, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return &Daemon{
		Health:   checks,
		Name:     name,
		Config:   cfg,
		Kafka:    kafka,
		Log:      cfg.Logger(name),
		Registry: reg,
		GRPC:     grpc.NewServer(),
		HTTP:     mux,
		// The process edge: the only place a service reads the wall clock.
		Clock:      clock.System(),
		kafkaStats: ks,
	}
}

// Serve registers the control API for target, listens, runs work and shuts
// everything down gracefully when ctx ends (SIGTERM) or work returns.
func (d *Daemon) Serve(ctx context.Context, info control.Info, target control.Controllable, lag control.LagFunc, work func(ctx context.Context) error) error {
	info.Service = d.Name
	info.Version = Version()
	if d.starting != nil {
		d.starting.stop() // hand the ports over
	}
	cs, hs := control.Register(d.GRPC, info, target, lag, d.Health, d.Log)
	if d.operator != nil {
		cs.SetOperator(d.operator)
	}

	gl, err := net.Listen("tcp", d.Config.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC on %s: %w", d.Config.GRPCAddr, err)
	}
	var hsrv *http.Server
	var hl net.Listener
	if d.Config.HTTPAddr != "" {
		hl, err = net.Listen("tcp", d.Config.HTTPAddr)
		if err != nil {
			gl.Close()
			return fmt.Errorf("listen HTTP on %s: %w", d.Config.HTTPAddr, err)
		}
		hsrv = &http.Server{Handler: d.HTTP, ReadHeaderTimeout: 10 * time.Second}
	}
	d.Log.Info("started", "version", info.Version, "grpc", gl.Addr().String(), "http", d.Config.HTTPAddr, "kafka", d.Kafka.String())

	g, gctx := errgroup.WithContext(ctx)
	wctx, stopWatch := context.WithCancel(gctx)
	watched := make(chan struct{})
	go func() { cs.Watch(wctx, hs, d.Health, time.Second); close(watched) }()
	g.Go(func() error {
		if err := d.GRPC.Serve(gl); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	if hsrv != nil {
		g.Go(func() error {
			if err := hsrv.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("HTTP server: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		err := work(gctx)
		if err != nil {
			d.Log.Error("stopped on error", "err", err)
		}
		return err
	})
	g.Go(func() error {
		<-gctx.Done()
		d.Log.Info("shutting down")
		stopWatch()
		<-watched
		hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		stopped := make(chan struct{})
		go func() { d.GRPC.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			d.GRPC.Stop()
		}
		if hsrv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hsrv.Shutdown(sctx)
		}
		return nil
	})
	err = g.Wait()
	d.Log.Info("stopped")
	return err
}
