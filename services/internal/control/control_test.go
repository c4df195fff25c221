package control_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/control"
)

// fakeTarget is a Controllable with fixed counters.
type fakeTarget struct {
	mu                  sync.Mutex
	paused              bool
	pauses, resumes     int
	processed, rejected int64
}

func (f *fakeTarget) Pause() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = true
	f.pauses++
}

func (f *fakeTarget) Resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = false
	f.resumes++
}

func (f *fakeTarget) Paused() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused
}

func (f *fakeTarget) Processed() int64 { return f.processed }
func (f *fakeTarget) Rejected() int64  { return f.rejected }

var info = control.Info{
	Service:       "validate",
	Version:       "abc123",
	ConsumerGroup: "dmic-validate",
	InputTopics:   []string{"dmic.raw", "dmic.extra"},
	OutputTopics:  []string{"dmic.validated", "dmic.rejected"},
}

// serve starts a real gRPC server on a loopback port with the control
// services registered and returns a client connection to it.
func serve(t *testing.T, target control.Controllable, lag control.LagFunc) *grpc.ClientConn {
	t.Helper()
	return serveChecked(t, target, lag, nil)
}

// serveChecked is serve with the service's health, kept in step by Watch.
func serveChecked(t *testing.T, target control.Controllable, lag control.LagFunc, checks *control.Checks) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	if checks == nil {
		checks = control.NewChecks()
	}
	cs, hs := control.Register(gs, info, target, lag, checks, slog.New(slog.NewTextHandler(io.Discard, nil)))
	wctx, stopWatch := context.WithCancel(context.Background())
	t.Cleanup(stopWatch)
	go cs.Watch(wctx, hs, checks, 10*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestGetStatus(t *testing.T) {
	boom := errors.New("broker down")
	tests := []struct {
		name    string
		lag     control.LagFunc
		wantLag int64
	}{
		{"lag reported", func(ctx context.Context) (int64, error) {
			if _, ok := ctx.Deadline(); !ok {
				return 0, errors.New("lag called without a deadline")
			}
			return 42, nil
		}, 42},
		{"lag fails", func(context.Context) (int64, error) { return 7, boom }, -1},
		{"no lag function", nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := &fakeTarget{processed: 1000, rejected: 3, paused: true}
			c := dmicv1.NewControlServiceClient(serve(t, target, tt.lag))
			st, err := c.GetStatus(ctx(t), &dmicv1.GetStatusRequest{})
			if err != nil {
				t.Fatalf("GetStatus: %v", err)
			}
			if st.GetService() != "validate" || st.GetVersion() != "abc123" || st.GetConsumerGroup() != "dmic-validate" {
				t.Errorf("service, version, group = %q, %q, %q", st.GetService(), st.GetVersion(), st.GetConsumerGroup())
			}
			if st.GetProcessed() != 1000 || st.GetRejected() != 3 || !st.GetPaused() {
				t.Errorf("processed, rejected, paused = %d, %d, %v; want 1000, 3, true", st.GetProcessed(), st.GetRejected(), st.GetPaused())
			}
			if st.GetInputTopic() != "dmic.raw,dmic.extra" {
				t.Errorf("input topic = %q, want dmic.raw,dmic.extra", st.GetInputTopic())
			}
			if !slices.Equal(st.GetOutputTopics(), info.OutputTopics) {
				t.Errorf("output topics = %v, want %v", st.GetOutputTopics(), info.OutputTopics)
			}
			if st.GetConsumerLag() != tt.wantLag {
				t.Errorf("consumer lag = %d, want %d", st.GetConsumerLag(), tt.wantLag)
			}
			if st.GetUptimeSeconds() < 0 || st.GetUptimeSeconds() > 60 {
				t.Errorf("uptime = %ds, want a few seconds at most", st.GetUptimeSeconds())
			}
		})
	}
}

