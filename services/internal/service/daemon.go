package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/control"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/identity/oidcauth"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/topics"
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
	// GRPC is the service's gRPC server: TLS, and every call authorised by
	// Guard (a method needs a rule in internal/access to be served at all).
	GRPC *grpc.Server
	// HTTP is the service's HTTP API (ingest's), served on HTTPAddr over
	// TLS behind Guard; a route needs a rule in internal/access.
	HTTP *access.Mux
	// Ops is the operational listener's mux (OpsAddr): /metrics, /healthz,
	// /debug/pprof. Never the API's listener.
	Ops *http.ServeMux
	// Clock is the process's one clock: the composition root hands it to
	// every component that decides by the date (docs/architecture.md).
	Clock clock.Clock
	// Health is the service's health: gRPC health, /healthz and status
	// report it. The runner adds itself; WaitFor sets a dependency's state.
	Health *control.Checks
	// Guard authenticates and authorises every call, and Audit is the
	// security audit trail it records on (dmic.audit; docs/security.md).
	Guard *access.Guard
	Audit *audit.Log
	// serverTLS is the TLS configuration of the gRPC and HTTP API listeners.
	serverTLS *tls.Config
	// auditWriter writes the audit trail; closed when Serve ends.
	auditWriter *kafkapipe.Writer
	// operator serves skips and replays of a stage's input (RunStage).
	operator control.Operator
	// starting answers on the ports until Serve takes them (ServeStarting).
	starting *starting
	// kafkaStats counts the Kafka requests of the writers and readers the
	// daemon made (NewWriter, RunStage).
	kafkaStats *kafkaStats
	// memory is the process's memory limit (Main sets it; nil in a daemon
	// built by a test, which leaves the runtime's limit alone).
	memory *memory
}

// New builds the daemon's shared parts: it reads the TLS files, and does not
// listen yet. kafka is the cluster as the service's principal.
func New(name string, cfg Config, kafka kafkaconn.Cluster) (*Daemon, error) {
	pair, err := identity.LoadKeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
	}
	roots, err := identity.LoadRoots(cfg.TLSClientCA)
	if err != nil {
		return nil, fmt.Errorf("-tls-client-ca: %w", err)
	}
	reg := prometheus.NewRegistry()
	ks := newKafkaStats()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), ks)
	ops := http.NewServeMux()
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	ops.HandleFunc("GET /debug/pprof/", pprof.Index)
	ops.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	ops.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	ops.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	checks := control.NewChecks()
	ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, reason := checks.Status(); !ok {
			http.Error(w, "not serving: "+reason, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	// The process edge: the only place a service reads the wall clock.
	clk := clock.System()
	d := &Daemon{
		Health:     checks,
		Name:       name,
		Config:     cfg,
		Kafka:      kafka,
		Log:        cfg.Logger(name),
		Registry:   reg,
		HTTP:       access.NewMux(),
		Ops:        ops,
		Clock:      clk,
		kafkaStats: ks,
	}
	d.auditWriter = d.NewWriter()
	d.Audit = audit.New(kafkalog.New(kafka, topics.Audit, d.auditWriter), name, clk, d.Log, reg)
	// Client certificates; OpenID Connect bearer tokens beside them (people
	// in a browser) when an issuer is configured.
	auth := identity.Chain{identity.NewCertificates(roots, clk)}
	if cfg.OIDC.Enabled() {
		auth = append(auth, oidcauth.New(cfg.OIDC, clk, nil))
	}
	d.Guard = access.New(auth, d.Audit, d.Log, reg)
	d.serverTLS = identity.ServerConfig(pair, roots)
	d.GRPC = d.newGRPCServer()
	return d, nil
}

// newGRPCServer is a gRPC server as every server of the service is: TLS,
// and guarded.
func (d *Daemon) newGRPCServer() *grpc.Server {
	opts := append(d.Guard.ServerOptions(), grpc.Creds(credentials.NewTLS(d.serverTLS)))
	return grpc.NewServer(append(opts, grpcLimits()...)...)
}

// apiTLS is the TLS configuration of the HTTP API listener.
func (d *Daemon) apiTLS() *tls.Config {
	c := d.serverTLS.Clone()
	c.NextProtos = []string{"h2", "http/1.1"}
	return c
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
	// Deny by default, and say so at start: a method or route nobody wrote
	// a rule for is never served.
	if err := errors.Join(d.Guard.CheckGRPC(d.GRPC.GetServiceInfo()), d.Guard.CheckHTTP(d.HTTP)); err != nil {
		return err
	}

	var servers []*http.Server
	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	gl, err := net.Listen("tcp", d.Config.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC on %s: %w", d.Config.GRPCAddr, err)
	}
	listeners = append(listeners, gl)
	if d.Config.HTTPAddr != "" {
		hl, err := net.Listen("tcp", d.Config.HTTPAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen HTTP on %s: %w", d.Config.HTTPAddr, err)
		}
		listeners = append(listeners, tls.NewListener(hl, d.apiTLS()))
		servers = append(servers, d.Config.HTTP.apply(&http.Server{Handler: d.Guard.HTTP(d.HTTP),
			ErrorLog: slog.NewLogLogger(d.Log.Handler(), slog.LevelDebug)}))
	}
	if d.Config.OpsAddr != "" {
		ol, err := net.Listen("tcp", d.Config.OpsAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen operational HTTP on %s: %w", d.Config.OpsAddr, err)
		}
		listeners = append(listeners, ol)
		servers = append(servers, &http.Server{Handler: d.Ops, ReadHeaderTimeout: 10 * time.Second})
	}
	d.Log.Info("started", "version", info.Version, "grpc", gl.Addr().String(), "http_api", d.Config.HTTPAddr, "ops", d.Config.OpsAddr, "kafka", d.Kafka.String(),
		"go_memory_limit", debug.SetMemoryLimit(-1))

	// The audit trail is written until the servers have stopped, so that
	// the refusals of the last calls are kept too.
	actx, stopAudit := context.WithCancel(context.WithoutCancel(ctx))
	audited := make(chan struct{})
	go func() { d.Audit.Run(actx); close(audited) }()
	defer func() {
		stopAudit()
		<-audited
		d.auditWriter.Close()
	}()

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
	for i, srv := range servers {
		l := listeners[i+1]
		g.Go(func() error {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("HTTP server on %s: %w", l.Addr(), err)
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
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(sctx)
		}
		return nil
	})
	err = g.Wait()
	d.Log.Info("stopped")
	return err
}
