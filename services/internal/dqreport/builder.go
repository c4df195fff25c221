package dqreport

import (
	"cmp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
)

// Builder accumulates the outcomes of one submission into its report, with the
// same semantics and ordering as chstore.SubmissionReport over the same
// outcomes:
//
//   - one verdict per record (submission id, Position): the latest validated
//     time, to the second, wins; on a tie the one added last;
//   - validated, accepted, warned and rejected count records by that verdict
//     (an outcome that does not say is derived, see Verdict);
//   - rules count distinct records per (rule id, field, severity), over every
//     failure of every record's verdict, ordered by CompareRules;
//   - failing records are the first limit records whose verdict is not
//     accepted, by line number then position, each with its failures in
//     their order;
//   - spec versions are the distinct non-empty versions of the verdicts, sorted;
//   - the submission reported on is that of the outcomes (else of the first
//     receipt added). Its state, attempts, dataset, submitter, received time,
//     key and content digest come from its receipts (see Statuses, which may
//     need the receipts of other submissions of the same key to tell that
//     this one was superseded), otherwise from the verdict with the lowest
//     position; records come from its final receipt, otherwise they are the
//     number validated; complete needs a final receipt and every record
//     validated.
//
// Memory: the builder keeps a few machine words per record (to replace an
// earlier verdict exactly) and the details of at most limit failing records.
// The one consequence of that bound: when a record among the listed failing
// records is later re-judged accepted after more than limit records failed, the
// list is one short instead of listing a record whose details were let go. That
// cannot happen with one verdict per record (the offline checker), nor with
// redelivered identical verdicts.
//
// A Builder is not safe for concurrent use.
type Builder struct {
	limit    int
	receipts []*validationv1.SubmissionReceipt
	judged   map[recordKey]judged
	counts   map[validationv1.Outcome]int64
	rules    map[ruleKey]int64
	// Rule sets and spec versions are interned: most records share a few.
	ruleSets  [][]ruleKey
	ruleSetOf map[string]uint32
	specs     []string
	specOf    map[string]uint32
	specCount []int64
	first     *firstRecord
	failing   []failing // sorted by compareFailing, at most limit
}

type recordKey struct {
	submission string
	position   uint64
}

// judged is what the builder keeps of a record's current verdict.
type judged struct {
	validated int64 // unix seconds, 0 when unknown
	outcome   validationv1.Outcome
	line      int64
	ruleSet   uint32
	spec      uint32
}

type ruleKey struct {
	rule, field string
	severity    dmicv1.Severity
}

type failing struct {
	key  recordKey
	line int64
	rec  *validationv1.FailingRecord
}

// firstRecord holds the header of the verdict with the lowest position, the
// report's fallback when there is no receipt.
type firstRecord struct {
	key       recordKey
	dataset   dmicv1.Dataset
	submitter string
	received  *timestamppb.Timestamp
}

// NewBuilder returns a Builder that lists at most limit failing records (none
// when limit <= 0); it counts every record regardless.
func NewBuilder(limit int) *Builder {
	return &Builder{
		limit:     max(limit, 0),
		judged:    map[recordKey]judged{},
		counts:    map[validationv1.Outcome]int64{},
		rules:     map[ruleKey]int64{},
		ruleSetOf: map[string]uint32{},
		specOf:    map[string]uint32{},
	}
}

// AddReceipt takes a receipt of the submission, or of another submission of
// the same scope and key (which may supersede it). Of receipts of one
// submission, attempt and state, the last added counts, as in the store.
func (b *Builder) AddReceipt(r *validationv1.SubmissionReceipt) {
	if r != nil {
		b.receipts = append(b.receipts, r)
	}
}

// Add takes one outcome. A nil outcome is ignored.
func (b *Builder) Add(o *validationv1.ValidationOutcome) {
	if o == nil {
		return
	}
	h := o.GetHeader()
	key := recordKey{h.GetSubmissionId(), Position(h)}
	j := judged{
		validated: storedSeconds(o.GetValidatedTime().AsTime()),
		outcome:   Verdict(o),
		line:      h.GetLineNumber(),
		ruleSet:   b.ruleSet(o.GetFailures()),
		spec:      b.spec(h.GetSpecVersion()),
	}
	if prev, seen := b.judged[key]; seen {
		if j.validated < prev.validated {
			return // an older verdict arriving late
		}
		b.count(prev, -1)
		b.unlist(key)
	}
	b.judged[key] = j
	b.count(j, +1)
	if b.first == nil || key.position < b.first.key.position ||
		(key.position == b.first.key.position && key.submission <= b.first.key.submission) {
		b.first = &firstRecord{
			key:       key,
			dataset:   NormalizeDataset(h.GetDataset()),
			submitter: h.GetSubmitterOrgCode(),
			received:  StoredTime(h.GetReceivedTime()),
		}
	}
	if j.outcome != validationv1.Outcome_OUTCOME_ACCEPTED {
		b.list(key, o, j)
	}
}

