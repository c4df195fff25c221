package load

import "github.com/dmic-nhs/dmic/services/internal/topics"

// Access is what the load service does on Kafka, as its principal: the
// topics it consumes in its group, produces and keeps as logs. Its main
// wires the service from it, and the ACL table (topics.Grants) must grant
// exactly this (access_test.go).
func Access() topics.Access {
	return topics.Access{Principal: topics.ServicePrincipal("load"), Group: "dmic-load",
		Inputs: Inputs,
		// The runner's dead letters (a record ClickHouse refuses).
		Outputs: []string{topics.Rejected},
		// The data sharing agreements (its AgreementService), and the
		// operators' skips and replays (the service shell's).
		Logs: []string{topics.Agreements, topics.OperatorAudit},
		// The security audit trail: the service shell records its callers'
		// refusals and actions on it (docs/security.md); load also reads
		// it, as one of its Inputs, into the audit table.
		Appends: []string{topics.Audit}}
}
