package deidentify

import "github.com/dmic-nhs/dmic/services/internal/topics"

// Access is what the deidentify service does on Kafka, as its principal: the
// topics it consumes in its group, produces and keeps as logs. Its main
// wires the service from it, and the ACL table (topics.Grants) must grant
// exactly this (access_test.go).
func Access() topics.Access {
	return topics.Access{Principal: topics.ServicePrincipal("deidentify"), Group: "dmic-deidentify",
		// Also read outside the group by a replay of a period with newly
		// active keys, whose results go to the same outputs.
		Inputs:  []string{topics.Validated},
		Outputs: []string{topics.Deidentified, topics.Rejected},
		// Key rotations (versions, never a secret), and the operators' log.
		Logs: []string{topics.KeyRotations, topics.OperatorAudit},
		// The security audit trail: the service shell records its callers'
		// refusals and actions on it (docs/security.md).
		Appends: []string{topics.Audit}}
}