func (b *Builder) count(j judged, delta int64) {
	b.counts[j.outcome] += delta
	for _, k := range b.ruleSets[j.ruleSet] {
		b.rules[k] += delta
	}
	b.specCount[j.spec] += delta
}

// ruleSet interns the distinct (rule, field, severity) of fs.
func (b *Builder) ruleSet(fs []*dmicv1.Failure) uint32 {
	keys := make([]ruleKey, 0, len(fs))
	for _, f := range fs {
		if f != nil {
			keys = append(keys, ruleKey{f.GetRuleId(), f.GetField(), ParseSeverity(SeverityName(f.GetSeverity()))})
		}
	}
	slices.SortFunc(keys, func(a, b ruleKey) int {
		return cmp.Or(strings.Compare(a.rule, b.rule), strings.Compare(a.field, b.field), cmp.Compare(a.severity, b.severity))
	})
	keys = slices.Compact(keys)
	var id strings.Builder
	for _, k := range keys {
		id.WriteString(k.rule + "\x00" + k.field + "\x00" + SeverityName(k.severity) + "\x00")
	}
	if n, ok := b.ruleSetOf[id.String()]; ok {
		return n
	}
	n := uint32(len(b.ruleSets))
	b.ruleSets = append(b.ruleSets, keys)
	b.ruleSetOf[id.String()] = n
	return n
}

func (b *Builder) spec(v string) uint32 {
	if n, ok := b.specOf[v]; ok {
		return n
	}
	n := uint32(len(b.specs))
	b.specs = append(b.specs, v)
	b.specCount = append(b.specCount, 0)
	b.specOf[v] = n
	return n
}

func compareFailing(a, b failing) int {
	return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.key.position, b.key.position), strings.Compare(a.key.submission, b.key.submission))
}

// list puts a failing record into the list when it is among the first limit.
func (b *Builder) list(key recordKey, o *validationv1.ValidationOutcome, j judged) {
	f := failing{key: key, line: j.line}
	i, _ := slices.BinarySearchFunc(b.failing, f, compareFailing)
	if i >= b.limit {
		return
	}
	f.rec = &validationv1.FailingRecord{LineNumber: j.line, RecordId: o.GetRecordId(), Outcome: j.outcome}
	for _, fl := range o.GetFailures() {
		if fl != nil {
			f.rec.Failures = append(f.rec.Failures, normalizeFailure(fl))
		}
	}
	b.failing = slices.Insert(b.failing, i, f)
	if len(b.failing) > b.limit {
		b.failing = b.failing[:b.limit]
	}
}

// unlist removes a record's listed entry, if it has one.
func (b *Builder) unlist(key recordKey) {
	for i := range b.failing {
		if b.failing[i].key == key {
			b.failing = slices.Delete(b.failing, i, i+1)
			return
		}
	}
}

// Report returns the report of everything added so far. It can be called at
// any time; the Builder stays usable.
func (b *Builder) Report() *validationv1.SubmissionReport {
	r := &validationv1.SubmissionReport{
		Validated: int64(len(b.judged)),
		Accepted:  b.counts[validationv1.Outcome_OUTCOME_ACCEPTED],
		Warned:    b.counts[validationv1.Outcome_OUTCOME_WARNED],
		Rejected:  b.counts[validationv1.Outcome_OUTCOME_REJECTED],
	}
	switch {
	case b.first != nil:
		r.SubmissionId = b.first.key.submission
	case len(b.receipts) > 0:
		r.SubmissionId = b.receipts[0].GetSubmissionId()
	}
	st, hasReceipt := Statuses(b.receipts)[r.SubmissionId]
	switch {
	case hasReceipt:
		ApplyStatus(r, st)
	case b.first != nil:
		r.Dataset = b.first.dataset
		r.SubmitterOrgCode = b.first.submitter
		r.ReceivedTime = b.first.received
		r.Records = r.Validated
	}
	for k, n := range b.rules {
		if n > 0 {
			r.Rules = append(r.Rules, &validationv1.RuleCount{RuleId: k.rule, Field: k.field, Severity: k.severity, Records: n})
		}
	}
	SortRules(r.Rules)
	for _, f := range b.failing {
		r.FailingRecords = append(r.FailingRecords, proto.Clone(f.rec).(*validationv1.FailingRecord))
	}
	for i, v := range b.specs {
		if v != "" && b.specCount[i] > 0 {
			r.SpecVersions = append(r.SpecVersions, v)
		}
	}
	slices.Sort(r.SpecVersions)
	return r
}
