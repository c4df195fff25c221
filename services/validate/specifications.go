package validate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/validate/spec"
)

// headerLoad carries a version's load record (a SpecificationLoad, protobuf)
// on the log entry of its document. The value stays the document, byte for
// byte, so entries written before loads were recorded still apply.
const headerLoad = "dmic-spec-load"

// maxReasonLen bounds the reason of a backdated load: it is kept on every
// instance and shown in listings.
const maxReasonLen = 500

// Specifications manages the validator's specifications at run time: the
// built-in ones, and those loaded through the gRPC API, which are kept on the
// specification log so that every instance and every restart applies them.
// It serves dmic.validation.v1.SpecificationService.
type Specifications struct {
	validationv1.UnimplementedSpecificationServiceServer

	// mu serialises read-modify-write of the validator's registry and guards
	// loads; the validator itself is read without it, by the stage,
	// concurrently.
	mu  sync.Mutex
	v   *spec.Validator
	log controllog.Log
	lg  *slog.Logger
	// loads are the load records of the versions loaded, by label, as the
	// log holds them.
	loads map[string]*validationv1.SpecificationLoad
}

// NewSpecifications manages v's specifications, persisting loads to log.
// "Now" (which version is in effect, when one was loaded, whether a version
// is backdated) is v's clock, the same one that selects the version for each
// record.
func NewSpecifications(v *spec.Validator, log controllog.Log, lg *slog.Logger) *Specifications {
	return &Specifications{v: v, log: log, lg: lg, loads: map[string]*validationv1.SpecificationLoad{}}
}

// apply adds a document to the registry; a document already there is a
// no-op. load is its load record (nil for an entry written before loads were
// recorded): its time is the loaded time, so every instance shows the same.
func (s *Specifications) apply(doc []byte, load *validationv1.SpecificationLoad) (*spec.Spec, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	loaded := s.v.Clock().Now()
	if load.GetLoadedTime() != nil {
		loaded = load.GetLoadedTime().AsTime()
	}
	next, sp, created, err := s.v.Registry().With(doc, spec.OriginLoaded, loaded)
	if err != nil {
		return nil, false, err
	}
	if created {
		s.v.SetRegistry(next)
	}
	if _, known := s.loads[sp.Label()]; load != nil && (created || !known) {
		s.loads[sp.Label()] = load
	}
	return sp, created, nil
}

// Follow applies every document on the log, then new ones as they come, until
// ctx ends. caughtUp is called once the documents present at start are
// applied. A document that does not apply (written by a newer version, or
// conflicting with one already applied) is logged and skipped: it must not
// stop validation. The backdating check is not made here: an entry on the
// log is a load already decided (and audited), and judging it again by
// today's date would make instances disagree.
func (s *Specifications) Follow(ctx context.Context, caughtUp func()) error {
	return s.log.FollowEntries(ctx, func(e controllog.Entry) {
		load, err := loadOf(e.Headers)
		if err != nil {
			s.lg.Error("specification log entry: load record not read; applied without it", "offset", e.Offset, "err", err)
		}
		sp, created, err := s.apply(e.Value, load)
		if err != nil {
			s.lg.Error("specification on the log not applied", "offset", e.Offset, "err", err)
			return
		}
		if created {
			s.lg.Info("specification applied", append([]any{"spec", sp.Label(), "effective_from", sp.EffectiveFrom(), "offset", e.Offset},
				loadAttrs(load)...)...)
		}
	}, caughtUp)
}

// loadOf reads the load record among an entry's headers; nil when there is none.
func loadOf(hs []pipeline.Header) (*validationv1.SpecificationLoad, error) {
	for _, h := range hs {
		if h.Key == headerLoad {
			load := &validationv1.SpecificationLoad{}
			if err := proto.Unmarshal(h.Value, load); err != nil {
				return nil, fmt.Errorf("header %s: %w", headerLoad, err)
			}
			return load, nil
		}
	}
	return nil, nil
}

