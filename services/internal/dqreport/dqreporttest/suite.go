// Package dqreporttest holds the conformance suite of submission reports:
// sets of outcomes (and receipts) with the report each must give. The
// in-memory dqreport.Builder and the ClickHouse report (chstore) both run it,
// so the offline checker and the running system cannot drift apart.
package dqreporttest

import (
	"fmt"
	"strings"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/dqreport"

	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
)

// Case is one submission's outcomes and the report they must give.
type Case struct {
	Name         string
	SubmissionID string
	// Limit is the number of failing records to list.
	Limit int
	// Receipts are added in order (of one submission, attempt and state, the
	// last counts): usually one, or one per attempt and state; also those
	// of other submissions with the same key.
	Receipts []*validationv1.SubmissionReceipt
	// Batches are added in order; the store writes each as one insert.
	Batches [][]*validationv1.ValidationOutcome
	Want    *validationv1.SubmissionReport
}

// Received is when every submission of the suite was received. It has a
// fraction of a second, which reports drop.
var Received = time.Date(2025, 4, 2, 10, 30, 15, 123456789, time.UTC)

// Validated is the time of the suite's first verdicts.
var Validated = Received.Add(2 * time.Second)

const (
	specOld = "apc-2025.1"
	specNew = "apc-2025.2"
)

var (
	accepted = validationv1.Outcome_OUTCOME_ACCEPTED
	warned   = validationv1.Outcome_OUTCOME_WARNED
	rejected = validationv1.Outcome_OUTCOME_REJECTED
	errorSev = dmicv1.Severity_SEVERITY_ERROR
	warnSev  = dmicv1.Severity_SEVERITY_WARNING
)

// Outcome returns the validate stage's verdict on line of submission sub,
// read from raw partition 1 at offset 1000+line, against specOld.
func Outcome(sub string, line int64, v validationv1.Outcome, fs ...*dmicv1.Failure) *validationv1.ValidationOutcome {
	id := fmt.Sprintf("BRR8%06d", line)
	return &validationv1.ValidationOutcome{
		Header: &dmicv1.EnvelopeHeader{
			RecordKey:        "RR8|apc|" + id,
			Dataset:          dmicv1.Dataset_DATASET_APC,
			Source:           dmicv1.Source_SOURCE_PROVIDER,
			SubmitterOrgCode: "RR8",
			SubmissionId:     sub,
			ReceivedTime:     timestamppb.New(Received),
			SpecVersion:      specOld,
			RawPartition:     1,
			RawOffset:        1000 + line,
			LineNumber:       line,
		},
		RecordId:      id,
		ProviderCode:  "RR8",
		Outcome:       v,
		Failures:      fs,
		Stage:         "validate",
		ValidatedTime: timestamppb.New(Validated),
	}
}

// Failure names a broken rule. The message names the rule and field only.
func Failure(rule, field string, sev dmicv1.Severity) *dmicv1.Failure {
	msg := "the record breaks rule " + rule
	if field != "" {
		msg = field + " breaks rule " + rule
	}
	return &dmicv1.Failure{RuleId: rule, Field: field, Severity: sev, Message: msg}
}

// Receipt is ingest's receipt for sub.
func Receipt(sub string, records, refused int64) *validationv1.SubmissionReceipt {
	return &validationv1.SubmissionReceipt{
		SubmissionId: sub, Dataset: dmicv1.Dataset_DATASET_APC, Source: dmicv1.Source_SOURCE_PROVIDER,
		SubmitterOrgCode: "RR8", ReceivedTime: timestamppb.New(Received), Records: records, Refused: refused, Transport: "http",
	}
}

func at(o *validationv1.ValidationOutcome, t time.Time, spec string) *validationv1.ValidationOutcome {
	o.ValidatedTime = timestamppb.New(t)
	o.Header.SpecVersion = spec
	return o
}

// failing is the expected listing of o.
func failing(o *validationv1.ValidationOutcome) *validationv1.FailingRecord {
	return &validationv1.FailingRecord{LineNumber: o.GetHeader().GetLineNumber(), RecordId: o.GetRecordId(), Outcome: o.GetOutcome(), Failures: o.GetFailures()}
}

