package chstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
)

// SubmissionReport reads the validation report of one submission from the
// submission_status view (its state, from its receipts) and the
// validation_outcomes table (under FINAL, so each record's current verdict
// counts once). It has exactly the semantics of dqreport.Builder over the same
// receipts and outcomes (see there), which the conformance test checks; limit
// bounds the failing records listed (none when limit <= 0). found is false
// when there is neither a receipt nor an outcome for submissionID.
//
// The report is read by several queries, not in one snapshot: read while
// outcomes are being loaded, its counts and list may be a batch apart.
func SubmissionReport(ctx context.Context, conn driver.Conn, db, submissionID string, limit int) (*validationv1.SubmissionReport, bool, error) {
	if err := validateDatabase(db); err != nil {
		return nil, false, err
	}
	r := &validationv1.SubmissionReport{SubmissionId: submissionID}
	st, hasReceipt, err := readStatus(ctx, conn, db, submissionID)
	if err != nil {
		return nil, false, err
	}
	first, err := readCounts(ctx, conn, db, submissionID, r)
	if err != nil {
		return nil, false, err
	}
	switch {
	case hasReceipt:
		dqreport.ApplyStatus(r, st)
	case r.Validated > 0:
		// No receipt yet: what the outcomes say, from the lowest position.
		r.Dataset, r.SubmitterOrgCode, r.ReceivedTime = first.dataset, first.submitter, first.received
		r.Records = r.Validated
	default:
		return nil, false, nil
	}
	if r.Validated == 0 {
		return r, true, nil
	}
	if r.Rules, err = readRuleCounts(ctx, conn, db, submissionID); err != nil {
		return nil, false, err
	}
	if limit > 0 && r.Warned+r.Rejected > 0 {
		if r.FailingRecords, err = readFailingRecords(ctx, conn, db, submissionID, limit); err != nil {
			return nil, false, err
		}
	}
	return r, true, nil
}