func TestPauseResume(t *testing.T) {
	target := &fakeTarget{}
	c := dmicv1.NewControlServiceClient(serve(t, target, nil))
	p, err := c.Pause(ctx(t), &dmicv1.PauseRequest{})
	if err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if !p.GetPaused() || !target.Paused() || target.pauses != 1 {
		t.Errorf("after Pause: reply %v, target paused %v (%d calls); want paused", p.GetPaused(), target.Paused(), target.pauses)
	}
	st, err := c.GetStatus(ctx(t), &dmicv1.GetStatusRequest{})
	if err != nil || !st.GetPaused() {
		t.Errorf("status after Pause: paused %v, err %v", st.GetPaused(), err)
	}
	r, err := c.Resume(ctx(t), &dmicv1.ResumeRequest{})
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if r.GetPaused() || target.Paused() || target.resumes != 1 {
		t.Errorf("after Resume: reply %v, target paused %v (%d calls); want running", r.GetPaused(), target.Paused(), target.resumes)
	}
}

func TestHealth(t *testing.T) {
	h := healthpb.NewHealthClient(serve(t, &fakeTarget{}, nil))
	for _, svc := range []string{"", dmicv1.ControlService_ServiceDesc.ServiceName} {
		resp, err := h.Check(ctx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("Check(%q): %v", svc, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, want SERVING", svc, resp.GetStatus())
		}
	}
}

func TestReflectionListsControlService(t *testing.T) {
	rc := reflectionpb.NewServerReflectionClient(serve(t, &fakeTarget{}, nil))
	stream, err := rc.ServerReflectionInfo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"dmic.v1.ControlService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, want %s among them", names, want)
		}
	}
}

// stuckTarget is a Controllable that reports its own health and progress,
// as the pipeline runner does.
type stuckTarget struct {
	fakeTarget
	mu     sync.Mutex
	reason string
	last   time.Time
}

func (s *stuckTarget) Health() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason == "", s.reason
}

func (s *stuckTarget) LastProgress() time.Time { return s.last }

func (s *stuckTarget) set(reason string) {
	s.mu.Lock()
	s.reason = reason
	s.mu.Unlock()
}

// TestHealthFollowsTheRunnerAndDependencies: gRPC health and GetStatus turn
// NOT_SERVING, with the reason, while the runner cannot make progress or a
// dependency is down, and SERVING again when both recover (issue 10: during
// a ClickHouse outage health said SERVING).
func TestHealthFollowsTheRunnerAndDependencies(t *testing.T) {
	checks := control.NewChecks()
	target := &stuckTarget{last: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	conn := serveChecked(t, target, nil, checks)
	h, c := healthpb.NewHealthClient(conn), dmicv1.NewControlServiceClient(conn)
	expect := func(want healthpb.HealthCheckResponse_ServingStatus, reasons ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := h.Check(ctx(t), &healthpb.HealthCheckRequest{})
			if err == nil && resp.GetStatus() == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health %v (%v), want %v", resp.GetStatus(), err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		st, err := c.GetStatus(ctx(t), &dmicv1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetServing() != (want == healthpb.HealthCheckResponse_SERVING) {
			t.Errorf("status serving %v, health %v", st.GetServing(), want)
		}
		for _, r := range reasons {
			if !strings.Contains(st.GetHealthReason(), r) {
				t.Errorf("status reason %q does not say %q", st.GetHealthReason(), r)
			}
		}
		if !st.GetLastProgressTime().AsTime().Equal(target.last) {
			t.Errorf("last progress %v, want %v", st.GetLastProgressTime().AsTime(), target.last)
		}
	}
	expect(healthpb.HealthCheckResponse_SERVING)
	target.set("cannot write a batch: 5 attempts")
	expect(healthpb.HealthCheckResponse_NOT_SERVING, "runner: cannot write a batch")
	checks.Set("clickhouse", false, "waiting for clickhouse (attempt 3)")
	expect(healthpb.HealthCheckResponse_NOT_SERVING, "runner: cannot write", "clickhouse: waiting")
	target.set("")
	expect(healthpb.HealthCheckResponse_NOT_SERVING, "clickhouse: waiting")
	checks.Set("clickhouse", true, "")
	expect(healthpb.HealthCheckResponse_SERVING)
}
