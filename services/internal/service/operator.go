package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/control"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// AuditEntry is one operator's request on dmic.operator-audit. It holds
// positions and reasons, never a message's content.
type AuditEntry struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Service   string    `json:"service"`
	Group     string    `json:"group"`
	Action    string    `json:"action"` // skip, replay
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Reason    string    `json:"reason"`
	Peer      string    `json:"peer,omitempty"`
	// Caller is the authenticated operator who asked (organisation, role,
	// name, certificate serial).
	Caller *identity.Identity `json:"caller,omitempty"`
}

// operator carries out skips and replays on a stage's runner, recording
// each on the audit log first.
type operator struct {
	d      *Daemon
	group  string
	runner *pipeline.Runner
	audit  controllog.Log
}

var _ control.Operator = (*operator)(nil)

func (o *operator) record(ctx context.Context, req control.OperatorRequest) (AuditEntry, error) {
	e := AuditEntry{ID: req.ID, Time: o.d.Clock.Now().UTC(), Service: o.d.Name, Group: o.group, Action: req.Action,
		Topic: req.Topic, Partition: req.Partition, Offset: req.Offset, Reason: req.Reason, Peer: req.Peer, Caller: req.Caller}
	doc, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	if err := o.audit.Publish(ctx, o.group, doc); err != nil {
		return e, err
	}
	attrs := []any{"audit_id", e.ID, "action", e.Action, "position", position(req).String(), "reason", e.Reason, "peer", e.Peer}
	if e.Caller != nil {
		attrs = append(attrs, e.Caller.LogAttrs()...)
	}
	o.d.Log.Warn("operator request", attrs...)
	// The security audit trail names the message too.
	access.SetSubject(ctx, position(req).String())
	return e, nil
}

func position(req control.OperatorRequest) pipeline.Position {
	return pipeline.Position{Topic: req.Topic, Partition: int(req.Partition), Offset: req.Offset}
}

// Skip records the skip; this instance applies it at once, every other one
// (and this one after a restart) when it reads the entry.
func (o *operator) Skip(ctx context.Context, req control.OperatorRequest) error {
	if _, err := o.record(ctx, req); err != nil {
		return err
	}
	o.runner.Skip(position(req), req.Reason)
	return nil
}

// Replay records the replay, reads the message and has the runner process
// it again.
func (o *operator) Replay(ctx context.Context, req control.OperatorRequest) (bool, int, error) {
	if _, err := o.record(ctx, req); err != nil {
		return false, 0, err
	}
	m, err := readOne(ctx, o.d.Kafka, position(req))
	if err != nil {
		return false, 0, err
	}
	res, err := o.runner.Replay(ctx, kafkapipe.FromKafka(m))
	if err != nil {
		return false, 0, err
	}
	o.d.Log.Warn("operator replay done", "audit_id", req.ID, "rejected", res.Rejected, "outputs", res.Outputs)
	return res.Rejected, res.Outputs, nil
}

// readOne reads the message at p.
func readOne(ctx context.Context, c kafkaconn.Cluster, p pipeline.Position) (kafka.Message, error) {
	conn, err := c.DialLeader(ctx, p.Topic, p.Partition)
	if err != nil {
		return kafka.Message{}, status.Errorf(codes.Unavailable, "%s: %v", p, err)
	}
	first, last, err := conn.ReadOffsets()
	conn.Close()
	if err != nil {
		return kafka.Message{}, status.Errorf(codes.Unavailable, "%s: offsets: %v", p, err)
	}
	if p.Offset < first || p.Offset >= last {
		return kafka.Message{}, status.Errorf(codes.NotFound, "%s: no such message: the partition holds offsets %d to %d (older ones are past retention)", p, first, last-1)
	}
	r := c.NewReader(kafka.ReaderConfig{Topic: p.Topic, Partition: p.Partition, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(p.Offset); err != nil {
		return kafka.Message{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			return kafka.Message{}, status.Errorf(codes.Unavailable, "%s: read: %v", p, err)
		}
		// A compacted or transactional partition may have gaps.
		if m.Offset == p.Offset {
			return m, nil
		}
		if m.Offset > p.Offset {
			return kafka.Message{}, status.Errorf(codes.NotFound, "%s: no such message (the partition has a gap there)", p)
		}
	}
}

// followSkips applies this stage's skips on the audit log to the runner:
// those there at start before it returns (so a restarted instance skips
// what it was told to), the rest as they come, until ctx ends.
func (o *operator) followSkips(ctx context.Context) {
	follow := func(ctx context.Context, caughtUp func()) error {
		return controllog.Follow(ctx, o.audit, func(offset int64, doc []byte) {
			var e AuditEntry
			if err := json.Unmarshal(doc, &e); err != nil {
				o.d.Log.Error("audit log entry not understood", "offset", offset, "err", err)
				return
			}
			if e.Group == o.group && e.Action == "skip" {
				o.runner.Skip(pipeline.Position{Topic: e.Topic, Partition: int(e.Partition), Offset: e.Offset}, e.Reason)
			}
		}, caughtUp)
	}
	caughtUp := controllog.Keep(ctx, follow, func(err error) {
		o.d.Log.Error("following the operator audit log; retrying", "err", err)
	})
	select {
	case <-caughtUp:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		o.d.Log.Error("operator audit log not replayed within 30 s; starting without its skips", "topic", topics.OperatorAudit)
	}
}