// report is the expected report of a submission with a final receipt of one
// attempt (a case without a receipt clears State and Attempts).
func report(sub string, records, validated int64, complete bool, a, w, r int64) *validationv1.SubmissionReport {
	return &validationv1.SubmissionReport{
		SubmissionId: sub, Dataset: dmicv1.Dataset_DATASET_APC, SubmitterOrgCode: "RR8", ReceivedTime: timestamppb.New(Received.Truncate(time.Second)),
		Records: records, Validated: validated, Complete: complete, Accepted: a, Warned: w, Rejected: r,
		State: validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED, Attempts: 1,
	}
}

// Attempt is ingest's receipt for one attempt to store sub, sent with an
// idempotency key: its start (RECEIVING), or how it ended (RECEIVED with
// the counts, or ABANDONED). Every attempt has the submission's received
// time; attempt n was received n-1 minutes later.
func Attempt(sub, key string, attempt int64, state validationv1.SubmissionState, records, refused int64) *validationv1.SubmissionReceipt {
	r := Receipt(sub, records, refused)
	r.State, r.IdempotencyKey, r.ContentSha256, r.Attempt = state, key, Digest, attempt
	r.AttemptTime = timestamppb.New(Received.Add(time.Duration(attempt-1) * time.Minute))
	return r
}

// Digest is the content digest the suite's attempts carry.
const Digest = "5e0a5d7c1e3f0f2b8f4e6b0c9a1d2e3f4a5b6c7d8e9f00112233445566778899"

const (
	receiving = validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING
	received  = validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED
	abandoned = validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED
)

func rule(id, field string, sev dmicv1.Severity, n int64) *validationv1.RuleCount {
	return &validationv1.RuleCount{RuleId: id, Field: field, Severity: sev, Records: n}
}

// Cases returns the suite, freshly built (callers may modify it).
func Cases() []Case {
	return []Case{
		acceptedOnly(), mixed(), redelivered(), rejudged(), moreThanLimit(),
		noReceiptYet(), receiptOnly(), incomplete(), noSubmission(), sparse(),
		resent(), abandonedAttempt(), stillReceiving(), supersededCase("sub-superseded-first"), supersededCase("sub-superseded-second"),
	}
}

func acceptedOnly() Case {
	const sub = "sub-accepted"
	want := report(sub, 3, 3, true, 3, 0, 0)
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "every record accepted", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{Receipt(sub, 3, 0)},
		Batches:  [][]*validationv1.ValidationOutcome{{Outcome(sub, 1, accepted), Outcome(sub, 2, accepted), Outcome(sub, 3, accepted)}},
		Want:     want,
	}
}

func mixed() Case {
	const sub = "sub-mixed"
	gp := func() *dmicv1.Failure { return Failure("W-GP-UNKNOWN", "general_medical_practice_code", warnSev) }
	l1 := Outcome(sub, 1, accepted)
	l2 := Outcome(sub, 2, warned, gp())
	l3 := Outcome(sub, 3, rejected, Failure("NHS-002", "nhs_number", errorSev), Failure("DOB-001", "person_birth_date", errorSev), gp())
	// The same rule on the same field twice counts the record once.
	l4 := Outcome(sub, 4, rejected, Failure("NHS-002", "nhs_number", errorSev), Failure("NHS-002", "nhs_number", errorSev))
	// Refused at the door: undecodable, no record id, never on the raw topic.
	l5 := Outcome(sub, 5, rejected, Failure("DEC-JSON", "", errorSev))
	l5.Stage, l5.RecordId, l5.Header.RecordKey, l5.Header.SpecVersion = "ingest", "", "", ""
	l5.Header.RawPartition, l5.Header.RawOffset = 0, 0
	l6 := at(Outcome(sub, 6, accepted), Validated, specNew)
	l7 := Outcome(sub, 7, warned, Failure("W-ETHNIC", "ethnic_category", warnSev), gp())
	l8 := Outcome(sub, 8, rejected, Failure("PC-001", "postcode_of_usual_address", errorSev))

	want := report(sub, 8, 8, true, 2, 2, 4)
	want.Rules = []*validationv1.RuleCount{
		rule("DEC-JSON", "", errorSev, 1),
		rule("DOB-001", "person_birth_date", errorSev, 1),
		rule("NHS-002", "nhs_number", errorSev, 2),
		rule("PC-001", "postcode_of_usual_address", errorSev, 1),
		rule("W-ETHNIC", "ethnic_category", warnSev, 1),
		rule("W-GP-UNKNOWN", "general_medical_practice_code", warnSev, 3),
	}
	want.FailingRecords = []*validationv1.FailingRecord{failing(l2), failing(l3), failing(l4), failing(l5), failing(l7), failing(l8)}
	want.SpecVersions = []string{specOld, specNew}
	return Case{
		Name: "accepted, warned, rejected and refused at the door", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{Receipt(sub, 8, 1)},
		// Out of line order, as outcomes arrive from several partitions.
		Batches: [][]*validationv1.ValidationOutcome{{l5}, {l8, l1, l3, l2}, {l4, l6, l7}},
		Want:    want,
	}
}

