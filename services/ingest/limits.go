package ingest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/limits"
)

// Limits keep one authenticated caller from taking ingest down (issue 12,
// docs/submitting.md "Limits"): caps on a submission's size, on the results
// its answer lists, and on how often each organisation may submit.
type Limits struct {
	// MaxBodyBytes caps a submission's body (HTTP) or the bytes of its
	// records (gRPC).
	MaxBodyBytes int64
	// MaxRecords caps its records: over HTTP the lines of the body after a
	// CSV header, over gRPC the json_records.
	MaxRecords int64
	// AnswerResults is how many results with failures an answer lists, and
	// how many accepted ones with results=all: the answer's size is bounded
	// whatever was sent, and the submission report has every failure.
	AnswerResults int
	// Rate is the submissions per second each organisation may start, with
	// bursts of Burst; 0 turns the limit off.
	Rate  float64
	Burst int
}

// Defaults of the limits (the flags' defaults).
const (
	DefaultAnswerResults = 1000
	// A provider sends a few files a day; the national exchange and a
	// system catching up send more, in bursts. Five a second sustained is
	// far above either and still stops a loop that resends at once.
	DefaultSubmissionRate  = 5.0
	DefaultSubmissionBurst = 50
)

// DefaultLimits are the limits ingest runs with unless told otherwise.
func DefaultLimits() Limits {
	return Limits{MaxBodyBytes: limits.MaxSubmissionBytes, MaxRecords: limits.MaxSubmissionRecords,
		AnswerResults: DefaultAnswerResults, Rate: DefaultSubmissionRate, Burst: DefaultSubmissionBurst}
}

// RegisterFlags registers the limits' flags, with l's values as defaults.
func (l *Limits) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&l.MaxBodyBytes, "max-submission-bytes", l.MaxBodyBytes,
		"Largest submission body (HTTP) or sum of its records (gRPC), in bytes; larger is refused with 413 / RESOURCE_EXHAUSTED.")
	fs.Int64Var(&l.MaxRecords, "max-submission-records", l.MaxRecords,
		"Most records in one submission (HTTP: lines after a CSV header); more is refused with 413 / RESOURCE_EXHAUSTED.")
	fs.IntVar(&l.AnswerResults, "answer-results", l.AnswerResults,
		"Most results with failures (and accepted ones, with results=all) a submission's answer lists; the counts are always complete and the report has every failure.")
	fs.Float64Var(&l.Rate, "submission-rate", l.Rate,
		"Submissions per second each organisation may start (0: no limit); more is refused with 429 / RESOURCE_EXHAUSTED and a Retry-After.")
	fs.IntVar(&l.Burst, "submission-burst", l.Burst, "Submissions an organisation may start at once, above -submission-rate.")
}

// Validate reports every problem at once.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxBodyBytes < limits.MaxRecordBytes {
		errs = append(errs, fmt.Errorf("-max-submission-bytes: %d is below one record (%d)", l.MaxBodyBytes, limits.MaxRecordBytes))
	}
	if l.MaxRecords < 1 {
		errs = append(errs, fmt.Errorf("-max-submission-records: %d must be at least 1", l.MaxRecords))
	}
	if l.AnswerResults < 1 {
		errs = append(errs, fmt.Errorf("-answer-results: %d must be at least 1", l.AnswerResults))
	}
	if l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) {
		errs = append(errs, fmt.Errorf("-submission-rate: %v must be 0 (no limit) or more", l.Rate))
	}
	if l.Rate > 0 && l.Burst < 1 {
		errs = append(errs, fmt.Errorf("-submission-burst: %d must be at least 1 while -submission-rate is set", l.Burst))
	}
	return errors.Join(errs...)
}

// WithLimits sets the limits (DefaultLimits otherwise).
func WithLimits(l Limits) Option { return func(s *Service) { s.limits = l } }