// loadAttrs are the log attributes of a load record: who asked and, for a
// backdated load, why.
func loadAttrs(load *validationv1.SpecificationLoad) []any {
	if load == nil {
		return nil
	}
	c := load.GetCaller()
	attrs := []any{"peer", load.GetPeer(), "user_agent", load.GetUserAgent(),
		"caller_org", c.GetOrg(), "caller_role", c.GetRole(), "caller_name", c.GetName(), "caller_serial", c.GetSerial()}
	if op := load.GetOperator(); op != "" { //nolint:staticcheck // shown for loads recorded before authentication
		attrs = append(attrs, "operator_claimed", op)
	}
	if load.GetBackdated() {
		attrs = append(attrs, "backdated", true, "reason", load.GetReason())
	}
	return attrs
}

// LoadSpecification implements the gRPC call: check, persist, apply. A
// version effective before today is refused unless the request overrides
// it with a reason; the override is logged at WARN and its record kept on
// the log with the document.
func (s *Specifications) LoadSpecification(ctx context.Context, req *validationv1.LoadSpecificationRequest) (*validationv1.LoadSpecificationResponse, error) {
	doc := req.GetDocument()
	if len(doc) == 0 {
		return nil, status.Error(codes.InvalidArgument, "document: empty")
	}
	reason, err := overrideReason(req)
	if err != nil {
		return nil, err
	}
	// Check against the current registry first: a bad or conflicting document
	// must never reach the log.
	now := s.v.Clock().Now()
	_, sp, created, err := s.v.Registry().With(doc, spec.OriginLoaded, now)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "specification refused:\n%v", err)
	}
	if !created {
		return &validationv1.LoadSpecificationResponse{Summary: s.summary(sp)}, nil
	}
	label := sp.Label()
	access.SetSubject(ctx, label)
	load := requestedBy(ctx)
	// The reason is kept even when the override turns out not to be needed:
	// what an operator wrote is never dropped unseen.
	load.LoadedTime, load.Reason = timestamppb.New(now), reason
	if sp.Backdated(now) {
		if !req.GetAllowBackdated() {
			return nil, status.Errorf(codes.FailedPrecondition, "specification %s refused: it is effective from %s, before today (%s, Europe/London), "+
				"so it would judge records received since %s that are validated or replayed from now on, by rules that did not exist when they were received. "+
				"Make it effective today or later; or, if judging those records by it is intended, load it with allow_backdated and a reason "+
				"(dmicctl spec load --allow-backdated --reason TEXT FILE): the override is audited",
				label, sp.EffectiveFrom(), spec.CalendarDate(now), sp.EffectiveFrom())
		}
		load.Backdated = true
		s.lg.Warn("backdated specification loaded by override", append([]any{"spec", label, "effective_from", sp.EffectiveFrom(),
			"today", spec.CalendarDate(now)}, loadAttrs(load)...)...)
	}
	record, err := proto.Marshal(load)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "specification %s: load record: %v", label, err)
	}
	if err := s.log.Publish(ctx, sp.ID()+"@"+sp.Version(), doc, pipeline.Header{Key: headerLoad, Value: record}); err != nil {
		return nil, status.Errorf(codes.Unavailable, "specification %s not stored: %v", label, err)
	}
	// This instance's follower may apply it from the log first: either way
	// it is this call that created it.
	if sp, _, err = s.apply(doc, load); err != nil {
		// Another load of the same version, with other content, won the race.
		return nil, status.Errorf(codes.Aborted, "specification %s: %v", label, err)
	}
	s.lg.Info("specification loaded", append([]any{"spec", sp.Label(), "effective_from", sp.EffectiveFrom(), "sha256", sp.SHA256()},
		loadAttrs(load)...)...)
	return &validationv1.LoadSpecificationResponse{Summary: s.summary(sp), Created: true}, nil
}

