// Package audit keeps the security audit trail on dmic.audit: every refusal
// of a caller, and every authorised action that changes something, with who
// (organisation, role, holder, certificate serial), what, when and the
// outcome. An entry never holds a secret or a patient identifier: actions are
// named by method or route, subjects by id (a submission, a specification
// version, a key version), refusals by a fixed reason and the message the
// caller was given.
//
// An action is recorded before it is carried out (Record, synchronous: an
// action that cannot be recorded is not carried out), and how it ended
// afterwards. Refusals are recorded without holding up the refusal (Enqueue):
// a bounded queue that a flood of anonymous calls can fill, but never turn
// into a flood of waiting requests; what it drops is counted
// (dmic_audit_dropped_total) and logged.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// Outcomes of an entry.
const (
	// Refused: the caller was refused (not authenticated, not authorised,
	// or the content was not theirs to send). Reason says why.
	Refused = "refused"
	// Allowed: the caller is authorised and the action is about to be
	// carried out.
	Allowed = "allowed"
	// Done and Failed: how an allowed action ended. Failed names the error
	// code in Reason.
	Done   = "done"
	Failed = "failed"
)

// Entry is one line of the audit trail.
type Entry struct {
	// ID names the call: the entries of one call (allowed, then done) share it.
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Service  string    `json:"service"`
	Protocol string    `json:"protocol"` // grpc, http
	// Action is the gRPC method (/dmic.v1.ControlService/Pause) or the HTTP
	// route (POST /v1/submissions).
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	// Reason is a fixed code: why a call was refused, or how it failed.
	Reason string `json:"reason,omitempty"`
	// Detail is the message the caller was given (bounded), with anything
	// shaped like a patient identifier redacted (Redact).
	Detail string `json:"detail,omitempty"`
	// Caller is who was authenticated; nil when nobody was.
	Caller *identity.Identity `json:"caller,omitempty"`
	// Peer is the caller's network address.
	Peer string `json:"peer,omitempty"`
	// Subject is what the action was about: a submission id, a stage's
	// input position, a specification version, a key version.
	Subject string `json:"subject,omitempty"`
}

// Recorder records entries: Record before an action (an error means it must
// not be carried out), Enqueue for what must not wait.
type Recorder interface {
	Record(ctx context.Context, e Entry) error
	Enqueue(e Entry)
}

// Publisher is where entries go: a control log's Publish (controllog.Log;
// the Kafka adapter is controllog/kafkalog).
type Publisher interface {
	Publish(ctx context.Context, key string, value []byte, headers ...pipeline.Header) error
}

// QueueSize bounds the entries waiting to be written by Run.
const QueueSize = 1024

// maxDetail bounds the message kept in an entry.
const maxDetail = 1000

// Log writes entries of one service to a Publisher.
type Log struct {
	pub     Publisher
	service string
	clock   clock.Clock
	lg      *slog.Logger
	queue   chan Entry
	dropped prometheus.Counter
	failed  prometheus.Counter
}

var _ Recorder = (*Log)(nil)

// New writes the entries of service to pub, stamped by clk.
func New(pub Publisher, service string, clk clock.Clock, lg *slog.Logger, reg prometheus.Registerer) *Log {
	l := &Log{pub: pub, service: service, clock: clk, lg: lg, queue: make(chan Entry, QueueSize),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "dmic_audit_dropped_total",
			Help: "Audit entries of refusals dropped because the queue to the audit topic was full."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "dmic_audit_write_failures_total",
			Help: "Audit entries that could not be written to the audit topic."}),
	}
	reg.MustRegister(l.dropped, l.failed)
	return l
}

// NewID is a random id for the entries of one call.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// fill completes an entry: id, time, service, bounded and redacted detail.
func (l *Log) fill(e Entry) Entry {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = l.clock.Now().UTC()
	}
	if e.Service == "" {
		e.Service = l.service
	}
	// Redacted before it is bounded: a cut must not leave part of an
	// identifier that the whole would have matched.
	e.Detail = Redact(e.Detail)
	if len(e.Detail) > maxDetail {
		e.Detail = strings.ToValidUTF8(e.Detail[:maxDetail], "") + "…"
	}
	return e
}

// Record writes e and returns once the audit topic has it.
func (l *Log) Record(ctx context.Context, e Entry) error {
	e = l.fill(e)
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit entry: %w", err)
	}
	if err := l.pub.Publish(ctx, e.Service, doc); err != nil {
		l.failed.Inc()
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Enqueue queues e for Run to write, or drops it (counted and logged) when
// the queue is full.
func (l *Log) Enqueue(e Entry) {
	e = l.fill(e)
	select {
	case l.queue <- e:
	default:
		l.dropped.Inc()
		l.lg.Warn("audit queue full: entry dropped", "audit_id", e.ID, "action", e.Action, "outcome", e.Outcome, "reason", e.Reason)
	}
}

// Run writes queued entries until ctx ends, then what is still queued, for a
// few seconds at most.
func (l *Log) Run(ctx context.Context) {
	write := func(ctx context.Context, e Entry) {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := l.Record(wctx, e); err != nil {
			l.lg.Error("audit entry not written", "audit_id", e.ID, "action", e.Action, "outcome", e.Outcome, "err", err)
		}
	}
	for {
		select {
		case e := <-l.queue:
			write(ctx, e)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			for {
				select {
				case e := <-l.queue:
					write(dctx, e)
				default:
					return
				}
			}
		}
	}
}
