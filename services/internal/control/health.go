package control

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// HealthReporter is a Controllable that can tell whether it is making
// progress (the pipeline runner).
type HealthReporter interface {
	Health() (serving bool, reason string)
}

// ProgressReporter is a Controllable that knows when it last made progress.
type ProgressReporter interface {
	LastProgress() time.Time
}

// Checks is a service's health: every part that can stop it making progress
// (the runner; a dependency it waits for at start) reports here, and the
// service serves only while all of them do. It is safe for concurrent use.
type Checks struct {
	mu     sync.Mutex
	funcs  map[string]func() (bool, string)
	states map[string]string // name -> reason, for parts set not serving
}

// NewChecks is a health with no parts: serving.
func NewChecks() *Checks {
	return &Checks{funcs: map[string]func() (bool, string){}, states: map[string]string{}}
}

// Add makes f a part of the health, asked each time the health is read.
func (c *Checks) Add(name string, f func() (bool, string)) {
	c.mu.Lock()
	c.funcs[name] = f
	c.mu.Unlock()
}

// Set records a part's state: not serving with the reason, or serving.
func (c *Checks) Set(name string, serving bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if serving {
		delete(c.states, name)
		return
	}
	c.states[name] = reason
}

// Status is serving when every part is, else the reasons of those that are
// not, each named ("clickhouse: waiting …; runner: cannot write …").
func (c *Checks) Status() (bool, string) {
	c.mu.Lock()
	var reasons []string
	for name, r := range c.states {
		reasons = append(reasons, name+": "+r)
	}
	funcs := make(map[string]func() (bool, string), len(c.funcs))
	for k, f := range c.funcs {
		funcs[k] = f
	}
	c.mu.Unlock()
	for name, f := range funcs {
		if ok, r := f(); !ok {
			reasons = append(reasons, name+": "+r)
		}
	}
	if len(reasons) == 0 {
		return true, ""
	}
	slices.Sort(reasons)
	return false, strings.Join(reasons, "; ")
}

// Watch keeps the gRPC health server in step with c, checking every
// interval, until ctx ends. A change of state is logged at once (not
// serving at ERROR, with the reason); a state that lasts is logged again
// every minute, not at every check.
func (s *Server) Watch(ctx context.Context, hs *health.Server, c *Checks, interval time.Duration) {
	const repeat = time.Minute
	var lastServing, first = true, true
	var logged time.Time
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		serving, reason := c.Status()
		if first || serving != lastServing {
			status := healthpb.HealthCheckResponse_SERVING
			if !serving {
				status = healthpb.HealthCheckResponse_NOT_SERVING
			}
			hs.SetServingStatus("", status)
			hs.SetServingStatus(serviceName, status)
		}
		switch {
		case !serving && (first || lastServing || time.Since(logged) >= repeat):
			s.log.Error("not serving", "reason", reason)
			logged = time.Now()
		case serving && !first && !lastServing:
			s.log.Info("serving again")
		}
		first, lastServing = false, serving
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