// The reasons of ingest's limit refusals (dmic_ingest_refusals_total,
// dmic_auth_refusals_total and the audit trail).
const (
	ReasonBodyTooLarge   = "body-too-large"
	ReasonTooManyRecords = "too-many-records"
	ReasonRateLimited    = "rate-limited"
)

// limitRefusal is a submission refused by a limit: HTTP status, gRPC code,
// the message both answer and, for the rate, when to retry.
type limitRefusal struct {
	reason     string
	message    string
	retryAfter time.Duration
}

func (r *limitRefusal) Error() string { return r.message }

// httpStatus is the refusal's HTTP status.
func (r *limitRefusal) httpStatus() int {
	if r.reason == ReasonRateLimited {
		return 429
	}
	return 413
}

// retryAfterSeconds is Retry-After: whole seconds, at least 1.
func (r *limitRefusal) retryAfterSeconds() string {
	return strconv.FormatInt(int64(max(1, math.Ceil(r.retryAfter.Seconds()))), 10)
}

// grpcStatus is the refusal as gRPC answers it: RESOURCE_EXHAUSTED, with
// google.rpc.RetryInfo when the caller should wait.
func (r *limitRefusal) grpcStatus() error {
	st := status.New(codes.ResourceExhausted, r.message)
	if r.retryAfter > 0 {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.retryAfter)}); err == nil {
			st = d
		}
	}
	return st.Err()
}

// refuseLimit counts a limit refusal and has the authorisation layer audit
// it like every other refusal (access.Refuse: dmic_auth_refusals_total and
// dmic.audit). The layer's own answer (403) is not the one given: a limit is
// answered 413 or 429.
func (s *Service) refuseLimit(ctx context.Context, r *limitRefusal) *limitRefusal {
	s.mRefusals.WithLabelValues(r.reason).Inc()
	_ = access.Refuse(ctx, r.reason, r.message)
	return r
}

func bodyTooLarge(max int64) *limitRefusal {
	return &limitRefusal{reason: ReasonBodyTooLarge, message: fmt.Sprintf(
		"submission is larger than the %d-byte limit (-max-submission-bytes): split the file; nothing of it was stored", max)}
}

func tooManyRecords(max int64) *limitRefusal {
	return &limitRefusal{reason: ReasonTooManyRecords, message: fmt.Sprintf(
		"submission has more than the %d-record limit (-max-submission-records): split the file; nothing of it was stored", max)}
}

// rateLimiter is a token bucket per organisation (golang.org/x/time/rate),
// read by an injected clock so that a test moves time rather than sleeps.
type rateLimiter struct {
	limit rate.Limit
	burst int
	clock clock.Clock

	mu    sync.Mutex
	byOrg map[string]*rate.Limiter
}

// maxTracked bounds the buckets kept: organisations are authenticated, so a
// few hundred; past this the full buckets (idle callers) are dropped.
const maxTracked = 10000

func newRateLimiter(perSecond float64, burst int, c clock.Clock) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, clock: c, byOrg: map[string]*rate.Limiter{}}
}

// take takes a token of org's bucket, or says how long until there is one.
// A nil limiter allows everything.
func (l *rateLimiter) take(org string) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.byOrg[org]
	if b == nil {
		if len(l.byOrg) >= maxTracked {
			for k, v := range l.byOrg {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.byOrg, k)
				}
			}
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.byOrg[org] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		// Refused: the token is given back, so that a caller who keeps
		// knocking is not pushed further back each time.
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// checkRate refuses a submission of org over its rate.
func (s *Service) checkRate(ctx context.Context, org string) *limitRefusal {
	wait, ok := s.rate.take(org)
	if ok {
		return nil
	}
	r := &limitRefusal{reason: ReasonRateLimited, retryAfter: wait, message: fmt.Sprintf(
		"%s has started more than %v submissions a second (burst %d; -submission-rate, -submission-burst): retry after %s; nothing of this one was stored",
		org, s.limits.Rate, s.limits.Burst, wait.Round(time.Millisecond))}
	return s.refuseLimit(ctx, r)
}
