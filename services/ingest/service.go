package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// Service takes submissions.
type Service struct {
	dmicv1.UnimplementedIngestServiceServer
	producer Producer
	attempts *Attempts
	log      *slog.Logger
	clock    clock.Clock

	spoolDir     string
	spoolMemory  int
	abandonAfter time.Duration
	limits       Limits
	// rate is each organisation's token bucket; nil without a rate limit.
	rate *rateLimiter

	// running are the attempts this instance is storing: never abandoned
	// for being slow.
	runMu   sync.Mutex
	running map[attemptKey]bool

	accepted atomic.Int64
	rejected atomic.Int64

	mu     sync.Mutex
	paused bool

	mRecords  *prometheus.CounterVec
	mSubs     *prometheus.CounterVec
	mRefusals *prometheus.CounterVec
}

// DefaultAbandonAfter is how long an attempt may go without ending before
// ingest abandons it: storing even the largest submission takes minutes.
const DefaultAbandonAfter = 15 * time.Minute

// New builds the ingest service. attempts is the attempt log shared by every
// ingest instance; Run follows it.
func New(p Producer, attempts *Attempts, log *slog.Logger, reg prometheus.Registerer, opts ...Option) *Service {
	s := &Service{producer: p, attempts: attempts, log: log, spoolDir: os.TempDir(), spoolMemory: DefaultSpoolMemory,
		abandonAfter: DefaultAbandonAfter, running: map[attemptKey]bool{}, limits: DefaultLimits(),
		mRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_ingest_records_total",
			Help: "Records received, by data set, source and outcome."}, []string{"dataset", "source", "outcome"}),
		mSubs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_ingest_submissions_total",
			Help: "Submissions received, by transport and outcome."}, []string{"transport", "outcome"}),
		mRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_ingest_refusals_total",
			Help: "Submissions refused by ingest's limits, by reason: body-too-large, too-many-records, rate-limited."}, []string{"reason"}),
	}
	reg.MustRegister(s.mRecords, s.mSubs, s.mRefusals)
	for _, o := range opts {
		o(s)
	}
	s.rate = newRateLimiter(s.limits.Rate, s.limits.Burst, s.clock)
	return s
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock that stamps each submission's receipt time (which
// picks the specification version validate applies) and each attempt's, and
// that tells when an attempt that never ended is abandoned. Without it ingest
// reads the wall clock.
func WithClock(c clock.Clock) Option { return func(s *Service) { s.clock = c } }

// WithSpool sets where a submission is kept while it is received (dir; the
// system's temporary folder by default) and how much of it in memory.
func WithSpool(dir string, memory int) Option {
	return func(s *Service) { s.spoolDir, s.spoolMemory = dir, memory }
}

// WithAbandonAfter sets how long an attempt may go without ending (ingest
// stopped mid-way) before it is abandoned (DefaultAbandonAfter).
func WithAbandonAfter(d time.Duration) Option { return func(s *Service) { s.abandonAfter = d } }

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

// run feeds every item of a reader into a submission, then sends its
// receipt with the last records.
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
	// The answer says how much of the body was read, so that a body cut
	// short or a CSV quote left open is never taken for a smaller file.
	sub.resp.Read = rd.Summary().Proto()
	return sub.finish(ctx)
}

// attemptKey names one attempt of one submission.
type attemptKey struct {
	id      string
	attempt int64
}

func (s *Service) setRunning(sub *submission, on bool) {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	k := attemptKey{sub.id, sub.start.GetAttempt()}
	if on {
		s.running[k] = true
	} else {
		delete(s.running, k)
	}
}

func (s *Service) isRunning(id string, attempt int64) bool {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	return s.running[attemptKey{id, attempt}]
}

// KeyConflict is the refusal of an idempotency key already used with other
// content.
type KeyConflict struct {
	Key string
	// Holder is the start of the submission that holds the key.
	Holder *validationv1.SubmissionReceipt
}