// readStatus reads a submission's row of submission_status, as the status
// dqreport.Statuses gives.
func readStatus(ctx context.Context, conn driver.Conn, db, submissionID string) (dqreport.Status, bool, error) {
	q := fmt.Sprintf(`SELECT dataset, submitter_org_code, received_time, idempotency_key, content_sha256,
    records, refused, attempts, state, superseded_by, finished
FROM %s.%s WHERE submission_id = ?`, db, ViewSubmissionStatus)
	rows, err := conn.Query(ctx, q, submissionID)
	if err != nil {
		return dqreport.Status{}, false, fmt.Errorf("read the state of submission %q: %w", submissionID, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return dqreport.Status{}, false, wrapRowsErr(rows.Err(), "read the state of submission %q", submissionID)
	}
	var (
		dataset, state string
		received       time.Time
		finished       uint8
		st             dqreport.Status
		latest         = &validationv1.SubmissionReceipt{SubmissionId: submissionID}
	)
	if err := rows.Scan(&dataset, &latest.SubmitterOrgCode, &received, &latest.IdempotencyKey, &latest.ContentSha256,
		&st.Records, &st.Refused, &st.Attempts, &state, &st.SupersededBy, &finished); err != nil {
		return dqreport.Status{}, false, fmt.Errorf("read the state of submission %q: %w", submissionID, err)
	}
	latest.Dataset = dqreport.ParseDatasetName(dataset)
	latest.ReceivedTime = dqreport.TimeOf(received)
	st.Latest, st.State, st.Finished = latest, dqreport.ParseState(state), finished == 1
	return st, true, nil
}

// firstOutcome is the header of the verdict with the lowest position.
type firstOutcome struct {
	dataset   dmicv1.Dataset
	submitter string
	received  *timestamppb.Timestamp
}

// readCounts fills validated, the three counts and the spec versions.
func readCounts(ctx context.Context, conn driver.Conn, db, submissionID string, r *validationv1.SubmissionReport) (firstOutcome, error) {
	q := fmt.Sprintf(`SELECT count(), countIf(outcome = 'accepted'), countIf(outcome = 'warned'), countIf(outcome = 'rejected'),
    argMin(dataset, position), argMin(submitter_org_code, position), argMin(received_time, position),
    groupUniqArray(spec_version)
FROM %s.%s FINAL WHERE submission_id = ?`, db, TableOutcomes)
	var (
		validated, accepted, warned, rejected uint64
		dataset, submitter                    string
		received                              time.Time
		specs                                 []string
	)
	err := conn.QueryRow(ctx, q, submissionID).Scan(&validated, &accepted, &warned, &rejected, &dataset, &submitter, &received, &specs)
	if err != nil {
		return firstOutcome{}, fmt.Errorf("count outcomes of submission %q: %w", submissionID, err)
	}
	r.Validated, r.Accepted, r.Warned, r.Rejected = int64(validated), int64(accepted), int64(warned), int64(rejected)
	r.SpecVersions = nil
	for _, s := range specs {
		if s != "" {
			r.SpecVersions = append(r.SpecVersions, s)
		}
	}
	slices.Sort(r.SpecVersions)
	return firstOutcome{dataset: dqreport.ParseDatasetName(dataset), submitter: submitter, received: dqreport.TimeOf(received)}, nil
}

func readRuleCounts(ctx context.Context, conn driver.Conn, db, submissionID string) ([]*validationv1.RuleCount, error) {
	q := fmt.Sprintf(`SELECT rule_id, field, severity, uniqExact(position)
FROM (
    SELECT position, failure_rule_id, failure_field, failure_severity
    FROM %s.%s FINAL WHERE submission_id = ?
)
ARRAY JOIN failure_rule_id AS rule_id, failure_field AS field, failure_severity AS severity
GROUP BY rule_id, field, severity`, db, TableOutcomes)
	rows, err := conn.Query(ctx, q, submissionID)
	if err != nil {
		return nil, fmt.Errorf("count rules of submission %q: %w", submissionID, err)
	}
	defer rows.Close()
	var out []*validationv1.RuleCount
	for rows.Next() {
		var rule, field, severity string
		var n uint64
		if err := rows.Scan(&rule, &field, &severity, &n); err != nil {
			return nil, fmt.Errorf("count rules of submission %q: %w", submissionID, err)
		}
		out = append(out, &validationv1.RuleCount{RuleId: rule, Field: field, Severity: dqreport.ParseSeverity(severity), Records: int64(n)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count rules of submission %q: %w", submissionID, err)
	}
	// Sorted here rather than by ORDER BY: the order is the severity's enum
	// number, which is the Builder's.
	dqreport.SortRules(out)
	return out, nil
}

func readFailingRecords(ctx context.Context, conn driver.Conn, db, submissionID string, limit int) ([]*validationv1.FailingRecord, error) {
	// The outcome filter must see only current verdicts: a WHERE runs after
	// FINAL has collapsed the rows (neither 18.16 nor current releases move it
	// to PREWHERE under FINAL), and it is outside the subquery besides.
	q := fmt.Sprintf(`SELECT line_number, record_id, outcome, failure_rule_id, failure_field, failure_severity, failure_message
FROM (
    SELECT position, line_number, record_id, outcome, failure_rule_id, failure_field, failure_severity, failure_message
    FROM %s.%s FINAL WHERE submission_id = ?
)
WHERE outcome != 'accepted'
ORDER BY line_number, position
LIMIT ?`, db, TableOutcomes)
	rows, err := conn.Query(ctx, q, submissionID, limit)
	if err != nil {
		return nil, fmt.Errorf("list failing records of submission %q: %w", submissionID, err)
	}
	defer rows.Close()
	var out []*validationv1.FailingRecord
	for rows.Next() {
		fr := &validationv1.FailingRecord{}
		var outcome string
		var rules, fields, severities, messages []string
		if err := rows.Scan(&fr.LineNumber, &fr.RecordId, &outcome, &rules, &fields, &severities, &messages); err != nil {
			return nil, fmt.Errorf("list failing records of submission %q: %w", submissionID, err)
		}
		if len(fields) != len(rules) || len(severities) != len(rules) || len(messages) != len(rules) {
			return nil, fmt.Errorf("list failing records of submission %q: line %d has failure arrays of different lengths", submissionID, fr.LineNumber)
		}
		fr.Outcome = dqreport.ParseOutcome(outcome)
		for i := range rules {
			fr.Failures = append(fr.Failures, &dmicv1.Failure{
				RuleId: rules[i], Field: fields[i], Severity: dqreport.ParseSeverity(severities[i]), Message: messages[i],
			})
		}
		out = append(out, fr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list failing records of submission %q: %w", submissionID, err)
	}
	return out, nil
}

func wrapRowsErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// DQFilter selects rows of the data-quality views. Empty strings and zero
// times select everything.
type DQFilter struct {
	Provider, Dataset, Source string
	// From and To bound the month of receipt, both inclusive; only their
	// year and month (UTC) count.
	From, To time.Time
}

func (f DQFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if f.Provider != "" {
		add("provider_code = ?", f.Provider)
	}
	if f.Dataset != "" {
		add("dataset = ?", f.Dataset)
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	// Months are bound as 'YYYY-MM-01' strings: a time.Time binds as a
	// DateTime, whose comparison with a Date differs between versions.
	if !f.From.IsZero() {
		add("month >= toDate(?)", monthStart(f.From))
	}
	if !f.To.IsZero() {
		add("month <= toDate(?)", monthStart(f.To))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

func monthStart(t time.Time) string {
	y, m, _ := t.UTC().Date()
	return fmt.Sprintf("%04d-%02d-01", y, int(m))
}

// DQRow is one row of dq_summary: one provider's records of one dataset and
// source received in one month, by verdict.
type DQRow struct {
	Provider, Dataset, Source           string
	Month                               time.Time // first day of the month of receipt
	Records, Accepted, Warned, Rejected uint64
	// ValidShare is (Accepted + Warned) / Records: the share that passed.
	ValidShare float64
	// Submissions counted in the row (each current one once, resends
	// included in it).
	Submissions uint64
}

// DQRuleRow is one row of dq_rule_summary: the records failing one rule on
// one field, for one provider, dataset, source and month of receipt.
type DQRuleRow struct {
	Provider, Dataset, Source string
	Month                     time.Time
	RuleID, Field, Severity   string
	Records                   uint64
	// Submissions with at least one of the records.
	Submissions uint64
}

// DQSummary reads dq_summary, ordered by month, provider, dataset and source.
func DQSummary(ctx context.Context, conn driver.Conn, db string, f DQFilter) ([]DQRow, error) {
	if err := validateDatabase(db); err != nil {
		return nil, err
	}
	where, args := f.where()
	q := fmt.Sprintf(`SELECT provider_code, dataset, source, month, records, accepted, warned, rejected, valid_share, submissions
FROM %s.%s %s
ORDER BY month, provider_code, dataset, source`, db, ViewDQSummary, where)
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, ViewDQSummary, err)
	}
	defer rows.Close()
	var out []DQRow
	for rows.Next() {
		var r DQRow
		if err := rows.Scan(&r.Provider, &r.Dataset, &r.Source, &r.Month, &r.Records, &r.Accepted, &r.Warned, &r.Rejected, &r.ValidShare, &r.Submissions); err != nil {
			return nil, fmt.Errorf("read %s.%s: %w", db, ViewDQSummary, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, ViewDQSummary, err)
	}
	return out, nil
}

// DQRules reads dq_rule_summary, ordered by month, provider, dataset and
// source, then the most failed rule first.
func DQRules(ctx context.Context, conn driver.Conn, db string, f DQFilter) ([]DQRuleRow, error) {
	if err := validateDatabase(db); err != nil {
		return nil, err
	}
	where, args := f.where()
	q := fmt.Sprintf(`SELECT provider_code, dataset, source, month, rule_id, field, severity, records, submissions
FROM %s.%s %s
ORDER BY month, provider_code, dataset, source, records DESC, rule_id, field, severity`, db, ViewDQRuleSummary, where)
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, ViewDQRuleSummary, err)
	}
	defer rows.Close()
	var out []DQRuleRow
	for rows.Next() {
		var r DQRuleRow
		if err := rows.Scan(&r.Provider, &r.Dataset, &r.Source, &r.Month, &r.RuleID, &r.Field, &r.Severity, &r.Records, &r.Submissions); err != nil {
			return nil, fmt.Errorf("read %s.%s: %w", db, ViewDQRuleSummary, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, ViewDQRuleSummary, err)
	}
	return out, nil
}
