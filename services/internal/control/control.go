// Package control serves dmic.v1.ControlService, gRPC health and server
// reflection for one service.
package control

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// Controllable is what a service exposes to operators.
type Controllable interface {
	Pause()
	Resume()
	Paused() bool
	Processed() int64
	Rejected() int64
}

// LagFunc reports the consumer lag of the service's input; nil for a service
// without a Kafka input.
type LagFunc func(ctx context.Context) (int64, error)

// Info describes the service for status answers.
type Info struct {
	Service       string
	Version       string
	ConsumerGroup string
	InputTopics   []string
	OutputTopics  []string
}

// Server implements dmic.v1.ControlService.
type Server struct {
	dmicv1.UnimplementedControlServiceServer
	info     Info
	target   Controllable
	lag      LagFunc
	started  time.Time
	log      *slog.Logger
	checks   *Checks
	operator Operator
}

var serviceName = dmicv1.ControlService_ServiceDesc.ServiceName

// Register adds the control, health and reflection services to gs. checks
// is the service's health (nil: always serving); a target that is a
// HealthReporter is added to it as "runner". It returns the server (Watch
// keeps gRPC health in step with checks) and the health server, so that the
// caller can mark the service not serving on shutdown.
func Register(gs *grpc.Server, info Info, target Controllable, lag LagFunc, checks *Checks, log *slog.Logger) (*Server, *health.Server) {
	if checks == nil {
		checks = NewChecks()
	}
	if h, ok := target.(HealthReporter); ok {
		checks.Add("runner", h.Health)
	}
	s := &Server{info: info, target: target, lag: lag, started: time.Now(), log: log, checks: checks}
	dmicv1.RegisterControlServiceServer(gs, s)
	hs := health.NewServer()
	status := healthpb.HealthCheckResponse_SERVING
	if ok, _ := checks.Status(); !ok {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	hs.SetServingStatus("", status)
	hs.SetServingStatus(serviceName, status)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return s, hs
}

// GetStatus answers the service's counters and lag.
func (s *Server) GetStatus(ctx context.Context, _ *dmicv1.GetStatusRequest) (*dmicv1.GetStatusResponse, error) {
	resp := &dmicv1.GetStatusResponse{
		Service:       s.info.Service,
		Version:       s.info.Version,
		Paused:        s.target.Paused(),
		Processed:     s.target.Processed(),
		Rejected:      s.target.Rejected(),
		ConsumerLag:   -1,
		OutputTopics:  s.info.OutputTopics,
		UptimeSeconds: int64(time.Since(s.started).Seconds()),
		ConsumerGroup: s.info.ConsumerGroup,
	}
	resp.Serving, resp.HealthReason = s.checks.Status()
	if p, ok := s.target.(ProgressReporter); ok {
		if t := p.LastProgress(); !t.IsZero() {
			resp.LastProgressTime = timestamppb.New(t)
		}
	}
	if len(s.info.InputTopics) > 0 {
		resp.InputTopic = s.info.InputTopics[0]
		for _, t := range s.info.InputTopics[1:] {
			resp.InputTopic += "," + t
		}
	}
	if s.lag != nil {
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if lag, err := s.lag(lctx); err == nil {
			resp.ConsumerLag = lag
		} else {
			s.log.Warn("consumer lag unavailable", "err", err)
		}
	}
	return resp, nil
}

// Pause pauses the service.
func (s *Server) Pause(ctx context.Context, _ *dmicv1.PauseRequest) (*dmicv1.PauseResponse, error) {
	s.target.Pause()
	s.log.Warn("paused by an operator", callerAttrs(ctx)...)
	return &dmicv1.PauseResponse{Paused: s.target.Paused()}, nil
}

// Resume resumes the service.
func (s *Server) Resume(ctx context.Context, _ *dmicv1.ResumeRequest) (*dmicv1.ResumeResponse, error) {
	s.target.Resume()
	s.log.Info("resumed by an operator", callerAttrs(ctx)...)
	return &dmicv1.ResumeResponse{Paused: s.target.Paused()}, nil
}