// overrideReason checks the override fields of a request: a reason comes
// with allow_backdated and only with it, one line of at most maxReasonLen
// characters.
func overrideReason(req *validationv1.LoadSpecificationRequest) (string, error) {
	reason := strings.TrimSpace(req.GetReason())
	switch {
	case req.GetAllowBackdated() && reason == "":
		return "", status.Error(codes.InvalidArgument, "reason: required with allow_backdated (it is kept in the audit of the load)")
	case !req.GetAllowBackdated() && reason != "":
		return "", status.Error(codes.InvalidArgument, "reason: given without allow_backdated (it is only the reason for a backdated load)")
	case utf8.RuneCountInString(reason) > maxReasonLen:
		return "", status.Errorf(codes.InvalidArgument, "reason: longer than %d characters", maxReasonLen)
	case strings.ContainsFunc(reason, unicode.IsControl):
		return "", status.Error(codes.InvalidArgument, "reason: must be one line of text, without control characters")
	}
	return reason, nil
}

// requestedBy is who made the call: the authenticated caller (the
// authorisation layer put it in ctx), its network address and its user agent.
func requestedBy(ctx context.Context) *validationv1.SpecificationLoad {
	load := &validationv1.SpecificationLoad{}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		load.Peer = p.Addr.String()
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if vs := md.Get("user-agent"); len(vs) > 0 {
			load.UserAgent = bounded(vs[0])
		}
	}
	if id, ok := identity.FromContext(ctx); ok {
		load.Caller = &validationv1.Caller{Org: id.Org, Role: string(id.Role), Name: id.Name, Method: string(id.Method), Serial: id.Serial}
	}
	return load
}

// bounded keeps a caller-supplied name short and printable.
func bounded(s string) string {
	const max = 100
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return s
}

// ListSpecifications implements the gRPC call.
func (s *Specifications) ListSpecifications(context.Context, *validationv1.ListSpecificationsRequest) (*validationv1.ListSpecificationsResponse, error) {
	out := &validationv1.ListSpecificationsResponse{}
	for _, sp := range s.v.Registry().List() {
		out.Specifications = append(out.Specifications, s.summary(sp))
	}
	return out, nil
}

// GetSpecification implements the gRPC call.
func (s *Specifications) GetSpecification(_ context.Context, req *validationv1.GetSpecificationRequest) (*validationv1.GetSpecificationResponse, error) {
	reg := s.v.Registry()
	var sp *spec.Spec
	if req.GetVersion() != "" {
		sp, _ = reg.Get(req.GetId(), req.GetVersion())
	} else {
		for _, c := range reg.List() {
			if c.ID() == req.GetId() && s.inEffect(reg, c) {
				sp = c
			}
		}
	}
	if sp == nil {
		return nil, status.Errorf(codes.NotFound, "no specification %q version %q", req.GetId(), req.GetVersion())
	}
	return &validationv1.GetSpecificationResponse{Summary: s.summary(sp), Document: sp.Document()}, nil
}

func (s *Specifications) inEffect(reg *spec.Registry, sp *spec.Spec) bool {
	return reg.InEffect(sp, s.v.Clock().Now())
}

func (s *Specifications) summary(sp *spec.Spec) *validationv1.SpecificationSummary {
	sum := &validationv1.SpecificationSummary{
		Id: sp.ID(), Version: sp.Version(), Title: sp.Title(), EffectiveFrom: sp.EffectiveFrom(),
		Source: envelope.SourceName(sp.Source()), Rules: int32(len(sp.Rules())), Origin: sp.Origin(),
		InEffect: s.inEffect(s.v.Registry(), sp), Sha256: sp.SHA256(),
	}
	for _, ds := range sp.Datasets() {
		sum.Datasets = append(sum.Datasets, record.DatasetName(ds))
	}
	if t := sp.LoadedTime(); !t.IsZero() {
		sum.LoadedTime = timestamppb.New(t)
	}
	s.mu.Lock()
	if load := s.loads[sp.Label()]; load != nil {
		sum.Load = proto.Clone(load).(*validationv1.SpecificationLoad)
	}
	s.mu.Unlock()
	return sum
}
