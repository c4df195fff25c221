package topics

import (
	"fmt"
	"slices"
	"strings"
)

// Kafka principals (SASL/SCRAM users). Each service runs as its own, so the
// broker can refuse a service a topic it has no business with; the
// patient-identifiable topics (Raw, Validated, Rejected) above all.
const (
	// Admin is the cluster's superuser: it creates the topics, the users and
	// the ACLs (the embedded broker at start, `dmicctl kafka-setup` in
	// production). No service runs as it, and it is in no grant: a
	// superuser passes every ACL check.
	Admin = "dmic-admin"
	// Operator is the operators' tools: kcat, the leak guard, the bench and
	// the end-to-end tests' look at the topics.
	Operator = "dmic-operator"
)

// ServicePrincipal is the principal a service runs as by default.
func ServicePrincipal(service string) string { return "dmic-" + service }

// Access is what one principal may do on Kafka: the ACL table has one per
// principal (Grants). A service's own package declares its Access (for
// example validate.Access) and its main wires the stage from it; a test in
// each service's folder checks that the table grants exactly that.
type Access struct {
	Principal string
	// Group is the consumer group the principal consumes Inputs in.
	Group string
	// Inputs are consumed in Group.
	Inputs []string
	// Outputs are produced to.
	Outputs []string
	// Logs are read whole and appended to, outside any group: control logs
	// (controllog) and changelogs (pipeline.PartitionLog).
	Logs []string
	// Reads are read outside any group and never written (inspection).
	Reads []string
	// Appends are written: the security audit trail (dmic.audit), which
	// every service records its callers' refusals and actions on (and which
	// only load also reads, as an input).
	Appends []string
	// DescribeGroups lets the principal see every dmic consumer group's
	// committed offsets (lag).
	DescribeGroups bool
}

// GroupPrefix begins every dmic consumer group's name.
const GroupPrefix = "dmic-"

// Read lists the topics the principal reads, sorted, once each.
func (a Access) Read() []string { return sortedSet(a.Inputs, a.Logs, a.Reads) }

// Write lists the topics the principal writes, sorted, once each.
func (a Access) Write() []string { return sortedSet(a.Outputs, a.Logs, a.Appends) }

// Topics lists every topic the principal uses, sorted, once each.
func (a Access) Topics() []string { return sortedSet(a.Read(), a.Write()) }

func sortedSet(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Names lists every topic's name, in the order of All.
func Names() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.Name)
	}
	return out
}

// Grants is the ACL table: every principal but Admin, and what it may do.
// It is derived from each service's stage (its main: consumer group,
// inputs, outputs) and the control logs and changelogs it keeps; a test in
// each service's folder checks its row against the service's own Access.
//
// Every service appends to the security audit trail (dmic.audit), and only
// load reads it: into ClickHouse's audit table, where analysts read it
// without being able to change it. The operators' tools read every topic (they include a
// data-quality officer's look at rejected records, the leak guard's scan
// and the audit trail) and write dmic.raw, the documented way to feed
// records with kcat.
func Grants() []Access {
	return []Access{
		{Principal: ServicePrincipal("ingest"),
			Outputs: []string{Raw, Rejected, ValidationOutcomes, Submissions},
			Logs:    []string{SubmissionAttempts},
			Appends: []string{Audit}},
		{Principal: ServicePrincipal("validate"), Group: "dmic-validate",
			Inputs:  []string{Raw},
			Outputs: []string{Validated, Rejected, ValidationOutcomes},
			Logs:    []string{Specifications, OperatorAudit},
			Appends: []string{Audit}},
		{Principal: ServicePrincipal("deidentify"), Group: "dmic-deidentify",
			Inputs:  []string{Validated},
			Outputs: []string{Deidentified, Rejected},
			Logs:    []string{KeyRotations, OperatorAudit},
			Appends: []string{Audit}},
		{Principal: ServicePrincipal("assign"), Group: "dmic-assign",
			Inputs:  []string{Deidentified},
			Outputs: []string{Assigned, Rejected, CamReruns},
			Logs:    []string{OperatorAudit},
			Appends: []string{Audit}},
		{Principal: ServicePrincipal("reconcile"), Group: "dmic-reconcile",
			Inputs:  []string{Assigned},
			Outputs: []string{Reconciled, NationalReturn, Rejected},
			Logs:    []string{ReconcileState, OperatorAudit},
			Appends: []string{Audit}},
		{Principal: ServicePrincipal("load"), Group: "dmic-load",
			Inputs:  []string{Assigned, Reconciled, Rejected, ValidationOutcomes, Submissions, Audit, CamReruns},
			Outputs: []string{Rejected},
			Logs:    []string{Agreements, OperatorAudit},
			Appends: []string{Audit}},
		{Principal: Operator,
			Outputs:        []string{Raw},
			Reads:          Names(),
			DescribeGroups: true},
	}
}

