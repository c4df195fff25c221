package validate

import (
	"context"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/controllog"
	"github.com/dmic-nhs/dmic/services/envelope"
	"github.com/dmic-nhs/dmic/services/record"
	"github.com/dmic-nhs/dmic/services/validation"
)

// Specifications manages the validator's specifications at run time: the
// built-in ones, and those loaded through the gRPC API, which are kept on the
// specification log so that every instance and every restart applies them.
// It serves dmic.validation.v1.SpecificationService.
type Specifications struct {
	validationv1.UnimplementedSpecificationServiceServer

	// mu serialises read-modify-write of the validator's registry; the
	// validator itself is read without it, by the stage, concurrently.
	mu  sync.Mutex
	v   *validation.Validator
	log *controllog.Log
	lg  *slog.Logger
}

// NewSpecifications manages v's specifications, persisting loads to log.
// "Now" (which version is in effect, when one was loaded) is v's clock, the
// same one that selects the version for each record.
func NewSpecifications(v *validation.Validator, log *controllog.Log, lg *slog.Logger) *Specifications {
	return &Specifications{v: v, log: log, lg: lg}
}

// apply adds a document to the registry; a document already there is a no-op.
func (s *Specifications) apply(doc []byte, origin string) (*validation.Spec, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, spec, created, err := s.v.Registry().With(doc, origin, s.v.Clock().Now())
	if err != nil {
		return nil, false, err
	}
	if created {
		s.v.SetRegistry(next)
	}
	return spec, created, nil
}

// Follow applies every document on the log, then new ones as they come, until
// ctx ends. caughtUp is called once the documents present at start are
// applied. A document that does not apply (written by a newer version, or
// conflicting with one already applied) is logged and skipped: it must not
// stop validation.
func (s *Specifications) Follow(ctx context.Context, caughtUp func()) error {
	return s.log.Follow(ctx, func(offset int64, doc []byte) {
		spec, created, err := s.apply(doc, validation.OriginLoaded)
		if err != nil {
			s.lg.Error("specification on the log not applied", "offset", offset, "err", err)
			return
		}
		if created {
			s.lg.Info("specification applied", "spec", spec.Label(), "effective_from", spec.EffectiveFrom(), "offset", offset)
		}
	}, caughtUp)
}

// LoadSpecification implements the gRPC call: check, persist, apply.
func (s *Specifications) LoadSpecification(ctx context.Context, req *validationv1.LoadSpecificationRequest) (*validationv1.LoadSpecificationResponse, error) {
	doc := req.GetDocument()
	if len(doc) == 0 {
		return nil, status.Error(codes.InvalidArgument, "document: empty")
	}
	// Check against the current registry first: a bad or conflicting document
	// must never reach the log.
	_, spec, created, err := s.v.Registry().With(doc, validation.OriginLoaded, s.v.Clock().Now())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "specification refused:\n%v", err)
	}
	if !created {
		return &validationv1.LoadSpecificationResponse{Summary: s.summary(spec)}, nil
	}
	if err := s.log.Publish(ctx, spec.ID()+"@"+spec.Version(), doc); err != nil {
		return nil, status.Errorf(codes.Unavailable, "specification %s not stored: %v", spec.Label(), err)
	}
	// This instance's follower may apply it from the log first: either way
	// it is this call that created it.
	label := spec.Label()
	if spec, _, err = s.apply(doc, validation.OriginLoaded); err != nil {
		// Another load of the same version, with other content, won the race.
		return nil, status.Errorf(codes.Aborted, "specification %s: %v", label, err)
	}
	s.lg.Info("specification loaded", "spec", spec.Label(), "effective_from", spec.EffectiveFrom(), "sha256", spec.SHA256())
	return &validationv1.LoadSpecificationResponse{Summary: s.summary(spec), Created: true}, nil
}

// ListSpecifications implements the gRPC call.
func (s *Specifications) ListSpecifications(context.Context, *validationv1.ListSpecificationsRequest) (*validationv1.ListSpecificationsResponse, error) {
	out := &validationv1.ListSpecificationsResponse{}
	for _, spec := range s.v.Registry().List() {
		out.Specifications = append(out.Specifications, s.summary(spec))
	}
	return out, nil
}

// GetSpecification implements the gRPC call.
func (s *Specifications) GetSpecification(_ context.Context, req *validationv1.GetSpecificationRequest) (*validationv1.GetSpecificationResponse, error) {
	reg := s.v.Registry()
	var spec *validation.Spec
	if req.GetVersion() != "" {
		spec, _ = reg.Get(req.GetId(), req.GetVersion())
	} else {
		for _, c := range reg.List() {
			if c.ID() == req.GetId() && s.inEffect(reg, c) {
				spec = c
			}
		}
	}
	if spec == nil {
		return nil, status.Errorf(codes.NotFound, "no specification %q version %q", req.GetId(), req.GetVersion())
	}
	return &validationv1.GetSpecificationResponse{Summary: s.summary(spec), Document: spec.Document()}, nil
}

func (s *Specifications) inEffect(reg *validation.Registry, spec *validation.Spec) bool {
	return reg.InEffect(spec, s.v.Clock().Now())
}

func (s *Specifications) summary(spec *validation.Spec) *validationv1.SpecificationSummary {
	sum := &validationv1.SpecificationSummary{
		Id: spec.ID(), Version: spec.Version(), Title: spec.Title(), EffectiveFrom: spec.EffectiveFrom(),
		Source: envelope.SourceName(spec.Source()), Rules: int32(len(spec.Rules())), Origin: spec.Origin(),
		InEffect: s.inEffect(s.v.Registry(), spec), Sha256: spec.SHA256(),
	}
	for _, ds := range spec.Datasets() {
		sum.Datasets = append(sum.Datasets, record.DatasetName(ds))
	}
	if t := spec.LoadedTime(); !t.IsZero() {
		sum.LoadedTime = timestamppb.New(t)
	}
	return sum
}
