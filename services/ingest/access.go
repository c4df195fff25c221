package ingest

import "github.com/dmic-nhs/dmic/services/internal/topics"

// Access is what the ingest service does on Kafka, as its principal: the
// topics it consumes in its group, produces and keeps as logs. Its main
// wires the service from it, and the ACL table (topics.Grants) must grant
// exactly this (access_test.go).
func Access() topics.Access {
	return topics.Access{Principal: topics.ServicePrincipal("ingest"),
		// A submission's records, the dead letters of lines it could not
		// decode and its verdicts on them, and its receipts.
		Outputs: []string{topics.Raw, topics.Rejected, topics.ValidationOutcomes, topics.Submissions},
		// Every instance reads all attempts to recognise a resend.
		Logs: []string{topics.SubmissionAttempts},
		// The security audit trail: the service shell records its callers'
		// refusals and actions on it (docs/security.md).
		Appends: []string{topics.Audit}}
}