func (e *KeyConflict) Error() string {
	return fmt.Sprintf("idempotency key %q is already used by submission %s (received %s) for other content: "+
		"a resend must be the same file, and a different file needs a new key", e.Key, e.Holder.GetSubmissionId(),
		e.Holder.GetReceivedTime().AsTime().UTC().Format(time.RFC3339))
}

// begin starts an attempt to store the submission id names: the attempt log
// decides its id, received time and attempt number (or refuses the key with
// a *KeyConflict), and its start receipt goes out before any record.
func (s *Service) begin(ctx context.Context, id submissionIdentity, keepAll bool, transport string) (*submission, error) {
	now := timestamppb.New(s.clock.Now())
	r := id.receipt()
	r.ReceivedTime, r.AttemptTime, r.Transport = now, now, transport
	got, err := s.attempts.Claim(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("record the start of submission %s: %w", r.GetSubmissionId(), err)
	}
	if got.Conflict != nil {
		return nil, &KeyConflict{Key: id.key, Holder: got.Conflict}
	}
	sub := newSubmission(s.producer, got.Receipt, keepAll, s.limits.AnswerResults)
	s.setRunning(sub, true)
	if err := sub.begin(ctx); err != nil {
		s.end(ctx, sub, err)
		return nil, err
	}
	return sub, nil
}

// end writes how an attempt ended to the attempt log, and for one that
// failed an ABANDONED receipt to the store, so that the failure is visible at
// once (if the broker cannot take these either, the attempt is abandoned
// later, for never having ended). It gives up after a few seconds: the
// provider has been answered.
func (s *Service) end(ctx context.Context, sub *submission, err error) {
	defer s.setRunning(sub, false)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	r := sub.final
	if err != nil || r == nil {
		r = sub.receipt(validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED)
		if werr := s.producer.WriteMessages(ctx, receiptMessage(r)); werr != nil {
			s.log.Warn("abandoned receipt not stored; the attempt is abandoned later", "submission_id", sub.id, "attempt", r.GetAttempt(), "err", werr)
		}
	}
	if eerr := s.attempts.End(ctx, r); eerr != nil {
		s.log.Warn("end of attempt not logged", "submission_id", sub.id, "attempt", r.GetAttempt(), "state", dqreport.StateName(r.GetState()), "err", eerr)
	}
}

func (s *Service) finish(ctx context.Context, sub *submission, transport string, err error) {
	s.end(ctx, sub, err)
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
	attrs := []any{"submission_id", sub.id, "attempt", sub.start.GetAttempt(), "transport", transport, "dataset", ds, "source", src,
		"submitter", sub.submitter, "accepted", sub.resp.Accepted, "rejected", sub.resp.Rejected,
		"lines", sub.resp.GetRead().GetLines(), "stopped_at_line", sub.resp.GetRead().GetStoppedAtLine()}
	if err != nil {
		// The provider was told to resend; an operator looking for the
		// submission id finds why.
		s.log.Error("submission not fully stored", append(attrs, "err", err)...)
		return
	}
	s.log.Info("submission", attrs...)
}

