package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// OperatorRequest is an operator's skip or replay of one input message, as
// checked by the control server.
type OperatorRequest struct {
	// ID names the audit entry.
	ID        string
	Action    string // skip, replay
	Topic     string
	Partition int32
	Offset    int64
	Reason    string
	// Peer is the caller's network address.
	Peer string
	// Caller is who asked: the authenticated operator (nil only when the
	// server runs without the authorisation layer, as in its unit tests).
	Caller *identity.Identity
}

// Operator carries out operators' requests on a stage's input: it records
// each on the audit log before acting on it.
type Operator interface {
	Skip(ctx context.Context, req OperatorRequest) error
	Replay(ctx context.Context, req OperatorRequest) (rejected bool, outputs int, err error)
}

// SetOperator enables SkipMessage and ReplayMessage; without it they answer
// Unimplemented (a service with no Kafka input, such as ingest).
func (s *Server) SetOperator(op Operator) { s.operator = op }

// maxReason bounds a reason, which is kept in logs and dead letters.
const maxReason = 500

// check validates an operator's request; every problem at once.
func (s *Server) check(ctx context.Context, action string, pos *dmicv1.MessagePosition, reason string) (OperatorRequest, error) {
	req := OperatorRequest{ID: auditID(), Action: action, Topic: pos.GetTopic(), Partition: pos.GetPartition(),
		Offset: pos.GetOffset(), Reason: strings.TrimSpace(reason)}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		req.Peer = p.Addr.String()
	}
	if id, ok := identity.FromContext(ctx); ok {
		req.Caller = &id
	}
	if s.operator == nil {
		return req, status.Errorf(codes.Unimplemented, "%s reads no Kafka input: there is nothing to %s", s.info.Service, action)
	}
	var problems []string
	if pos == nil {
		problems = append(problems, "position: required (topic, partition, offset)")
	} else {
		if !slices.Contains(s.info.InputTopics, req.Topic) {
			problems = append(problems, fmt.Sprintf("position.topic: %q is not an input of %s (%s)", req.Topic, s.info.Service, strings.Join(s.info.InputTopics, ", ")))
		}
		if req.Partition < 0 {
			problems = append(problems, "position.partition: must not be negative")
		}
		if req.Offset < 0 {
			problems = append(problems, "position.offset: must not be negative")
		}
	}
	switch {
	case req.Reason == "":
		problems = append(problems, "reason: required (it is kept in the audit log)")
	case len(req.Reason) > maxReason:
		problems = append(problems, "reason: longer than 500 characters")
	}
	if len(problems) > 0 {
		s.log.Warn("operator request refused", append([]any{"action", action, "peer", req.Peer, "problems", strings.Join(problems, "; ")}, callerAttrs(ctx)...)...)
		return req, status.Error(codes.InvalidArgument, strings.Join(problems, "; "))
	}
	return req, nil
}

// SkipMessage implements dmicv1.ControlServiceServer.
func (s *Server) SkipMessage(ctx context.Context, in *dmicv1.SkipMessageRequest) (*dmicv1.SkipMessageResponse, error) {
	req, err := s.check(ctx, "skip", in.GetPosition(), in.GetReason())
	if err != nil {
		return nil, err
	}
	if err := s.operator.Skip(ctx, req); err != nil {
		return nil, status.Errorf(codes.Unavailable, "skip %s/%d@%d not recorded: %v", req.Topic, req.Partition, req.Offset, err)
	}
	return &dmicv1.SkipMessageResponse{AuditId: req.ID}, nil
}

// ReplayMessage implements dmicv1.ControlServiceServer.
func (s *Server) ReplayMessage(ctx context.Context, in *dmicv1.ReplayMessageRequest) (*dmicv1.ReplayMessageResponse, error) {
	req, err := s.check(ctx, "replay", in.GetPosition(), in.GetReason())
	if err != nil {
		return nil, err
	}
	rejected, outputs, err := s.operator.Replay(ctx, req)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.Unavailable, "replay %s/%d@%d: %v", req.Topic, req.Partition, req.Offset, err)
	}
	return &dmicv1.ReplayMessageResponse{AuditId: req.ID, Rejected: rejected, Outputs: int32(outputs)}, nil
}

// callerAttrs are the log attributes of the call's authenticated caller.
func callerAttrs(ctx context.Context) []any {
	if id, ok := identity.FromContext(ctx); ok {
		return id.LogAttrs()
	}
	return nil
}

func auditID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