func redelivered() Case {
	const sub = "sub-redelivered"
	o := func() []*validationv1.ValidationOutcome {
		return []*validationv1.ValidationOutcome{
			Outcome(sub, 1, rejected, Failure("NHS-002", "nhs_number", errorSev)),
			Outcome(sub, 2, warned, Failure("W-ETHNIC", "ethnic_category", warnSev)),
			Outcome(sub, 3, accepted),
		}
	}
	first, again := o(), o()
	want := report(sub, 3, 3, true, 1, 1, 1)
	want.Rules = []*validationv1.RuleCount{rule("NHS-002", "nhs_number", errorSev, 1), rule("W-ETHNIC", "ethnic_category", warnSev, 1)}
	want.FailingRecords = []*validationv1.FailingRecord{failing(first[0]), failing(first[1])}
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "redelivered outcomes and receipt count once", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{Receipt(sub, 3, 0), Receipt(sub, 3, 0)},
		Batches:  [][]*validationv1.ValidationOutcome{first, again, {o()[1], o()[1]}},
		Want:     want,
	}
}

func rejudged() Case {
	const sub = "sub-rejudged"
	t1, t2 := Validated.Add(time.Minute), Validated.Add(time.Hour)
	oldL1 := at(Outcome(sub, 1, rejected, Failure("X-OLD", "hrg_code", errorSev)), t1, specOld)
	oldL2 := at(Outcome(sub, 2, warned, Failure("W-OLD", "hrg_code", warnSev)), t1, specOld)
	newL1 := at(Outcome(sub, 1, accepted), t2, specNew)
	// A verdict older than the one held, arriving late: it changes nothing.
	staleL2 := at(Outcome(sub, 2, rejected, Failure("X-STALE", "hrg_code", errorSev)), Validated, specOld)
	newL2 := at(Outcome(sub, 2, warned, Failure("W-NEW", "ethnic_category", warnSev)), t2, specNew)

	want := report(sub, 2, 2, true, 1, 1, 0)
	want.Rules = []*validationv1.RuleCount{rule("W-NEW", "ethnic_category", warnSev, 1)}
	want.FailingRecords = []*validationv1.FailingRecord{failing(newL2)}
	want.SpecVersions = []string{specNew}
	return Case{
		Name: "a later verdict replaces an earlier one, a stale one does not", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{Receipt(sub, 2, 0)},
		Batches:  [][]*validationv1.ValidationOutcome{{oldL1, oldL2}, {newL1}, {staleL2}, {newL2}},
		Want:     want,
	}
}