// Principals lists the principals of Grants, in its order.
func Principals() []string {
	var out []string
	for _, g := range Grants() {
		out = append(out, g.Principal)
	}
	return out
}

// GrantOf is the row of Grants for principal.
func GrantOf(principal string) (Access, bool) {
	for _, g := range Grants() {
		if g.Principal == principal {
			return g, true
		}
	}
	return Access{}, false
}

// Resource is what an ACL is on.
type Resource string

// Resources.
const (
	TopicResource Resource = "topic"
	GroupResource Resource = "group"
)

// Operation is what an ACL allows.
type Operation string

// Operations. Kafka implies Describe from Read and Write, so a reader or
// writer needs no Describe of its own.
const (
	ReadOp     Operation = "read"
	WriteOp    Operation = "write"
	DescribeOp Operation = "describe"
)

// ACL is one allow rule. There are no deny rules: what no rule allows is
// refused.
type ACL struct {
	Principal string // the SASL user, without "User:"
	Resource  Resource
	Name      string
	// Prefixed: Name is a prefix (Kafka's PREFIXED pattern), not a name.
	Prefixed  bool
	Operation Operation
}

func (a ACL) String() string {
	name := a.Name
	if a.Prefixed {
		name += "*"
	}
	return fmt.Sprintf("User:%s %s %s %s", a.Principal, a.Operation, a.Resource, name)
}

// ACLs are the allow rules of a: Read on what it reads, Write on what it
// writes, Read on its consumer group (which Kafka asks of every group
// request, commits included), Describe on every dmic group if it watches lag.
func (a Access) ACLs() []ACL {
	var out []ACL
	for _, t := range a.Read() {
		out = append(out, ACL{Principal: a.Principal, Resource: TopicResource, Name: t, Operation: ReadOp})
	}
	for _, t := range a.Write() {
		out = append(out, ACL{Principal: a.Principal, Resource: TopicResource, Name: t, Operation: WriteOp})
	}
	if a.Group != "" {
		out = append(out, ACL{Principal: a.Principal, Resource: GroupResource, Name: a.Group, Operation: ReadOp})
	}
	if a.DescribeGroups {
		out = append(out, ACL{Principal: a.Principal, Resource: GroupResource, Name: GroupPrefix, Prefixed: true, Operation: DescribeOp})
	}
	return out
}

// ACLs are the allow rules of every grant.
func ACLs() []ACL {
	var out []ACL
	for _, g := range Grants() {
		out = append(out, g.ACLs()...)
	}
	return out
}

// ACLTable is Grants as a Markdown table, one row per topic and one column
// per principal, as docs/security.md shows it (a test keeps the two equal).
func ACLTable() string {
	grants := Grants()
	var b strings.Builder
	b.WriteString("| topic |")
	for _, g := range grants {
		b.WriteString(" `" + g.Principal + "` |")
	}
	b.WriteString("\n|---|")
	for range grants {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	cell := func(read, write bool) string {
		switch {
		case read && write:
			return "read, write"
		case read:
			return "read"
		case write:
			return "write"
		}
		return ""
	}
	for _, s := range All() {
		name := "`" + s.Name + "`"
		if s.Identifiable {
			name = "**" + name + "**"
		}
		b.WriteString("| " + name + " |")
		for _, g := range grants {
			b.WriteString(" " + cell(slices.Contains(g.Read(), s.Name), slices.Contains(g.Write(), s.Name)) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("| consumer group |")
	for _, g := range grants {
		switch {
		case g.Group != "":
			b.WriteString(" `" + g.Group + "`: read |")
		case g.DescribeGroups:
			b.WriteString(" `" + GroupPrefix + "*`: describe |")
		default:
			b.WriteString(" |")
		}
	}
	b.WriteString("\n")
	return b.String()
}
