package validate

import "github.com/dmic-nhs/dmic/services/internal/topics"

// Access is what the validate service does on Kafka, as its principal: the
// topics it consumes in its group, produces and keeps as logs. Its main
// wires the service from it, and the ACL table (topics.Grants) must grant
// exactly this (access_test.go).
func Access() topics.Access {
	return topics.Access{Principal: topics.ServicePrincipal("validate"), Group: "dmic-validate",
		Inputs:  []string{topics.Raw},
		Outputs: []string{topics.Validated, topics.Rejected, topics.ValidationOutcomes},
		// The specifications loaded at run time, and the operators' skips
		// and replays (the service shell's).
		Logs: []string{topics.Specifications, topics.OperatorAudit},
		// The security audit trail: the service shell records its callers'
		// refusals and actions on it (docs/security.md).
		Appends: []string{topics.Audit}}
}