func moreThanLimit() Case {
	const sub, n, limit = "sub-many", 40, 5
	var all []*validationv1.ValidationOutcome
	want := report(sub, n, n, true, 0, 0, 0)
	for line := int64(n); line >= 1; line-- { // last line first
		var o *validationv1.ValidationOutcome
		switch {
		case line%3 == 0:
			o = Outcome(sub, line, accepted)
			want.Accepted++
		case line%2 == 1:
			o = Outcome(sub, line, rejected, Failure("R-1", "hrg_code", errorSev))
			want.Rejected++
		default:
			o = Outcome(sub, line, warned, Failure("W-1", "ethnic_category", warnSev))
			want.Warned++
		}
		all = append(all, o)
	}
	for _, line := range []int{1, 2, 4, 5, 7} {
		want.FailingRecords = append(want.FailingRecords, failing(all[n-line]))
	}
	want.Rules = []*validationv1.RuleCount{rule("R-1", "hrg_code", errorSev, want.Rejected), rule("W-1", "ethnic_category", warnSev, want.Warned)}
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "more failing records than the limit", SubmissionID: sub, Limit: limit,
		Receipts: []*validationv1.SubmissionReceipt{Receipt(sub, n, 0)},
		Batches:  [][]*validationv1.ValidationOutcome{all[:10], all[10:25], all[25:]},
		Want:     want,
	}
}

func noReceiptYet() Case {
	const sub = "sub-noreceipt"
	l1 := Outcome(sub, 1, rejected, Failure("NHS-002", "nhs_number", errorSev))
	l2 := Outcome(sub, 2, accepted)
	l2.Header.ReceivedTime = timestamppb.New(Received.Add(time.Hour)) // the lowest position's header counts
	want := report(sub, 2, 2, false, 1, 0, 1)
	want.State, want.Attempts = 0, 0
	want.Rules = []*validationv1.RuleCount{rule("NHS-002", "nhs_number", errorSev, 1)}
	want.FailingRecords = []*validationv1.FailingRecord{failing(l1)}
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "outcomes before the receipt", SubmissionID: sub, Limit: 100,
		Batches: [][]*validationv1.ValidationOutcome{{l2}, {l1}},
		Want:    want,
	}
}

func receiptOnly() Case {
	const sub = "sub-waiting"
	return Case{
		Name: "a receipt and no verdict yet", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{Receipt(sub, 4, 0)},
		Want:     report(sub, 4, 0, false, 0, 0, 0),
	}
}

func incomplete() Case {
	const sub = "sub-partial"
	l2 := Outcome(sub, 2, warned, Failure("W-ETHNIC", "ethnic_category", warnSev))
	want := report(sub, 5, 2, false, 1, 1, 0)
	want.Rules = []*validationv1.RuleCount{rule("W-ETHNIC", "ethnic_category", warnSev, 1)}
	want.FailingRecords = []*validationv1.FailingRecord{failing(l2)}
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "some records not validated yet", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{Receipt(sub, 5, 0)},
		Batches:  [][]*validationv1.ValidationOutcome{{Outcome(sub, 1, accepted), l2}},
		Want:     want,
	}
}

// noSubmission: records produced straight to the raw topic have no submission
// and no line; each is its raw position.
func noSubmission() Case {
	raw := func(partition int32, offset int64, v validationv1.Outcome, fs ...*dmicv1.Failure) *validationv1.ValidationOutcome {
		o := Outcome("", 0, v, fs...)
		o.RecordId = fmt.Sprintf("BRR8P%dO%d", partition, offset)
		o.Header.RecordKey = "RR8|apc|" + o.RecordId
		o.Header.RawPartition, o.Header.RawOffset = partition, offset
		return o
	}
	o := func() []*validationv1.ValidationOutcome {
		return []*validationv1.ValidationOutcome{
			raw(2, 100, rejected, Failure("NHS-002", "nhs_number", errorSev)),
			raw(2, 101, warned, Failure("W-ETHNIC", "ethnic_category", warnSev)),
			raw(0, 0, rejected, Failure("NHS-002", "nhs_number", errorSev)),
			raw(0, 1, accepted),
		}
	}
	first := o()
	want := report("", 4, 4, false, 1, 1, 2)
	want.State, want.Attempts = 0, 0
	want.Rules = []*validationv1.RuleCount{rule("NHS-002", "nhs_number", errorSev, 2), rule("W-ETHNIC", "ethnic_category", warnSev, 1)}
	want.FailingRecords = []*validationv1.FailingRecord{failing(first[2]), failing(first[0]), failing(first[1])}
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "records without a submission are told apart by raw position", SubmissionID: "", Limit: 100,
		Batches: [][]*validationv1.ValidationOutcome{first, o()},
		Want:    want,
	}
}

