package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
)

// claimWait bounds how long a submission waits to read its own start back
// from the attempt log (normally milliseconds): longer means the log is not
// being followed, and the provider is asked to resend later.
const claimWait = 30 * time.Second

// ResendKeepsReceived is how long after a submission's first attempt a
// resend still takes the first attempt's received time: well inside the
// day by which the broker bounds how old a record's timestamp may be.
const ResendKeepsReceived = 12 * time.Hour

// Attempts is ingest's memory of submissions, shared by every instance
// through the attempt log (dmic.submission-attempts, one partition, kept
// whole): each attempt to store a submission writes its start there and,
// later, how it ended. Every instance follows the log, so all of them agree,
// in the log's order, on
//
//   - which submission a scope and key belong to: the first start wins, and a
//     start with other content under the same key is a conflict (the caller
//     refuses it, and it is not an attempt);
//   - the submission's received time (its first attempt's, for a resend
//     within ResendKeepsReceived of it), so that a resend is judged under the
//     same specification and counts in the same month;
//   - the number of each attempt;
//   - which attempts never ended (ingest stopped mid-way), to abandon.
//
// A claim is only decided once the instance has read its own start back from
// the log, so two instances taking one key at the same moment decide alike.
type Attempts struct {
	log controllog.Log
	lg  *slog.Logger

	mu       sync.Mutex
	scopes   map[string]*claim         // scope and identity -> the submission holding it
	subs     map[string]*subAttempts   // submission id -> its attempts
	waiting  map[string]chan<- Claimed // nonce of a start -> the claim waiting for it
	caughtUp bool
}

type claim struct {
	id, digest string
	received   *timestamppb.Timestamp
}

type subAttempts struct {
	first    *validationv1.SubmissionReceipt // the first start
	attempts int64
	// open holds the start receipts of the attempts that have not ended, by
	// attempt number: all that is kept of an attempt once it has.
	open map[int64]*validationv1.SubmissionReceipt
}

// Claimed is what the log decided of a start.
type Claimed struct {
	// Receipt is the start with the submission's id, received time and this
	// attempt's number filled in; nil on a conflict.
	Receipt *validationv1.SubmissionReceipt
	// Conflict is the start that holds the key with other content.
	Conflict *validationv1.SubmissionReceipt
}

// NewAttempts keeps the attempt log on log.
func NewAttempts(log controllog.Log, lg *slog.Logger) *Attempts {
	return &Attempts{log: log, lg: lg, scopes: map[string]*claim{}, subs: map[string]*subAttempts{}, waiting: map[string]chan<- Claimed{}}
}

// Follow applies every entry on the log, then new ones, until ctx ends.
// caughtUp is called once the entries present at start are applied.
func (a *Attempts) Follow(ctx context.Context, caughtUp func()) error {
	return controllog.Follow(ctx, a.log, a.apply, func() {
		a.mu.Lock()
		a.caughtUp = true
		a.mu.Unlock()
		caughtUp()
	})
}

func (a *Attempts) apply(offset int64, value []byte) {
	e := &validationv1.SubmissionAttempt{}
	if err := proto.Unmarshal(value, e); err != nil || e.GetReceipt() == nil {
		a.lg.Error("attempt log entry not applied: not a dmic.validation.v1.SubmissionAttempt", "offset", offset)
		return
	}
	r := e.GetReceipt()
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r.GetState() {
	case validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING:
		res := a.start(r)
		if ch, ok := a.waiting[e.GetNonce()]; ok && e.GetNonce() != "" {
			ch <- res
			delete(a.waiting, e.GetNonce())
		}
	case validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED, validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED:
		if s := a.subs[r.GetSubmissionId()]; s != nil {
			delete(s.open, r.GetAttempt())
		}
	}
}

// start applies a start entry; a.mu is held.
func (a *Attempts) start(r *validationv1.SubmissionReceipt) Claimed {
	scope := scopeOf(r)
	c := a.scopes[scope]
	if c == nil {
		c = &claim{id: r.GetSubmissionId(), digest: r.GetContentSha256(), received: r.GetReceivedTime()}
		a.scopes[scope] = c
		a.subs[c.id] = &subAttempts{first: r, open: map[int64]*validationv1.SubmissionReceipt{}}
	}
	if c.digest != r.GetContentSha256() {
		return Claimed{Conflict: a.subs[c.id].first}
	}
	s := a.subs[c.id]
	got := proto.Clone(r).(*validationv1.SubmissionReceipt)
	s.attempts++
	got.SubmissionId, got.Attempt = c.id, s.attempts
	// A later resend is received when it is sent: its records carry their
	// received time as their Kafka timestamp, which the broker refuses when
	// it is too old (log.message.timestamp.before.max.ms, one day in
	// docker-compose.yml), and which picks the specification version.
	if got.GetReceivedTime().AsTime().Sub(c.received.AsTime()) <= ResendKeepsReceived {
		got.ReceivedTime = c.received
	}
	s.open[got.Attempt] = got
	return Claimed{Receipt: got}
}

// Claim writes the start of an attempt (r: a start receipt with this
// attempt's received and attempt time) and returns what the log decided once
// this instance has read it back.
func (a *Attempts) Claim(ctx context.Context, r *validationv1.SubmissionReceipt) (Claimed, error) {
	var n [16]byte
	_, _ = rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	ch := make(chan Claimed, 1)
	a.mu.Lock()
	a.waiting[nonce] = ch
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.waiting, nonce)
		a.mu.Unlock()
	}()
	if err := a.publish(ctx, r, nonce); err != nil {
		return Claimed{}, err
	}
	timer := time.NewTimer(claimWait)
	defer timer.Stop()
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		return Claimed{}, fmt.Errorf("attempt log: %w", ctx.Err())
	case <-timer.C:
		return Claimed{}, errors.New("attempt log: the start was not read back in time")
	}
}

// End writes how an attempt ended: r is its final receipt (RECEIVED) or an
// ABANDONED one.
func (a *Attempts) End(ctx context.Context, r *validationv1.SubmissionReceipt) error {
	return a.publish(ctx, r, "")
}

func (a *Attempts) publish(ctx context.Context, r *validationv1.SubmissionReceipt, nonce string) error {
	v, err := proto.Marshal(&validationv1.SubmissionAttempt{Receipt: r, Nonce: nonce})
	if err != nil {
		return fmt.Errorf("attempt log: %w", err)
	}
	return a.log.Publish(ctx, r.GetSubmissionId(), v)
}

// Unended returns a receipt ABANDONED for every attempt that started before
// cutoff and has not ended, oldest first, leaving out those for which
// running is true (attempts this instance is storing). Before the log is
// caught up it returns none: an end may not have been read yet.
func (a *Attempts) Unended(cutoff time.Time, running func(id string, attempt int64) bool) []*validationv1.SubmissionReceipt {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.caughtUp {
		return nil
	}
	var out []*validationv1.SubmissionReceipt
	for _, id := range slices.Sorted(maps.Keys(a.subs)) {
		for n, r := range a.subs[id].open {
			if !r.GetAttemptTime().AsTime().Before(cutoff) || running(id, n) {
				continue
			}
			end := proto.Clone(r).(*validationv1.SubmissionReceipt)
			end.State = validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED
			out = append(out, end)
		}
	}
	slices.SortFunc(out, func(x, y *validationv1.SubmissionReceipt) int {
		return x.GetAttemptTime().AsTime().Compare(y.GetAttemptTime().AsTime())
	})
	return out
}

// isCaughtUp reports whether the log has been read to where it ended when
// it was first followed.
func (a *Attempts) isCaughtUp() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.caughtUp
}
