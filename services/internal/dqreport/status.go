package dqreport

import (
	"cmp"
	"strings"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// State names as stored (submissions.state, submission_status.state) and shown.
const (
	StateReceiving  = "receiving"
	StateReceived   = "received"
	StateAbandoned  = "abandoned"
	StateSuperseded = "superseded"
)

var stateNames = enumNames[validationv1.SubmissionState]{
	{validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING, StateReceiving},
	{validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED, StateReceived},
	{validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED, StateAbandoned},
	{validationv1.SubmissionState_SUBMISSION_STATE_SUPERSEDED, StateSuperseded},
}

// StateName is the stored name of a state. A receipt without a state is a
// final receipt written before receipts had states: "received".
func StateName(s validationv1.SubmissionState) string { return stateNames.nameOf(s, StateReceived) }

// ParseState reverses StateName ("" is unspecified).
func ParseState(s string) validationv1.SubmissionState {
	return stateNames.parse(s, validationv1.SubmissionState_SUBMISSION_STATE_UNSPECIFIED)
}

// StateRank orders the receipts of one attempt: its start before how it
// ended. The latest receipt of a submission is the one with the highest
// attempt*4 + rank (the store's StateRankSQL computes the same).
func StateRank(name string) int64 {
	switch name {
	case StateReceived:
		return 3
	case StateAbandoned:
		return 2
	}
	return 1
}

// Identity is what makes two submissions of one scope (submitter, dataset,
// source) the same submission: the client's idempotency key, else the content
// digest. A receipt with neither (written before either existed) is its own
// identity.
func Identity(r *validationv1.SubmissionReceipt) string {
	switch {
	case r.GetIdempotencyKey() != "":
		return "key:" + r.GetIdempotencyKey()
	case r.GetContentSha256() != "":
		return "sha256:" + r.GetContentSha256()
	}
	return "id:" + r.GetSubmissionId()
}

// Status is what the receipts say of one submission.
type Status struct {
	State validationv1.SubmissionState
	// Attempts is how many times it was sent (at least 1).
	Attempts int64
	// SupersededBy names the submission that replaced it, when superseded.
	SupersededBy string
	// Finished is true once an attempt stored every record; Records and
	// Refused are then that attempt's counts.
	Finished         bool
	Records, Refused int64
	// Latest is the submission's latest receipt (highest attempt, then an
	// end over a start), where its dataset, submitter and times are read.
	Latest *validationv1.SubmissionReceipt
}

// Counted reports whether the submission's records count in the
// data-quality summaries: a submission that finished and was not superseded.
func (s Status) Counted() bool {
	return s.State == validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED
}

// Statuses gives the status of every submission that has a receipt, with the
// semantics of the store's submission_status view:
//
//   - receipts are kept one per (submission, attempt, state), the last given;
//   - a submission is finished once any attempt's receipt is RECEIVED (or has
//     no state: a final receipt from before states); its records are those of
//     the highest such attempt. Every attempt of one submission has the same
//     content, so any finished attempt tells its counts;
//   - unfinished, it is ABANDONED when its latest receipt says so, else
//     RECEIVING;
//   - of the finished submissions of one scope and Identity, the one received
//     last (then the greatest id) is current, RECEIVED; the others are
//     SUPERSEDED by it.
func Statuses(receipts []*validationv1.SubmissionReceipt) map[string]Status {
	type rowKey struct {
		id      string
		attempt int64
		state   string
	}
	rows := map[rowKey]*validationv1.SubmissionReceipt{}
	for _, r := range receipts {
		if r != nil {
			rows[rowKey{r.GetSubmissionId(), r.GetAttempt(), StateName(r.GetState())}] = r
		}
	}
	out := map[string]Status{}
	finishedAttempt := map[string]int64{}
	for k, r := range rows {
		s := out[k.id]
		s.Attempts = max(s.Attempts, k.attempt, 1)
		if s.Latest == nil || latestOrder(r) > latestOrder(s.Latest) {
			s.Latest = r
		}
		if k.state == StateReceived {
			if a, seen := finishedAttempt[k.id]; !seen || k.attempt > a {
				finishedAttempt[k.id] = k.attempt
				s.Finished, s.Records, s.Refused = true, r.GetRecords(), r.GetRefused()
			}
		}
		out[k.id] = s
	}
	current := map[string]string{} // scope and identity -> current submission
	for id, s := range out {
		if !s.Finished {
			continue
		}
		k := scopeKey(s.Latest)
		if c, ok := current[k]; !ok || compareCurrency(id, s, c, out[c]) > 0 {
			current[k] = id
		}
	}
	for id, s := range out {
		switch {
		case !s.Finished && StateName(s.Latest.GetState()) == StateAbandoned:
			s.State = validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED
		case !s.Finished:
			s.State = validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING
		case current[scopeKey(s.Latest)] != id:
			s.State = validationv1.SubmissionState_SUBMISSION_STATE_SUPERSEDED
			s.SupersededBy = current[scopeKey(s.Latest)]
		default:
			s.State = validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED
		}
		out[id] = s
	}
	return out
}

func latestOrder(r *validationv1.SubmissionReceipt) int64 {
	return r.GetAttempt()*4 + StateRank(StateName(r.GetState()))
}

// scopeKey is the scope and identity of a submission, as the store compares
// them: by the stored names of dataset and source.
func scopeKey(r *validationv1.SubmissionReceipt) string {
	return strings.Join([]string{r.GetSubmitterOrgCode(), record.DatasetName(r.GetDataset()),
		record.SourceName(r.GetSource()), Identity(r)}, "\x00")
}

// compareCurrency orders two finished submissions of one scope and identity:
// received later, then the greater id, is more current.
func compareCurrency(a string, sa Status, b string, sb Status) int {
	return cmp.Or(cmp.Compare(storedSeconds(sa.Latest.GetReceivedTime().AsTime()), storedSeconds(sb.Latest.GetReceivedTime().AsTime())),
		strings.Compare(a, b))
}

// ApplyStatus fills a report from its submission's status: r.Validated must
// be set. A submission that has not finished has as many records as were
// validated so far, and is not complete.
func ApplyStatus(r *validationv1.SubmissionReport, st Status) {
	l := st.Latest
	r.Dataset = NormalizeDataset(l.GetDataset())
	r.SubmitterOrgCode = l.GetSubmitterOrgCode()
	r.ReceivedTime = StoredTime(l.GetReceivedTime())
	r.State, r.Attempts, r.SupersededBy = st.State, st.Attempts, st.SupersededBy
	r.IdempotencyKey, r.ContentSha256 = l.GetIdempotencyKey(), l.GetContentSha256()
	r.Records = r.Validated
	if st.Finished {
		r.Records = st.Records
		r.Complete = r.Validated >= r.Records
	}
}
