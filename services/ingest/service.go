package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/clock"
	"github.com/dmic-nhs/dmic/services/envelope"
	"github.com/dmic-nhs/dmic/services/record"
)

// Service takes submissions.
type Service struct {
	dmicv1.UnimplementedIngestServiceServer
	producer Producer
	log      *slog.Logger
	clock    clock.Clock

	accepted atomic.Int64
	rejected atomic.Int64

	mu     sync.Mutex
	paused bool

	mRecords *prometheus.CounterVec
	mSubs    *prometheus.CounterVec
}

// New builds the ingest service.
func New(p Producer, log *slog.Logger, reg prometheus.Registerer, opts ...Option) *Service {
	s := &Service{producer: p, log: log,
		mRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_ingest_records_total",
			Help: "Records received, by data set, source and outcome."}, []string{"dataset", "source", "outcome"}),
		mSubs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_ingest_submissions_total",
			Help: "Submissions received, by transport and outcome."}, []string{"transport", "outcome"}),
	}
	reg.MustRegister(s.mRecords, s.mSubs)
	for _, o := range opts {
		o(s)
	}
	return s
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock that stamps each submission's receipt time (which
// picks the specification version validate applies) and the date in its id.
// Without it ingest reads the wall clock.
func WithClock(c clock.Clock) Option { return func(s *Service) { s.clock = c } }

// Pause makes ingest refuse new submissions (503 / UNAVAILABLE).
func (s *Service) Pause() { s.mu.Lock(); s.paused = true; s.mu.Unlock() }

// Resume accepts submissions again.
func (s *Service) Resume() { s.mu.Lock(); s.paused = false; s.mu.Unlock() }

// Paused reports whether ingest is paused.
func (s *Service) Paused() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.paused }

// Processed is the number of records accepted.
func (s *Service) Processed() int64 { return s.accepted.Load() }

// Rejected is the number of records refused at the door.
func (s *Service) Rejected() int64 { return s.rejected.Load() }

// run feeds every item of a reader into a new submission, then sends its
// receipt with the last records. The answer says how much of the body was
// read, so that a body cut short or a CSV quote left open is never taken for
// a smaller file.
func (s *Service) run(ctx context.Context, sub *submission, rd *record.Reader) error {
	for {
		it, ok := rd.Next()
		if !ok {
			break
		}
		if err := sub.add(ctx, it); err != nil {
			return err
		}
	}
	sub.resp.Read = rd.Summary().Proto()
	return sub.finish(ctx, "http")
}

func (s *Service) finish(sub *submission, transport string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.mSubs.WithLabelValues(transport, outcome).Inc()
	ds, src := record.DatasetName(sub.dataset), envelope.SourceName(sub.source)
	s.mRecords.WithLabelValues(ds, src, "accepted").Add(float64(sub.resp.Accepted))
	s.mRecords.WithLabelValues(ds, src, "rejected").Add(float64(sub.resp.Rejected))
	if err == nil {
		s.accepted.Add(sub.resp.Accepted)
		s.rejected.Add(sub.resp.Rejected)
	}
	s.log.Info("submission", "submission_id", sub.id, "transport", transport, "dataset", ds, "source", src,
		"submitter", sub.submitter, "accepted", sub.resp.Accepted, "rejected", sub.resp.Rejected,
		"lines", sub.resp.GetRead().GetLines(), "stopped_at_line", sub.resp.GetRead().GetStoppedAtLine(), "err", err)
}

// RegisterHTTP adds the submission endpoint to mux.
func (s *Service) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/submissions", s.handleSubmit)
}

// handleSubmit: POST /v1/submissions?dataset=apc&source=provider&submitter=RJ7[&results=errors]
// Body: NDJSON (application/x-ndjson, application/json) or CSV (text/csv) with a header row.
func (s *Service) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if s.Paused() {
		httpError(w, http.StatusServiceUnavailable, "ingest is paused by an operator; retry later")
		return
	}
	q := r.URL.Query()
	var ds dmicv1.Dataset
	problems := checkQuery(q, submitParams)
	if v := q.Get("dataset"); v != "" {
		d, err := record.ParseDataset(v)
		if err != nil {
			problems = append(problems, "query parameter dataset: "+err.Error())
		}
		ds = d
	}
	src, err := envelope.ParseSource(q.Get("source"))
	if err != nil {
		problems = append(problems, "query parameter source: "+err.Error())
	}
	keepAll := true
	switch q.Get("results") {
	case "", "all":
	case "errors":
		keepAll = false
	default:
		problems = append(problems, "query parameter results: must be all or errors")
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "" {
		ct = "application/x-ndjson"
	}
	var rd *record.Reader
	body := http.MaxBytesReader(w, r.Body, 4<<30)
	switch ct {
	case "application/x-ndjson", "application/json", "application/jsonl", "text/plain":
		rd = record.NewNDJSONReader(body, ds)
	case "text/csv":
		rd, err = record.NewCSVReader(body, ds)
		if err != nil {
			problems = append(problems, "CSV: "+err.Error())
		}
	default:
		problems = append(problems, fmt.Sprintf("Content-Type %q: use application/x-ndjson or text/csv", ct))
	}
	if len(problems) > 0 {
		httpError(w, http.StatusBadRequest, strings.Join(problems, "; "))
		return
	}
	sub := newSubmission(s.producer, s.clock.Now(), ds, src, q.Get("submitter"), keepAll)
	err = s.run(r.Context(), sub, rd)
	s.finish(sub, "http", err)
	if err != nil {
		// Records before the failure may have been produced; the provider
		// resends the whole file, which is harmless (same record keys).
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("submission %s not fully stored (resend it): %v", sub.id, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// Where the validation report of this submission will be.
	w.Header().Set("Location", "/v1/submissions/"+sub.id)
	b, _ := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}.Marshal(sub.resp)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// SubmitRecords implements the gRPC client-streaming submission.
func (s *Service) SubmitRecords(stream dmicv1.IngestService_SubmitRecordsServer) error {
	if s.Paused() {
		return status.Error(codes.Unavailable, "ingest is paused by an operator; retry later")
	}
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "empty submission")
	}
	if err != nil {
		return err
	}
	src := first.GetSource()
	if src == dmicv1.Source_SOURCE_UNSPECIFIED {
		src = dmicv1.Source_SOURCE_PROVIDER
	}
	sub := newSubmission(s.producer, s.clock.Now(), first.GetDataset(), src, first.GetSubmitterOrgCode(), true)
	var line int64
	req := first
	ctx := stream.Context()
	err = func() error {
		for {
			for _, js := range req.GetJsonRecords() {
				line++
				it := record.Item{Line: line}
				rec, ds, derr := record.DecodeJSON([]byte(js), sub.dataset)
				if derr != nil {
					if de, ok := derr.(*record.DecodeError); ok {
						de.Line = line
					}
					it.Err = derr
				} else {
					it.Record, it.Dataset = rec, ds
				}
				if err := sub.add(ctx, it); err != nil {
					return err
				}
			}
			var rerr error
			req, rerr = stream.Recv()
			if errors.Is(rerr, io.EOF) {
				// Every message arrived whole: each record is a "line".
				sub.resp.Read = &dmicv1.ReadSummary{Records: line, Lines: line}
				return sub.finish(ctx, "grpc")
			}
			if rerr != nil {
				return rerr
			}
		}
	}()
	s.finish(sub, "grpc", err)
	if err != nil {
		return status.Errorf(codes.Unavailable, "submission %s not fully stored (resend it): %v", sub.id, err)
	}
	return stream.SendAndClose(sub.resp)
}
