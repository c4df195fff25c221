package assign

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/topics"
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
		return nil, status.Error(codes.InvalidArgument, "record_key: required (submitter|dataset|CDS unique identifier, or X26|dataset|provider|CDS unique identifier for a national copy: the activity table's record_key)")
	}
	access.SetSubject(ctx, key)
	st, err := s.store.ReadActivity(ctx, key)
	switch {
	case errors.Is(err, chstore.ErrRecordNotFound):
		return nil, status.Errorf(codes.NotFound, "no record with key %q in the activity table (a record key is submitter|dataset|CDS unique identifier, e.g. RCD|apc|..., or for a national copy X26|dataset|provider|CDS unique identifier; it may not be loaded yet)", key)
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
	// A CAM date that no version covers was given the nearest version by
	// date; deciding by date again keeps the trail's note that says so.
	if byDate, exact := cam.VersionFor(stored.GetCamDate()); !exact && v != nil && byDate.Name == v.Name {
		v = nil
	}
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

// rerunBatch is how many records a re-run reads, assigns and sends at a
// time: a year of activity streams through in batches this size.
const rerunBatch = 5000

// maxRerunMoves bounds the moves a re-run's answer lists; the table has all.
const maxRerunMoves = 200

// RerunAssignments implements AssignmentServiceServer.
//
// Every current record whose CAM date is in the period is assigned again
// under the chosen version and written to dmic.cam-reruns as one row:
// moved or not, so that a run's rows add up to the activity it read. The
// answer comes once every row is acknowledged by the broker; load then
// writes them to cam_rerun within about a second. A run that fails part
// way leaves the rows already sent, under its run id, and says so.
func (s *Service) RerunAssignments(ctx context.Context, req *assignmentv1.RerunAssignmentsRequest) (*assignmentv1.RerunAssignmentsResponse, error) {
	from, to, v, err := rerunRequest(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	now := s.clock.Now().UTC()
	runID := newRunID()
	access.SetSubject(ctx, "run "+runID+": CAM "+v.Name+" on CAM dates "+from+" to "+to)
	resp := &assignmentv1.RerunAssignmentsResponse{RunId: runID, RunTime: timestamppb.New(now), CamVersion: v.Name}
	moves := map[moveKey]*assignmentv1.RerunMove{}
	var r cam.Result
	err = s.store.ScanActivity(ctx, from, to, rerunBatch, func(batch []chstore.StoredActivity) error {
		outs := make([]pipeline.Output, 0, len(batch))
		for _, st := range batch {
			row := s.rerunRow(st.Record, v, &r)
			row.RunId, row.RunTime, row.CamVersion, row.Label = runID, resp.RunTime, v.Name, req.GetLabel()
			row.PeriodFrom, row.PeriodTo = from, to
			resp.Records++
			moved, stepChanged := row.FromCommissioner != row.ToCommissioner, row.FromStep != row.ToStep
			switch {
			case moved:
				resp.Moved++
				resp.MovedActivity += row.ActivityCount
				resp.MovedPricePence += row.PricePence
			case stepChanged:
				resp.StepChanged++
			}
			if moved || stepChanged {
				k := moveKey{row.FromCommissioner, row.ToCommissioner, row.FromStep, row.ToStep}
				m := moves[k]
				if m == nil {
					m = &assignmentv1.RerunMove{FromCommissioner: k.from, ToCommissioner: k.to, FromStep: k.fromStep, ToStep: k.toStep}
					moves[k] = m
				}
				m.Records++
				m.Activity += row.ActivityCount
				m.PricePence += row.PricePence
			}
			val, err := proto.Marshal(row)
			if err != nil {
				return err
			}
			outs = append(outs, pipeline.Output{Topic: topics.CamReruns, Key: []byte(runID + "|" + row.RecordKey), Value: val})
		}
		return s.out.Write(ctx, outs)
	})
	if err != nil {
		s.log.Error("re-run: stopped part way", "run_id", runID, "records_sent", resp.Records, "err", err)
		return nil, status.Errorf(codes.Unavailable, "re-run %s stopped after %d records (the rows sent are in cam_rerun under its run id; run it again for a whole run): %v", runID, resp.Records, err)
	}
	resp.Moves = slices.SortedFunc(maps.Values(moves), func(a, b *assignmentv1.RerunMove) int {
		if c := cmp.Compare(b.Records, a.Records); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.FromCommissioner, b.FromCommissioner), cmp.Compare(a.ToCommissioner, b.ToCommissioner),
			cmp.Compare(a.FromStep, b.FromStep), cmp.Compare(a.ToStep, b.ToStep))
	})
	if len(resp.Moves) > maxRerunMoves {
		resp.GroupsOmitted = int64(len(resp.Moves) - maxRerunMoves)
		resp.Moves = resp.Moves[:maxRerunMoves]
	}
	s.log.Info("re-run", "run_id", runID, "cam_version", v.Name, "from", from, "to", to, "records", resp.Records, "moved", resp.Moved)
	return resp, nil
}

type moveKey struct{ from, to, fromStep, toStep string }

// rerunRow is one record's row: its stored decision and the version's.
func (s *Service) rerunRow(rec *dmicv1.DeidentifiedRecord, v *cam.Version, r *cam.Result) *assignmentv1.CamRerunRow {
	s.a.Decide(rec.GetActivity(), v, r)
	stored := rec.GetAssignment()
	// A CDS record is one activity, with no price; a local flow line says
	// how many and at what price.
	count, price := int64(1), int64(0)
	if lf := rec.GetActivity().GetLocalFlow(); lf != nil {
		count, price = lf.GetActivityCount(), lf.GetPricePence()
	}
	return &assignmentv1.CamRerunRow{
		RecordKey: rec.GetHeader().GetRecordKey(), Version: rec.GetHeader().GetVersion(),
		ProviderCode: rec.GetActivity().GetProviderCode(), Dataset: record.DatasetName(rec.GetHeader().GetDataset()),
		CamDate: r.Date, FromCamVersion: stored.GetCamVersion(),
		FromCommissioner: stored.GetCommissionerCode(), ToCommissioner: r.Commissioner,
		FromStep: stored.GetStep(), ToStep: r.Step,
		FromReasonCode: stored.GetReasonCode(), ToReasonCode: r.ReasonCode, ToServiceCategory: r.ServiceCategory,
		ActivityCount: count, PricePence: price,
	}
}

// rerunRequest checks a re-run's period (dates, from not after to) and
// names its version, every problem at once.
func rerunRequest(req *assignmentv1.RerunAssignmentsRequest) (from, to string, v *cam.Version, err error) {
	var errs []error
	from, to = strings.TrimSpace(req.GetFrom()), strings.TrimSpace(req.GetTo())
	for _, d := range []struct{ name, value string }{{"from", from}, {"to", to}} {
		if _, perr := time.Parse(time.DateOnly, d.value); perr != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a date (YYYY-MM-DD)", d.name, d.value))
		}
	}
	if len(errs) == 0 && from > to {
		errs = append(errs, fmt.Errorf("from %s is after to %s", from, to))
	}
	v, ok := cam.VersionNamed(strings.TrimSpace(req.GetCamVersion()))
	if !ok {
		var names []string
		for _, known := range cam.Versions() {
			names = append(names, known.Name)
		}
		errs = append(errs, fmt.Errorf("cam_version: %q is not a CAM version (known: %s)", req.GetCamVersion(), strings.Join(names, ", ")))
	}
	return from, to, v, errors.Join(errs...)
}

// newRunID is a re-run's id: 16 random hex digits.
func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
