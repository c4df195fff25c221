package pipeline

import (
	"fmt"
	"time"
)

// trouble is the step of a batch the runner is retrying.
type trouble struct {
	op       string // prepare (BatchStarter), write, finish (BatchEnder), commit
	since    time.Time
	attempts int
	err      string
	// first is where the batch starts (topic/partition@offset), so that an
	// operator can find the stuck record.
	first string
}

func (r *Runner) noteTrouble(op string, units []unit, attempt int, err error) {
	r.troubleMu.Lock()
	defer r.troubleMu.Unlock()
	if r.trouble.since.IsZero() || r.trouble.op != op {
		r.trouble = trouble{op: op, since: time.Now()}
		if len(units) > 0 {
			r.trouble.first = units[0].msg.Position().String()
		}
	}
	r.trouble.attempts = attempt
	r.trouble.err = shorten(err)
	serving, _ := r.healthLocked()
	r.metrics.healthy.WithLabelValues(r.cfg.Stage).Set(boolGauge(serving))
}

func (r *Runner) clearTrouble() {
	r.troubleMu.Lock()
	defer r.troubleMu.Unlock()
	if !r.trouble.since.IsZero() {
		r.log.Info("recovered", "op", r.trouble.op, "attempts", r.trouble.attempts, "after", time.Since(r.trouble.since).Round(time.Millisecond))
	}
	r.trouble = trouble{}
	r.metrics.healthy.WithLabelValues(r.cfg.Stage).Set(1)
}

// Health says whether the stage is making progress, and if not, why: it has
// failed to prepare, write, finish or commit the same batch for
// UnhealthyAfter, or UnhealthyAttempts times. A stage that is merely idle or paused is healthy.
func (r *Runner) Health() (serving bool, reason string) {
	r.troubleMu.Lock()
	defer r.troubleMu.Unlock()
	return r.healthLocked()
}

func (r *Runner) healthLocked() (bool, string) {
	t := r.trouble
	if t.since.IsZero() {
		return true, ""
	}
	failing := time.Since(t.since)
	if failing < r.cfg.UnhealthyAfter && t.attempts < r.cfg.UnhealthyAttempts {
		return true, ""
	}
	where := ""
	if t.first != "" {
		where = " (batch from " + t.first + ")"
	}
	return false, fmt.Sprintf("cannot %s a batch%s: %d attempts over %s; last error: %s",
		t.op, where, t.attempts, failing.Round(time.Second), t.err)
}

// LastProgress is when a batch was last committed; zero if never.
func (r *Runner) LastProgress() time.Time {
	if n := r.lastProgress.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
