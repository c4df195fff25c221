package chstore

import (
	"fmt"
	"strings"

	"github.com/dmic-nhs/dmic/services/internal/dqreport"
)

// submissionStatusColumns are the columns of submission_status, in order.
var submissionStatusColumns = []string{
	"submission_id", "dataset", "source", "submitter_org_code", "received_time", "records", "refused", "transport",
	"idempotency_key", "content_sha256", "attempts", "last_attempt_time", "state", "superseded_by", "finished", "counted",
}

// stateRankSQL is dqreport.StateRank over the stored state names.
var stateRankSQL = fmt.Sprintf("multiIf(state = '%s', %d, state = '%s', %d, %d)",
	dqreport.StateReceived, dqreport.StateRank(dqreport.StateReceived),
	dqreport.StateAbandoned, dqreport.StateRank(dqreport.StateAbandoned),
	dqreport.StateRank(dqreport.StateReceiving))

// submissionAggregateSQL is one row per submission from its receipts, with
// the semantics of dqreport.Statuses (which the conformance suite holds it
// to): the latest receipt (highest attempt, then an end over a start) gives
// the dataset, submitter, times, key and digest and the last state; the
// highest finished attempt gives the counts. Output columns are prefixed a_
// so that no alias shadows a column an aggregate reads.
func submissionAggregateSQL(db string) string {
	latest := func(col, as string) string { return fmt.Sprintf("argMax(%s, latest_order) AS %s", col, as) }
	cols := []string{
		"submission_id",
		latest("dataset", "a_dataset"), latest("source", "a_source"), latest("submitter_org_code", "a_submitter"),
		latest("received_time", "a_received"), latest("transport", "a_transport"), latest("idempotency_key", "a_key"),
		latest("content_sha256", "a_digest"), latest("state", "a_last_state"),
		"greatest(max(attempt), 1) AS a_attempts",
		"max(attempt_time) AS a_last_attempt_time",
		fmt.Sprintf("max(state = '%s') AS a_finished", dqreport.StateReceived),
		fmt.Sprintf("argMaxIf(records, attempt, state = '%s') AS a_records", dqreport.StateReceived),
		fmt.Sprintf("argMaxIf(refused, attempt, state = '%s') AS a_refused", dqreport.StateReceived),
		// dqreport.Identity.
		"multiIf(a_key != '', concat('key:', a_key), a_digest != '', concat('sha256:', a_digest), concat('id:', submission_id)) AS a_identity",
	}
	return fmt.Sprintf(`SELECT %s
    FROM (SELECT *, attempt * 4 + %s AS latest_order FROM %s.%s FINAL)
    GROUP BY submission_id`, strings.Join(cols, ",\n        "), stateRankSQL, db, TableSubmissions)
}

// submissionStatusQuery is the submission_status view: one row per
// submission with a receipt, its state (dqreport.Statuses) and whether the
// data-quality summaries count it. Of the finished submissions of one scope
// (submitter, dataset, source) and identity (key, else content), the one
// received last (then the greatest id) is current; the others are
// superseded by it.
func submissionStatusQuery(db string) string {
	agg := submissionAggregateSQL(db)
	return fmt.Sprintf(`SELECT
    submission_id, a_dataset AS dataset, a_source AS source, a_submitter AS submitter_org_code, a_received AS received_time,
    a_records AS records, a_refused AS refused, a_transport AS transport, a_key AS idempotency_key, a_digest AS content_sha256,
    a_attempts AS attempts, a_last_attempt_time AS last_attempt_time,
    multiIf(a_finished = 0 AND a_last_state = '%[3]s', '%[3]s', a_finished = 0, '%[4]s',
            current_submission_id != submission_id, '%[5]s', '%[6]s') AS state,
    if(state = '%[5]s', current_submission_id, '') AS superseded_by,
    a_finished AS finished,
    state = '%[6]s' AS counted
FROM (
    %[1]s
) AS s
ANY LEFT JOIN (
    SELECT a_submitter, a_dataset, a_source, a_identity,
        argMax(submission_id, tuple(a_received, submission_id)) AS current_submission_id
    FROM (
    %[1]s
    )
    WHERE a_finished = 1
    GROUP BY a_submitter, a_dataset, a_source, a_identity
) AS c USING (a_submitter, a_dataset, a_source, a_identity)`, agg, db,
		dqreport.StateAbandoned, dqreport.StateReceiving, dqreport.StateSuperseded, dqreport.StateReceived)
}
