// Package access authorises calls, in one place per protocol: gRPC
// interceptors (Guard.UnaryInterceptor, Guard.StreamInterceptor) and HTTP
// middleware (Guard.HTTP), each reading one table of who may call what
// (GRPC, HTTP; docs/security.md, "Who may do what"). A method or route that
// is not in its table is refused (deny by default), and a service whose
// server registers one does not start (Guard.CheckGRPC, Mux.Check).
//
// For every call that needs it, the guard authenticates the caller
// (identity.Authenticator: client certificates today, bearer tokens beside
// them later), checks the role, puts the identity in the call's context
// (identity.FromContext) and, for an action that changes something, records
// it on the audit trail before it is carried out and when it ends. Every
// refusal is answered with its reason (gRPC Unauthenticated or
// PermissionDenied, HTTP 401 or 403), logged, counted
// (dmic_auth_refusals_total{protocol,reason}) and audited.
//
// A handler may refuse what only it can judge (ingest: a record of another
// provider) with Refuse, which the guard then counts and audits like its
// own refusals.
package access

import (
	"slices"
	"strings"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	accessv1 "github.com/dmic-nhs/dmic/proto/dmic/access/v1"
	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	deidv1 "github.com/dmic-nhs/dmic/proto/dmic/deid/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// Rule says who may call a method or route.
type Rule struct {
	// Open methods need no credentials: health (probes) and reflection.
	Open bool
	// Roles may call; none (and not Open): any authenticated caller.
	Roles []identity.Role
	// Changes marks an action that changes something: it is audited before
	// it is carried out (and not carried out if that fails) and when it ends.
	Changes bool
}

// allows reports whether the rule lets id call.
func (r Rule) allows(id identity.Identity) bool {
	return len(r.Roles) == 0 || id.Is(r.Roles...)
}

// roleNames lists the rule's roles for a refusal.
func (r Rule) roleNames() string {
	names := make([]string, len(r.Roles))
	for i, role := range r.Roles {
		names[i] = string(role)
	}
	return strings.Join(names, ", ")
}

var (
	open          = Rule{Open: true}
	authenticated = Rule{}
	operator      = Rule{Roles: []identity.Role{identity.Operator}, Changes: true}
	keyCustodian  = Rule{Roles: []identity.Role{identity.KeyCustodian}}
	submitters    = []identity.Role{identity.Provider, identity.National}
)

// GRPC is the one table of gRPC methods, by full method name: every method
// any dmic service serves has an entry (a test walks them all).
func GRPC() map[string]Rule {
	return map[string]Rule{
		// Probes and tools that list the API: no credentials.
		healthpb.Health_Check_FullMethodName:                             open,
		healthpb.Health_Watch_FullMethodName:                             open,
		healthpb.Health_List_FullMethodName:                              open,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      open,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": open,

		// Every service's control API: status for anyone authenticated; the
		// rest for operators, audited.
		dmicv1.ControlService_GetStatus_FullMethodName:     authenticated,
		dmicv1.ControlService_Pause_FullMethodName:         operator,
		dmicv1.ControlService_Resume_FullMethodName:        operator,
		dmicv1.ControlService_SkipMessage_FullMethodName:   operator,
		dmicv1.ControlService_ReplayMessage_FullMethodName: operator,

		// ingest: providers and the national exchange submit (ingest decides
		// what each may send); reports for their senders and operators.
		dmicv1.IngestService_SubmitRecords_FullMethodName: {Roles: submitters, Changes: true},
		validationv1.SubmissionReportService_GetSubmissionReport_FullMethodName: {
			Roles: []identity.Role{identity.Provider, identity.National, identity.Operator}},

		// validate: listings for anyone authenticated; loads for operators.
		validationv1.SpecificationService_ListSpecifications_FullMethodName: authenticated,
		validationv1.SpecificationService_GetSpecification_FullMethodName:   authenticated,
		validationv1.SpecificationService_LoadSpecification_FullMethodName:  operator,

		// deidentify's key service: key custodians only, listing included.
		deidv1.KeyService_ListKeys_FullMethodName:       keyCustodian,
		deidv1.KeyService_RotateKey_FullMethodName:      {Roles: keyCustodian.Roles, Changes: true},
		deidv1.KeyService_Repseudonymise_FullMethodName: {Roles: keyCustodian.Roles, Changes: true},

		// load's agreement service: operators load, list and revoke data
		// sharing agreements and read the access report (who read what is
		// itself sensitive); a recipient's pseudonym key is created by a key
		// custodian.
		accessv1.AgreementService_LoadAgreement_FullMethodName:      operator,
		accessv1.AgreementService_RevokeAgreement_FullMethodName:    operator,
		accessv1.AgreementService_ListAgreements_FullMethodName:     {Roles: []identity.Role{identity.Operator}},
		accessv1.AgreementService_GetAgreement_FullMethodName:       {Roles: []identity.Role{identity.Operator}},
		accessv1.AgreementService_AccessReport_FullMethodName:       {Roles: []identity.Role{identity.Operator}},
		accessv1.AgreementService_CreatePseudonymKey_FullMethodName: {Roles: keyCustodian.Roles, Changes: true},

		// assign's assignment service: operators and analysts see how a
		// record's commissioner was decided (de-identified data only, which
		// analysts read in ClickHouse anyway); only operators re-run a period
		// under another CAM version (audited: it writes a run to the
		// cam_rerun table), whose results analysts then read.
		assignmentv1.AssignmentService_ExplainAssignment_FullMethodName: {Roles: []identity.Role{identity.Operator, identity.Analyst}},
		assignmentv1.AssignmentService_RerunAssignments_FullMethodName:  operator,
	}
}

// HTTP is the one table of HTTP API routes, by ServeMux pattern. The
// operational listener (/metrics, /healthz, /debug/pprof) is not in it: it is
// a separate listener, on localhost by default, and never the API's.
func HTTP() map[string]Rule {
	return map[string]Rule{
		"POST /v1/submissions":     {Roles: submitters, Changes: true},
		"GET /v1/submissions/{id}": {Roles: []identity.Role{identity.Provider, identity.National, identity.Operator}},
	}
}

// missing lists the names not in rules, sorted.
func missing(names []string, rules map[string]Rule) []string {
	var out []string
	for _, n := range names {
		if _, ok := rules[n]; !ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
