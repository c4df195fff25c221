// Package topics names dmic's Kafka topics and says how each is kept (Spec,
// All). It does not import the transport, so that a stage can name the topics
// it reads and writes without importing kafka-go: creating the topics and
// measuring a group's lag is kafkatopics' job.
//
// Every topic has the same partition count: reconcile joins a local record and
// its national counterpart by key, which only works if a key maps to the same
// partition number on every topic it passes through.
package topics

import (
	"time"
)

// Topic names. See docs/topics.md.
const (
	Raw            = "dmic.raw"
	Validated      = "dmic.validated"
	Rejected       = "dmic.rejected"
	Deidentified   = "dmic.deidentified"
	Assigned       = "dmic.assigned"
	Reconciled     = "dmic.reconciled"
	NationalReturn = "dmic.national-return"
	ReconcileState = "dmic.reconcile-state"
	// ValidationOutcomes carries the verdict on every submitted record (no
	// identifier values): the source of submission reports and DQ summaries.
	ValidationOutcomes = "dmic.validation-outcomes"
	// Submissions carries the receipts of each attempt to store a submission
	// (its start, and how it ended), from ingest.
	Submissions = "dmic.submissions"
	// SubmissionAttempts is ingest's own log of every attempt to store a
	// submission: every ingest instance reads all of it at start and
	// follows it, to recognise a resend and refuse a reused idempotency key.
	SubmissionAttempts = "dmic.submission-attempts"
	// Specifications carries the data specifications loaded at run time; every
	// validate instance reads all of it at start and follows it.
	Specifications = "dmic.specifications"
	// KeyRotations carries which pseudonymisation key version is active per
	// domain (never a secret); every deidentify instance follows it.
	KeyRotations = "dmic.key-rotations"
	// Agreements carries the data sharing agreements loaded at run time and
	// their revocations (load's AgreementService); every load instance reads
	// all of it at start and follows it (docs/data-access.md).
	Agreements = "dmic.agreements"
	// OperatorAudit carries every operator's skip or replay of a message,
	// with who asked and why; every instance of a stage applies its skips.
	OperatorAudit = "dmic.operator-audit"
	// Audit carries the security audit: every refusal of a caller, and every
	// authorised action that changes something (submissions, pause and
	// resume, skips and replays, specification loads, key rotations and
	// re-pseudonymisation), with who (organisation, role, name, certificate
	// serial), what, when and the outcome; never a secret or a patient
	// identifier (docs/security.md).
	Audit = "dmic.audit"
	// CamReruns carries the rows of a re-run of commissioner assignment under
	// a chosen CAM version (assign's RerunAssignments): one per record, its
	// stored and re-run decision, no identifier. Load writes them to the
	// cam_rerun table.
	CamReruns = "dmic.cam-reruns"
)

// DefaultPartitions is the partition count of every dmic topic.
const DefaultPartitions = 6

// Spec describes one topic.
type Spec struct {
	Name string
	// RetentionMs is -1 for unlimited.
	RetentionMs int64
	Compact     bool
	// Identifiable topics hold patient-identifiable data: short retention,
	// and only the services that need them and the operators' tools may read
	// or write them (Grants; a test keeps it so).
	Identifiable bool
	// Partitions overrides the partition count (0: the count every record
	// topic shares). Topics whose messages are not keyed by record identity
	// and that are read whole by every reader have one partition, so that
	// their order is total.
	Partitions int
}

const (
	week = 7 * 24 * time.Hour
)

// All lists every topic dmic uses.
func All() []Spec {
	return []Spec{
		{Name: Raw, RetentionMs: week.Milliseconds(), Identifiable: true},
		{Name: Validated, RetentionMs: week.Milliseconds(), Identifiable: true},
		{Name: Rejected, RetentionMs: (4 * week).Milliseconds(), Identifiable: true},
		{Name: Deidentified, RetentionMs: (4 * week).Milliseconds()},
		{Name: Assigned, RetentionMs: (4 * week).Milliseconds()},
		{Name: Reconciled, RetentionMs: (4 * week).Milliseconds()},
		{Name: NationalReturn, RetentionMs: (4 * week).Milliseconds()},
		{Name: ReconcileState, RetentionMs: -1, Compact: true},
		{Name: ValidationOutcomes, RetentionMs: (4 * week).Milliseconds()},
		{Name: Submissions, RetentionMs: (4 * week).Milliseconds()},
		{Name: Specifications, RetentionMs: -1, Compact: true, Partitions: 1},
		{Name: KeyRotations, RetentionMs: -1, Compact: true, Partitions: 1},
		{Name: Agreements, RetentionMs: -1, Compact: true, Partitions: 1},
		{Name: OperatorAudit, RetentionMs: -1, Partitions: 1},
		// One partition: one order for the whole trail. Kept for 400 days
		// (a year and a quarter's margin for the annual IG review).
		{Name: Audit, RetentionMs: (400 * 24 * time.Hour).Milliseconds(), Partitions: 1},
		// Kept whole (not compacted): the first start of a key must stay
		// before any later one, in one partition.
		{Name: SubmissionAttempts, RetentionMs: -1, Partitions: 1},
		// Keyed by run and record; the table keeps the runs.
		{Name: CamReruns, RetentionMs: (4 * week).Milliseconds()},
	}
}
