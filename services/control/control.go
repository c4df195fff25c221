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
	info    Info
	target  Controllable
	lag     LagFunc
	started time.Time
	log     *slog.Logger
}

// Register adds the control, health and reflection services to gs and returns
// the health server so the caller can mark the service not serving on shutdown.
func Register(gs *grpc.Server, info Info, target Controllable, lag LagFunc, log *slog.Logger) *health.Server {
	s := &Server{info: info, target: target, lag: lag, started: time.Now(), log: log}
	dmicv1.RegisterControlServiceServer(gs, s)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(dmicv1.ControlService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return hs
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
func (s *Server) Pause(context.Context, *dmicv1.PauseRequest) (*dmicv1.PauseResponse, error) {
	s.target.Pause()
	return &dmicv1.PauseResponse{Paused: s.target.Paused()}, nil
}

// Resume resumes the service.
func (s *Server) Resume(context.Context, *dmicv1.ResumeRequest) (*dmicv1.ResumeResponse, error) {
	s.target.Resume()
	return &dmicv1.ResumeResponse{Paused: s.target.Paused()}, nil
}
