package reconcile

import "github.com/dmic-nhs/dmic/services/internal/topics"

// Access is what the reconcile service does on Kafka, as its principal: the
// topics it consumes in its group, produces and keeps as logs. Its main
// wires the service from it, and the ACL table (topics.Grants) must grant
// exactly this (access_test.go).
func Access() topics.Access {
	return topics.Access{Principal: topics.ServicePrincipal("reconcile"), Group: "dmic-reconcile",
		Inputs:  []string{topics.Assigned},
		Outputs: []string{topics.Reconciled, topics.NationalReturn, topics.Rejected},
		// Its state's changelog, written with its results and read whole
		// at start, and the operators' log.
		Logs: []string{topics.ReconcileState, topics.OperatorAudit},
		// The security audit trail: the service shell records its callers'
		// refusals and actions on it (docs/security.md).
		Appends: []string{topics.Audit}}
}
