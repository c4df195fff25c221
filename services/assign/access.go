package assign

import "github.com/dmic-nhs/dmic/services/internal/topics"

// Access is what the assign service does on Kafka, as its principal: the
// topics it consumes in its group, produces and keeps as logs. Its main
// wires the service from it, and the ACL table (topics.Grants) must grant
// exactly this (access_test.go).
func Access() topics.Access {
	return topics.Access{Principal: topics.ServicePrincipal("assign"), Group: "dmic-assign",
		Inputs: []string{topics.Deidentified},
		// A re-run's rows (the assignment service's RerunAssignments).
		Outputs: []string{topics.Assigned, topics.Rejected, topics.CamReruns},
		Logs:    []string{topics.OperatorAudit},
		// The security audit trail: the service shell records its callers'
		// refusals and actions on it (docs/security.md).
		Appends: []string{topics.Audit}}
}