// sparse: outcomes that leave things out are stored and reported alike.
func sparse() Case {
	const sub = "sub-sparse"
	// No verdict given: derived from the failures.
	l1 := Outcome(sub, 1, validationv1.Outcome_OUTCOME_UNSPECIFIED, Failure("NHS-002", "nhs_number", errorSev), nil)
	l1.Header.ReceivedTime = nil // the lowest position: the report has no received time
	l1.Header.Dataset = dmicv1.Dataset(99)
	l1.Header.SubmitterOrgCode = "RR8X"
	l1.ValidatedTime = nil
	l2 := Outcome(sub, 2, validationv1.Outcome_OUTCOME_UNSPECIFIED, Failure("W-ETHNIC", "ethnic_category", warnSev))
	l3 := Outcome(sub, 3, validationv1.Outcome_OUTCOME_UNSPECIFIED)
	l3.Header.SpecVersion = ""
	// A failure that does not say its severity.
	l4 := Outcome(sub, 4, rejected, &dmicv1.Failure{RuleId: "X-1", Field: "hrg_code"})

	want := &validationv1.SubmissionReport{
		SubmissionId: sub, SubmitterOrgCode: "RR8X", Records: 4, Validated: 4, Accepted: 1, Warned: 1, Rejected: 2,
		Rules: []*validationv1.RuleCount{
			rule("NHS-002", "nhs_number", errorSev, 1),
			rule("W-ETHNIC", "ethnic_category", warnSev, 1),
			rule("X-1", "hrg_code", dmicv1.Severity_SEVERITY_UNSPECIFIED, 1),
		},
		FailingRecords: []*validationv1.FailingRecord{
			{LineNumber: 1, RecordId: l1.RecordId, Outcome: rejected, Failures: []*dmicv1.Failure{l1.Failures[0]}},
			{LineNumber: 2, RecordId: l2.RecordId, Outcome: warned, Failures: l2.Failures},
			failing(l4),
		},
		SpecVersions: []string{specOld},
	}
	return Case{
		Name: "outcomes that leave fields out", SubmissionID: sub, Limit: 100,
		Batches: [][]*validationv1.ValidationOutcome{{l4, l3, l2, l1}},
		Want:    want,
	}
}

// resent: an attempt interrupted after two records (ingest killed: a start
// and no end), and a resend of the whole file with the same key, which is the
// same submission. Each record counts once, with the resend's verdict.
func resent() Case {
	const sub, key = "sub-resent", "RR8-apc-2025-04.ndjson"
	first := func(line int64, v validationv1.Outcome, fs ...*dmicv1.Failure) *validationv1.ValidationOutcome {
		return Outcome(sub, line, v, fs...)
	}
	again := func(line int64, v validationv1.Outcome, fs ...*dmicv1.Failure) *validationv1.ValidationOutcome {
		o := at(Outcome(sub, line, v, fs...), Validated.Add(time.Minute), specOld)
		o.Header.RawOffset = 2000 + line // produced again: new raw offsets
		return o
	}
	nhs := func() *dmicv1.Failure { return Failure("NHS-002", "nhs_number", errorSev) }
	eth := func() *dmicv1.Failure { return Failure("W-ETHNIC", "ethnic_category", warnSev) }
	l1, l2, l3 := again(1, rejected, nhs()), again(2, warned, eth()), again(3, accepted)
	want := report(sub, 3, 3, true, 1, 1, 1)
	want.State, want.Attempts, want.IdempotencyKey, want.ContentSha256 = received, 2, key, Digest
	want.Rules = []*validationv1.RuleCount{rule("NHS-002", "nhs_number", errorSev, 1), rule("W-ETHNIC", "ethnic_category", warnSev, 1)}
	want.FailingRecords = []*validationv1.FailingRecord{failing(l1), failing(l2)}
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "an interrupted attempt and its resend count once", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{
			Attempt(sub, key, 1, receiving, 0, 0), Attempt(sub, key, 2, receiving, 0, 0), Attempt(sub, key, 2, received, 3, 0),
		},
		Batches: [][]*validationv1.ValidationOutcome{{first(1, rejected, nhs()), first(2, warned, eth())}, {l3, l1}, {l2}},
		Want:    want,
	}
}

