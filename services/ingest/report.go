package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// ReportSource answers submission reports; chstore does, from ClickHouse.
type ReportSource interface {
	SubmissionReport(ctx context.Context, submissionID string, limit int) (*validationv1.SubmissionReport, bool, error)
}

// Failing records listed by default, and at most.
const (
	DefaultReportLimit = 100
	MaxReportLimit     = 10000
)

// submissionIDPattern admits ingest's own ids ("sub-" and 24 hex digits) and
// anything of the same alphabet, and nothing that needs escaping.
var submissionIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// Reports serves validation reports of submissions over HTTP and gRPC.
type Reports struct {
	validationv1.UnimplementedSubmissionReportServiceServer
	src ReportSource
	log *slog.Logger
}

// NewReports serves reports from src.
func NewReports(src ReportSource, log *slog.Logger) *Reports {
	return &Reports{src: src, log: log}
}

// RegisterHTTP adds GET /v1/submissions/{id} to mux.
func (r *Reports) RegisterHTTP(mux Router) {
	mux.HandleFunc("GET /v1/submissions/{id}", r.handleGet)
}

// report fetches one report; the error is a gRPC status.
func (r *Reports) report(ctx context.Context, id string, limit int) (*validationv1.SubmissionReport, error) {
	if !submissionIDPattern.MatchString(id) {
		return nil, status.Error(codes.InvalidArgument, "submission id: must be 1 to 64 letters, digits or '-'")
	}
	switch {
	case limit == 0:
		limit = DefaultReportLimit
	case limit < 0 || limit > MaxReportLimit:
		return nil, status.Errorf(codes.InvalidArgument, "failing records limit: must be 1 to %d", MaxReportLimit)
	}
	rep, found, err := r.src.SubmissionReport(ctx, id, limit)
	if err != nil {
		r.log.Error("submission report", "submission_id", id, "err", err)
		return nil, status.Errorf(codes.Unavailable, "report of submission %s could not be read; retry later", id)
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "submission %s: no record of it yet (reports appear within seconds of a submission; check the id)", id)
	}
	return rep, mayRead(ctx, rep)
}

// ReasonNotYourSubmission: a provider or the national exchange asked for the
// report of another organisation's submission.
const ReasonNotYourSubmission = "not-your-submission"

// mayRead says whether the caller may read rep: its submitter may, and
// operators may read any (the route's rule admits no one else).
func mayRead(ctx context.Context, rep *validationv1.SubmissionReport) error {
	who, ok := identity.FromContext(ctx)
	switch {
	case !ok:
		return status.Error(codes.Unauthenticated, "not authenticated: present a client certificate issued for dmic (docs/security.md)")
	case who.Role == identity.Operator:
		return nil
	case rep.GetSubmitterOrgCode() != who.Org:
		return access.Refuse(ctx, ReasonNotYourSubmission, fmt.Sprintf("%s may read the reports of its own submissions only: %s was sent by another organisation",
			who, rep.GetSubmissionId()))
	}
	return nil
}

// GetSubmissionReport implements the gRPC call.
func (r *Reports) GetSubmissionReport(ctx context.Context, req *validationv1.GetSubmissionReportRequest) (*validationv1.GetSubmissionReportResponse, error) {
	rep, err := r.report(ctx, req.GetSubmissionId(), int(req.GetFailingRecordsLimit()))
	if err != nil {
		return nil, err
	}
	return &validationv1.GetSubmissionReportResponse{Report: rep}, nil
}

// handleGet: GET /v1/submissions/{id}[?limit=N][&format=text]
func (r *Reports) handleGet(w http.ResponseWriter, req *http.Request) {
	limit := 0
	q := req.URL.Query()
	problems := checkQuery(q, reportParams)
	if f := q.Get("format"); f != "" && f != "json" && f != "text" {
		problems = append(problems, "query parameter format: must be json or text")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			problems = append(problems, fmt.Sprintf("query parameter limit: must be 1 to %d", MaxReportLimit))
		}
		limit = n
	}
	if len(problems) > 0 {
		httpError(w, http.StatusBadRequest, strings.Join(problems, "; "))
		return
	}
	rep, err := r.report(req.Context(), req.PathValue("id"), limit)
	if err != nil {
		st := status.Convert(err)
		code := http.StatusInternalServerError
		switch st.Code() {
		case codes.InvalidArgument:
			code = http.StatusBadRequest
		case codes.NotFound:
			code = http.StatusNotFound
		case codes.Unavailable:
			code = http.StatusServiceUnavailable
		case codes.Unauthenticated:
			code = http.StatusUnauthorized
		case codes.PermissionDenied:
			code = http.StatusForbidden
		}
		httpError(w, code, st.Message())
		return
	}
	// The same renderers as `dmic validate`, so that a provider can compare
	// the platform's report with the offline check line by line.
	if q.Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = dqreport.WriteText(w, rep)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = dqreport.WriteJSON(w, rep)
}
