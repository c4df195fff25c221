package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// counterSample is one reading of a service's processed counter.
type counterSample struct {
	at time.Time
	n  int64
}

// StageRate is a stage's throughput over its busy interval.
type StageRate struct {
	Records       int64   `json:"records"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_s"`
}

// busyRate is the rate of a counter over its busy interval: from the last
// sample before the counter first moved to the first sample at which it had
// reached its final value. With samples a second apart the interval is longer
// than the true busy time by up to two sampling periods, so the rate is a
// slight underestimate, by at most 2 s over the stage's busy time.
func busyRate(samples []counterSample) StageRate {
	if len(samples) < 2 {
		return StageRate{}
	}
	first := samples[0].n
	start := -1
	for i := 1; i < len(samples); i++ {
		if samples[i].n != first {
			start = i - 1
			break
		}
	}
	if start < 0 {
		return StageRate{}
	}
	final := samples[len(samples)-1].n
	end := len(samples) - 1
	for i := start + 1; i < len(samples); i++ {
		if samples[i].n == final {
			end = i
			break
		}
	}
	r := StageRate{Records: final - samples[start].n, Seconds: samples[end].at.Sub(samples[start].at).Seconds()}
	if r.Seconds > 0 {
		r.RecordsPerSec = float64(r.Records) / r.Seconds
	}
	return r
}

// statusClients calls dmic.v1.ControlService/GetStatus on each service.
type statusClients struct {
	names   []string
	conns   []*grpc.ClientConn
	clients []dmicv1.ControlServiceClient
}

func dialStatus(names []string, ports map[string]int, creds grpc.DialOption) (*statusClients, error) {
	s := &statusClients{}
	for _, n := range names {
		conn, err := grpc.NewClient("localhost:"+strconv.Itoa(ports[n]), creds)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("control client of %s: %w", n, err)
		}
		s.names = append(s.names, n)
		s.conns = append(s.conns, conn)
		s.clients = append(s.clients, dmicv1.NewControlServiceClient(conn))
	}
	return s, nil
}

func (s *statusClients) close() {
	for _, c := range s.conns {
		c.Close()
	}
}

// status of service i.
func (s *statusClients) status(ctx context.Context, i int) (*dmicv1.GetStatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.clients[i].GetStatus(ctx, &dmicv1.GetStatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", s.names[i], err)
	}
	return st, nil
}

// ready waits until every service answers GetStatus.
func (s *statusClients) ready(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := range s.clients {
		for {
			_, err := s.status(ctx, i)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// sampler reads every service's processed counter once per period until
// stopped.
type sampler struct {
	clients *statusClients
	period  time.Duration
	mu      sync.Mutex
	samples [][]counterSample
	stop    chan struct{}
	done    chan struct{}
}

func startSampler(ctx context.Context, c *statusClients, period time.Duration) *sampler {
	s := &sampler{clients: c, period: period, samples: make([][]counterSample, len(c.names)),
		stop: make(chan struct{}), done: make(chan struct{})}
	s.sample(ctx)
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				s.sample(ctx)
				return
			case <-t.C:
				s.sample(ctx)
			}
		}
	}()
	return s
}

// sample reads all counters concurrently, so that one slow answer does not
// shift the others' timestamps. A failed read is skipped.
func (s *sampler) sample(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range s.clients.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := s.clients.status(ctx, i)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.samples[i] = append(s.samples[i], counterSample{at: time.Now(), n: st.GetProcessed()})
			s.mu.Unlock()
		}()
	}
	wg.Wait()
}

// finish takes a last sample and returns each stage's busy rate by name, and
// every sample as [seconds since t0, processed] pairs.
func (s *sampler) finish(t0 time.Time) (map[string]StageRate, map[string][][2]float64) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	rates, timeline := map[string]StageRate{}, map[string][][2]float64{}
	for i, n := range s.clients.names {
		rates[n] = busyRate(s.samples[i])
		for _, c := range s.samples[i] {
			timeline[n] = append(timeline[n], [2]float64{roundTenth(c.at.Sub(t0).Seconds()), float64(c.n)})
		}
	}
	return rates, timeline
}

func roundTenth(x float64) float64 { return math.Round(x*10) / 10 }