// Run follows the attempt log (again after an error), and from once it has
// read the log to its end, abandons the attempts that never ended, until ctx
// ends.
func (s *Service) Run(ctx context.Context) error {
	if err := controllog.CatchUp(ctx, s.attempts.Follow, func(err error) {
		s.log.Error("following the attempt log; retrying", "err", err)
	}); err != nil {
		return nil // ctx ended
	}
	// Check a few times per abandon time, and at least every minute.
	every := min(max(s.abandonAfter/4, time.Second), time.Minute)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if _, err := s.AbandonUnended(ctx); err != nil {
			s.log.Error("abandoning attempts that never ended", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// AbandonUnended abandons every attempt that started more than the abandon
// time ago (by the clock) and never ended, and that this instance is not
// storing: ingest stopped while storing it (a kill, a crash, a lost broker).
// Its ABANDONED receipt goes to the store, so that the report says so, and
// its end to the attempt log. Every instance does this; doing it twice is
// harmless. It returns how many it abandoned.
func (s *Service) AbandonUnended(ctx context.Context) (int, error) {
	stale := s.attempts.Unended(s.clock.Now().Add(-s.abandonAfter), s.isRunning)
	if len(stale) == 0 {
		return 0, nil
	}
	msgs := make([]kafka.Message, len(stale))
	for i, r := range stale {
		msgs[i] = receiptMessage(r)
	}
	if err := s.producer.WriteMessages(ctx, msgs...); err != nil {
		return 0, fmt.Errorf("abandon %d attempts: %w", len(stale), err)
	}
	for _, r := range stale {
		if err := s.attempts.End(ctx, r); err != nil {
			return 0, fmt.Errorf("abandon attempt %d of submission %s: %w", r.GetAttempt(), r.GetSubmissionId(), err)
		}
		s.log.Warn("attempt abandoned: it never ended", "submission_id", r.GetSubmissionId(), "attempt", r.GetAttempt(),
			"started", r.GetAttemptTime().AsTime().UTC().Format(time.RFC3339))
	}
	return len(stale), nil
}

// Router is where a service registers its HTTP routes: the API's
// access.Mux, whose every route has a rule in internal/access.
type Router interface {
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// RegisterHTTP adds the submission endpoint to mux.
func (s *Service) RegisterHTTP(mux Router) {
	mux.HandleFunc("POST /v1/submissions", s.handleSubmit)
}

// refusal answers an authorisation refusal (a gRPC status) over HTTP: 401
// or 403 with its message.
func refusal(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code := http.StatusForbidden
	if st.Code() == codes.Unauthenticated {
		code = http.StatusUnauthorized
	}
	httpError(w, code, st.Message())
}

// handleSubmit: POST /v1/submissions?dataset=apc[&results=errors][&idempotency_key=K]
// Body: NDJSON (application/x-ndjson, application/json) or CSV (text/csv) with a header row.
// The key may also come as the header Idempotency-Key. The submitter and the
// source are the caller's (authorise); source= and submitter=, if given,
// must agree with them.
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
	var src dmicv1.Source // unspecified: not named, the caller's
	if q.Has("source") {
		var err error
		if src, err = envelope.ParseSource(q.Get("source")); err != nil {
			problems = append(problems, "query parameter source: "+err.Error())
		}
	}
	keepAll := true
	switch q.Get("results") {
	case "", "all":
	case "errors":
		keepAll = false
	default:
		problems = append(problems, "query parameter results: must be all or errors")
	}
	key, err := httpKey(q.Get(KeyParameter), r.Header.Get(KeyHeader))
	if err != nil {
		problems = append(problems, err.Error())
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "" {
		ct = "application/x-ndjson"
	}
	csv := false
	switch ct {
	case "application/x-ndjson", "application/json", "application/jsonl", "text/plain":
	case "text/csv":
		csv = true
	default:
		problems = append(problems, fmt.Sprintf("Content-Type %q: use application/x-ndjson or text/csv", ct))
	}
	if len(problems) > 0 {
		httpError(w, http.StatusBadRequest, strings.Join(problems, "; "))
		return
	}
	sc, err := authorise(r.Context(), q.Get("submitter"), src)
	if err != nil {
		refusal(w, err)
		return
	}
	// The limits before the body is read: a refused submission costs
	// ingest nothing but its headers.
	if rf := s.checkRate(r.Context(), sc.submitter); rf != nil {
		limitAnswer(w, rf)
		return
	}
	maxBody := s.limits.MaxBodyBytes
	if r.ContentLength > maxBody {
		limitAnswer(w, s.refuseLimit(r.Context(), bodyTooLarge(maxBody)))
		return
	}
	// The whole body first: its digest is the submission's identity. Its
	// lines are counted as it comes, so that too many is refused without
	// reading the rest.
	maxLines := s.limits.MaxRecords
	if csv {
		maxLines++ // the header
	}
	sp := newSpool(s.spoolDir, s.spoolMemory)
	defer sp.Close()
	sp.expect(r.ContentLength) // at most MaxBodyBytes, checked above
	body := &lineCap{r: http.MaxBytesReader(w, r.Body, maxBody), max: maxLines}
	_, err = io.Copy(sp, body)
	if err == nil && body.lines() > maxLines {
		err = errTooManyLines
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			limitAnswer(w, s.refuseLimit(r.Context(), bodyTooLarge(maxBody)))
		case errors.Is(err, errTooManyLines):
			limitAnswer(w, s.refuseLimit(r.Context(), tooManyRecords(s.limits.MaxRecords)))
		default:
			httpError(w, http.StatusBadRequest, "request body could not be read: "+err.Error())
		}
		return
	}
	// reader reads the body from its start: twice for a provider's.
	reader := func() (*record.Reader, error) {
		body, err := sp.Reader()
		if err != nil {
			s.log.Error("spooled submission not readable", "err", err)
			httpError(w, http.StatusServiceUnavailable, "the submission could not be kept while it is stored; resend it")
			return nil, err
		}
		if csv {
			return record.NewCSVReader(body, ds)
		}
		return record.NewNDJSONReader(body, ds), nil
	}
	rd, err := reader()
	if err != nil {
		// A spool that cannot be read was answered by reader.
		if de, ok := errors.AsType[*record.DecodeError](err); ok {
			httpError(w, http.StatusBadRequest, "CSV: "+de.Error())
		}
		return
	}
	// A provider's records are its own, or nothing is stored: read them
	// all before the first is (a second reading of the spool).
	if sc.own {
		if err := sc.ownRecords(r.Context(), readerRecords(rd)); err != nil {
			refusal(w, err)
			return
		}
		if rd, err = reader(); err != nil {
			return
		}
	}
	// Once started, the submission is stored to the end even if the client
	// goes away: a resend is the same submission either way.
	ctx := context.WithoutCancel(r.Context())
	sub, err := s.begin(ctx, submissionIdentity{submitter: sc.submitter, dataset: ds, source: sc.source, key: key, digest: sp.Digest()}, keepAll, "http")
	var conflict *KeyConflict
	switch {
	case errors.As(err, &conflict):
		w.Header().Set("Location", "/v1/submissions/"+conflict.Holder.GetSubmissionId())
		httpError(w, http.StatusConflict, conflict.Error())
		return
	case err != nil:
		s.log.Error("submission not started", "err", err)
		httpError(w, http.StatusServiceUnavailable, "submission not stored (resend it): "+err.Error())
		return
	}
	access.SetSubject(r.Context(), sub.id)
	err = s.run(ctx, sub, rd)
	s.finish(ctx, sub, "http", err)
	if err != nil {
		// Records before the failure may have been stored; the resend is the
		// same submission and replaces them.
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("submission %s not fully stored (resend the same file%s): %v", sub.id, withKey(key), err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// Where the validation report of this submission will be.
	w.Header().Set("Location", "/v1/submissions/"+sub.id)
	b, _ := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}.Marshal(sub.resp)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

// limitAnswer answers a limit's refusal: 413, or 429 with Retry-After.
func limitAnswer(w http.ResponseWriter, r *limitRefusal) {
	if r.retryAfter > 0 {
		w.Header().Set("Retry-After", r.retryAfterSeconds())
	}
	httpError(w, r.httpStatus(), r.message)
}

// errTooManyLines: a body with more lines than a submission may have records.
var errTooManyLines = errors.New("more lines than the record limit")

// lineCap counts the lines of a body as it is read, and fails the read
// once there are more than max.
type lineCap struct {
	r        io.Reader
	max      int64
	newlines int64
	any      bool
	last     byte
}

func (c *lineCap) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.newlines += int64(bytes.Count(p[:n], []byte{'\n'}))
		c.any, c.last = true, p[n-1]
		if c.newlines > c.max {
			return n, errTooManyLines
		}
	}
	return n, err
}

// lines is the number of lines read: a last line without a line ending
// counts.
func (c *lineCap) lines() int64 {
	if c.any && c.last != '\n' {
		return c.newlines + 1
	}
	return c.newlines
}

func withKey(key string) string {
	if key == "" {
		return ""
	}
	return " with the same idempotency key"
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// SubmitRecords implements the gRPC client-streaming submission. The whole
// stream is received first: its digest is the submission's identity.
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
	if err := checkKey(first.GetIdempotencyKey()); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	sc, err := authorise(stream.Context(), first.GetSubmitterOrgCode(), first.GetSource())
	if err != nil {
		return err
	}
	if rf := s.checkRate(stream.Context(), sc.submitter); rf != nil {
		return rf.grpcStatus()
	}
	sp := newSpool(s.spoolDir, s.spoolMemory)
	defer sp.Close()
	var records, size int64
	for req := first; ; {
		for _, js := range req.GetJsonRecords() {
			// Over a cap, the rest of the stream is not read: returning
			// ends it.
			if records, size = records+1, size+int64(len(js)); records > s.limits.MaxRecords {
				return s.refuseLimit(stream.Context(), tooManyRecords(s.limits.MaxRecords)).grpcStatus()
			}
			if size > s.limits.MaxBodyBytes {
				return s.refuseLimit(stream.Context(), bodyTooLarge(s.limits.MaxBodyBytes)).grpcStatus()
			}
			if err := sp.writeRecord(js); err != nil {
				s.log.Error("submission not kept while received", "err", err)
				return status.Error(codes.Unavailable, "the submission could not be kept while it is stored; resend it")
			}
		}
		req, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	// A provider's records are its own, or nothing is stored.
	if err := sc.ownRecords(stream.Context(), spoolRecords(sp, first.GetDataset())); err != nil {
		return err
	}
	ctx := context.WithoutCancel(stream.Context())
	id := submissionIdentity{submitter: sc.submitter, dataset: first.GetDataset(), source: sc.source,
		key: first.GetIdempotencyKey(), digest: sp.Digest()}
	sub, err := s.begin(ctx, id, true, "grpc")
	var conflict *KeyConflict
	switch {
	case errors.As(err, &conflict):
		return status.Error(codes.AlreadyExists, conflict.Error())
	case err != nil:
		s.log.Error("submission not started", "err", err)
		return status.Errorf(codes.Unavailable, "submission not stored (resend it): %v", err)
	}
	access.SetSubject(stream.Context(), sub.id)
	var line int64
	err = sp.records(func(js []byte) error {
		line++
		it := record.Item{Line: line}
		var rec *dmicv1.CommissioningRecord
		var ds dmicv1.Dataset
		var derr error
		if len(js) > limits.MaxRecordBytes {
			derr = record.TooLong(line, len(js))
		} else {
			rec, ds, derr = record.DecodeJSON(js, sub.dataset)
		}
		if derr != nil {
			if de, ok := derr.(*record.DecodeError); ok {
				de.Line = line
			}
			it.Err = derr
		} else {
			it.Record, it.Dataset = rec, ds
		}
		return sub.add(ctx, it)
	})
	if err == nil {
		// Every message arrived whole: each record is a "line".
		sub.resp.Read = &dmicv1.ReadSummary{Records: line, Lines: line}
		err = sub.finish(ctx)
	}
	s.finish(ctx, sub, "grpc", err)
	if err != nil {
		return status.Errorf(codes.Unavailable, "submission %s not fully stored (resend the same records%s): %v", sub.id, withKey(id.key), err)
	}
	return stream.SendAndClose(sub.resp)
}
