package assign

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// Store is the stored activity the assignment service reads: a record's
// latest row, and the current records of a period, each rebuilt as the
// de-identified record CAM was given (chstore.ActivityReader, as the
// read-only dmic_reader).
type Store interface {
	ReadActivity(ctx context.Context, recordKey string) (chstore.StoredActivity, error)
	ScanActivity(ctx context.Context, from, to string, batch int, fn func([]chstore.StoredActivity) error) error
}

// Service is dmic.assignment.v1.AssignmentService: explain one record's
// assignment, re-run a period under another CAM version.
type Service struct {
	assignmentv1.UnimplementedAssignmentServiceServer
	a     *cam.Assigner
	store Store
	out   pipeline.Sink
	clock clock.Clock
	log   *slog.Logger
}

// NewService serves explanations and re-runs with a over store; a re-run's
// rows are written to out (dmic.cam-reruns), stamped by clk.
func NewService(a *cam.Assigner, store Store, out pipeline.Sink, clk clock.Clock, log *slog.Logger) *Service {
	return &Service{a: a, store: store, out: out, clock: clk, log: log}
}

// ExplainAssignment implements AssignmentServiceServer.
//
// The trail is not stored: it is derived again here, from the record's row
// in the activity table (which keeps every CAM input) under the CAM version
// stored with it. CAM is deterministic given a version and reference data,
// so the derived decision is the stored one unless the reference data
// changed since; the answer says whether they agree and, if not, which
// fields differ and the vintages of the data each used.
func (s *Service) ExplainAssignment(ctx context.Context, req *assignmentv1.ExplainAssignmentRequest) (*assignmentv1.ExplainAssignmentResponse, error) {
	key := strings.TrimSpace(req.GetRecordKey())
	if key == "" {
		return nil, status.Error(codes.InvalidArgument, "record_key: required (submitter|dataset|CDS unique identifier, the activity table's record_key)")
	}
	access.SetSubject(ctx, key)
	st, err := s.store.ReadActivity(ctx, key)
	switch {
	case errors.Is(err, chstore.ErrRecordNotFound):
		return nil, status.Errorf(codes.NotFound, "no record with key %q in the activity table (a record key is submitter|dataset|CDS unique identifier, e.g. RCD|apc|...; it may not be loaded yet)", key)
	case err != nil:
		s.log.Error("explain: reading the activity table", "record_key", key, "err", err)
		return nil, status.Errorf(codes.Unavailable, "cannot read the activity table: %v", err)
	}
	rec := st.Record
	if st.Deleted {
		return nil, status.Errorf(codes.NotFound, "record %q was deleted: its latest version (%d) is a delete, so it has no assignment", key, rec.GetHeader().GetVersion())
	}
	stored := rec.GetAssignment()
	// The version stored with the record (a record stored before versions
	// were recorded: the version of its CAM date).
	v, _ := cam.VersionNamed(stored.GetCamVersion())
	var r cam.Result
	s.a.Decide(rec.GetActivity(), v, &r)
	derived := s.a.Explained(&r)
	diffs, agree := cam.Compare(stored, derived)
	return &assignmentv1.ExplainAssignmentResponse{
		RecordKey: key, Version: rec.GetHeader().GetVersion(),
		Dataset: record.DatasetName(rec.GetHeader().GetDataset()), Source: record.SourceName(rec.GetHeader().GetSource()),
		ProviderCode: rec.GetActivity().GetProviderCode(),
		Stored:       stored, Derived: derived, Agrees: agree, Differences: diffs,
	}, nil
}