// abandonedAttempt: an attempt that stopped after two records and that no
// resend finished.
func abandonedAttempt() Case {
	const sub, key = "sub-abandoned", "RR8-apc-abandoned"
	l2 := Outcome(sub, 2, rejected, Failure("NHS-002", "nhs_number", errorSev))
	want := report(sub, 2, 2, false, 1, 0, 1)
	want.State, want.IdempotencyKey, want.ContentSha256 = abandoned, key, Digest
	want.Rules = []*validationv1.RuleCount{rule("NHS-002", "nhs_number", errorSev, 1)}
	want.FailingRecords = []*validationv1.FailingRecord{failing(l2)}
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "an abandoned attempt is not complete", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{Attempt(sub, key, 1, receiving, 0, 0), Attempt(sub, key, 1, abandoned, 0, 0)},
		Batches:  [][]*validationv1.ValidationOutcome{{Outcome(sub, 1, accepted), l2}},
		Want:     want,
	}
}

// stillReceiving: ingest has started an attempt (a resend of an abandoned
// one) and not finished it.
func stillReceiving() Case {
	const sub, key = "sub-receiving", "RR8-apc-receiving"
	want := report(sub, 1, 1, false, 1, 0, 0)
	want.State, want.Attempts, want.IdempotencyKey, want.ContentSha256 = receiving, 2, key, Digest
	want.SpecVersions = []string{specOld}
	return Case{
		Name: "an attempt still being stored", SubmissionID: sub, Limit: 100,
		Receipts: []*validationv1.SubmissionReceipt{
			Attempt(sub, key, 1, receiving, 0, 0), Attempt(sub, key, 1, abandoned, 0, 0), Attempt(sub, key, 2, receiving, 0, 0),
		},
		Batches: [][]*validationv1.ValidationOutcome{{Outcome(sub, 1, accepted)}},
		Want:    want,
	}
}

// supersededCase: two finished submissions with one key (as when the log of
// keys was lost, or two ingest instances took the key at one instant with
// different files): the one received later is current, the other superseded.
// sub is either of them.
func supersededCase(sub string) Case {
	const first, second, key = "sub-superseded-first", "sub-superseded-second", "RR8-apc-twice"
	later := func(r *validationv1.SubmissionReceipt) *validationv1.SubmissionReceipt {
		r.ReceivedTime = timestamppb.New(Received.Add(time.Hour))
		r.ContentSha256 = strings.Repeat("ab", 32)
		return r
	}
	receipts := []*validationv1.SubmissionReceipt{
		Attempt(first, key, 1, receiving, 0, 0), Attempt(first, key, 1, received, 1, 0),
		later(Attempt(second, key, 1, receiving, 0, 0)), later(Attempt(second, key, 1, received, 1, 0)),
	}
	o := Outcome(sub, 1, accepted)
	want := report(sub, 1, 1, true, 1, 0, 0)
	want.IdempotencyKey, want.ContentSha256 = key, Digest
	want.SpecVersions = []string{specOld}
	name := "the earlier of two submissions with one key is superseded"
	if sub == first {
		want.State, want.SupersededBy = validationv1.SubmissionState_SUBMISSION_STATE_SUPERSEDED, second
	} else {
		name = "the later of two submissions with one key is current"
		o.Header.ReceivedTime = timestamppb.New(Received.Add(time.Hour))
		want.ReceivedTime = timestamppb.New(Received.Add(time.Hour).Truncate(time.Second))
		want.ContentSha256 = strings.Repeat("ab", 32)
	}
	return Case{
		Name: name, SubmissionID: sub, Limit: 100,
		Receipts: receipts,
		Batches:  [][]*validationv1.ValidationOutcome{{o}},
		Want:     want,
	}
}

// Build runs the case through a dqreport.Builder: the offline side of the
// conformance suite.
func (c Case) Build() *validationv1.SubmissionReport {
	b := dqreport.NewBuilder(c.Limit)
	for _, r := range c.Receipts {
		b.AddReceipt(r)
	}
	for _, batch := range c.Batches {
		for _, o := range batch {
			b.Add(o)
		}
	}
	return b.Report()
}
