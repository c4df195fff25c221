package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// LatencyResult is the latency from ingest's acknowledgement of a submission
// to all of its rows being queryable in ClickHouse, over the records of a
// steady feed.
type LatencyResult struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	// Rate is the feed rate achieved, in records/s (TargetRate was asked for).
	Rate        float64 `json:"rate"`
	TargetRate  float64 `json:"target_rate"`
	Records     int     `json:"records"`
	Submissions int     `json:"submissions"`
	// Unseen records never became visible before the harness stopped waiting;
	// they are left out of the percentiles.
	Unseen int `json:"unseen_records"`
}

// percentile is the nearest-rank percentile p (0 < p <= 100) of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// submissionSeen is one submission of the steady feed.
type submissionSeen struct {
	ack    ack
	lines  int
	seenAt time.Time
}

// latencyRecords expands each seen submission into one latency (ms) per
// record, sorted, and counts the records of submissions never seen.
func latencyRecords(subs []*submissionSeen) (sorted []float64, unseen int) {
	for _, s := range subs {
		if s.seenAt.IsZero() {
			unseen += s.lines
			continue
		}
		ms := float64(s.seenAt.Sub(s.ack.At).Microseconds()) / 1000
		for range s.lines {
			sorted = append(sorted, ms)
		}
	}
	slices.Sort(sorted)
	return sorted, unseen
}

// latencyFeed sends w's lines at rate records/s in a submission per key every
// tick, and polls ClickHouse every poll for the submissions that are fully
// visible.
type latencyFeed struct {
	client   *ingestClient
	conn     driver.Conn
	database string
	log      *slog.Logger
	rate     float64
	tick     time.Duration
	poll     time.Duration
	// drain bounds the wait for the last submissions after the feed ends.
	drain time.Duration
	// Activity date range of the feed's records: lets ClickHouse prune every
	// partition the throughput run filled, so that polling stays cheap.
	dateMin, dateMax string
}

func (f *latencyFeed) run(ctx context.Context, w *workload) (LatencyResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		subs    []*submissionSeen
		postErr error
		posts   sync.WaitGroup
	)
	sem := make(chan struct{}, 32)
	feedDone := make(chan struct{})
	start := time.Now()
	var end time.Time
	go func() {
		defer close(feedDone)
		t := time.NewTicker(f.tick)
		defer t.Stop()
		sent := 0
		for sent < len(w.lines) {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			due := min(len(w.lines), int(f.rate*time.Since(start).Seconds()))
			if due <= sent {
				continue
			}
			groups := map[uint16][]int32{}
			var order []uint16
			for i := sent; i < due; i++ {
				k := w.keyOf[i]
				if _, ok := groups[k]; !ok {
					order = append(order, k)
				}
				groups[k] = append(groups[k], int32(i))
			}
			sent = due
			for _, k := range order {
				idx := groups[k]
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				posts.Add(1)
				go func() {
					defer posts.Done()
					defer func() { <-sem }()
					var buf bytes.Buffer
					a, err := f.client.post(ctx, w.keys[k], body(&buf, w.lines, idx))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						if postErr == nil {
							postErr = err
						}
						return
					}
					subs = append(subs, &submissionSeen{ack: a, lines: len(idx)})
				}()
			}
		}
		end = time.Now()
		posts.Wait()
	}()

	var drainBy time.Time
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return LatencyResult{}, ctx.Err()
		case <-t.C:
		}
		mu.Lock()
		if postErr != nil {
			mu.Unlock()
			return LatencyResult{}, postErr
		}
		pending := map[string]*submissionSeen{}
		var ids []string
		for _, s := range subs {
			if s.seenAt.IsZero() {
				pending[s.ack.ID] = s
				ids = append(ids, s.ack.ID)
			}
		}
		mu.Unlock()
		done := false
		select {
		case <-feedDone:
			done = true
		default:
		}
		if done && drainBy.IsZero() {
			drainBy = time.Now().Add(f.drain)
		}
		if done && (len(ids) == 0 || time.Now().After(drainBy)) {
			break
		}
		if len(ids) == 0 {
			continue
		}
		if err := f.check(ctx, ids, pending); err != nil {
			return LatencyResult{}, err
		}
	}

	mu.Lock()
	defer mu.Unlock()
	sorted, unseen := latencyRecords(subs)
	r := LatencyResult{TargetRate: f.rate, Submissions: len(subs), Records: len(sorted) + unseen, Unseen: unseen}
	if d := end.Sub(start).Seconds(); d > 0 {
		r.Rate = float64(r.Records) / d
	}
	r.P50, r.P95, r.P99 = percentile(sorted, 50), percentile(sorted, 95), percentile(sorted, 99)
	if len(sorted) > 0 {
		r.Max = sorted[len(sorted)-1]
	}
	if unseen > 0 {
		f.log.Warn("records of the steady feed never became visible", "records", unseen)
	}
	return r, nil
}

// check marks the pending submissions whose rows are all in the activity
// table. Rows are counted without FINAL: a replayed row only adds to the
// count, and a submission is complete once it has at least as many rows as
// ingest accepted.
func (f *latencyFeed) check(ctx context.Context, ids []string, pending map[string]*submissionSeen) error {
	q := fmt.Sprintf("SELECT submission_id, count() FROM %s.activity WHERE activity_date >= toDate(?) AND activity_date <= toDate(?) AND submission_id IN ? GROUP BY submission_id", f.database)
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	set := clickhouse.GroupSet{Value: make([]any, len(ids))}
	for i, id := range ids {
		set.Value[i] = id
	}
	rows, err := f.conn.Query(qctx, q, f.dateMin, f.dateMax, set)
	if err != nil {
		return fmt.Errorf("poll visible submissions: %w", err)
	}
	defer rows.Close()
	type hit struct {
		id string
		n  uint64
	}
	var hits []hit
	for rows.Next() {
		var h hit
		if err := rows.Scan(&h.id, &h.n); err != nil {
			return fmt.Errorf("poll visible submissions: %w", err)
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("poll visible submissions: %w", err)
	}
	now := time.Now()
	for _, h := range hits {
		if s := pending[h.id]; s != nil && int64(h.n) >= s.ack.Accepted {
			s.seenAt = now
		}
	}
	return nil
}
