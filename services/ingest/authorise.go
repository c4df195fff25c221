package ingest

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/limits"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// Who may submit what (docs/submitting.md, "Who you are"). The authorisation
// layer (internal/access) has already let only providers and the national
// exchange reach the submission door; what each may send is decided here,
// because only ingest reads the submission.
//
//   - The submitter is the caller's organisation, never a parameter. The
//     submitter a request still names (the query parameter, the gRPC field)
//     must be that organisation: a request naming another is refused.
//   - A provider submits provider copies (source=provider) of its own
//     records: every record's provider code is the provider's ODS code or one
//     of its sites (identity.IsSiteOf: RCF01 for RCF). A record of another
//     provider refuses the whole submission, naming the lines, and nothing
//     of it is stored.
//   - Only the national exchange submits national copies (source=national),
//     of any provider's records; it submits nothing else.
//   - A record with no provider code is not another provider's: it is
//     stored and refused by validation's rules, as before.

// The reasons of ingest's refusals (dmic_auth_refusals_total, the audit trail).
const (
	ReasonSubmitterNotCaller = "submitter-not-caller"
	ReasonNationalCopy       = "national-copy-not-national"
	ReasonProviderCopy       = "provider-copy-from-national"
	ReasonRoleMayNotSubmit   = "role-may-not-submit"
	ReasonOtherProviders     = "records-of-other-providers"
)

// maxListed bounds the lines a refusal names.
const maxListed = 20

// scope is who a submission is from, as the caller's identity decides it.
type scope struct {
	caller    identity.Identity
	submitter string
	source    dmicv1.Source
	// own is set when every record must be the submitter's (a provider).
	own bool
}

// authorise decides a submission's submitter and source from the caller,
// and checks the submitter and source the request names (named "" and
// source unspecified: not named) against them. The error is a gRPC status:
// Unauthenticated, or PermissionDenied through access.Refuse.
func authorise(ctx context.Context, named string, source dmicv1.Source) (scope, error) {
	id, ok := identity.FromContext(ctx)
	if !ok {
		// The door was reached without the authorisation layer: refuse.
		return scope{}, status.Error(codes.Unauthenticated, "not authenticated: present a client certificate issued for dmic (docs/security.md)")
	}
	sc := scope{caller: id, submitter: id.Org}
	switch id.Role {
	case identity.Provider:
		sc.source, sc.own = dmicv1.Source_SOURCE_PROVIDER, true
		if source == dmicv1.Source_SOURCE_NATIONAL {
			return scope{}, access.Refuse(ctx, ReasonNationalCopy, fmt.Sprintf(
				"%s may not submit national copies: only the national exchange does (leave source out, or source=provider)", id))
		}
	case identity.National:
		sc.source = dmicv1.Source_SOURCE_NATIONAL
		if source == dmicv1.Source_SOURCE_PROVIDER {
			return scope{}, access.Refuse(ctx, ReasonProviderCopy, fmt.Sprintf(
				"%s submits national copies only (leave source out, or source=national): provider copies come from the providers", id))
		}
	default:
		return scope{}, access.Refuse(ctx, ReasonRoleMayNotSubmit, fmt.Sprintf("%s may not submit records: submissions are for providers and the national exchange", id))
	}
	if named = normalSubmitter(named); named != "" && named != id.Org {
		return scope{}, access.Refuse(ctx, ReasonSubmitterNotCaller, fmt.Sprintf(
			"submitter %s is not the organisation of your certificate (%s): the submitter is who you are; leave it out", quoteName(named), id))
	}
	return sc, nil
}

// foreign is a record of another provider in a provider's submission.
type foreign struct {
	line     int64
	provider string
}

// ownRecords reads every record of a submission (each, with the record
// or the line's decoding error) and refuses it, through access.Refuse,
// if any names a provider other than sc's submitter and its sites. It is
// called before anything of the submission is stored.
func (sc scope) ownRecords(ctx context.Context, each func(func(line int64, rec *dmicv1.CommissioningRecord)) error) error {
	if !sc.own {
		return nil
	}
	var found []foreign
	n := 0
	err := each(func(line int64, rec *dmicv1.CommissioningRecord) {
		code := strings.TrimSpace(rec.GetProviderCode())
		if code == "" || identity.IsSiteOf(code, sc.submitter) {
			return
		}
		n++
		if len(found) < maxListed {
			found = append(found, foreign{line: line, provider: code})
		}
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	parts := make([]string, len(found))
	for i, f := range found {
		parts[i] = fmt.Sprintf("line %d (%s)", f.line, quoteName(f.provider))
	}
	more := ""
	if n > len(found) {
		more = fmt.Sprintf(" and %d more", n-len(found))
	}
	return access.Refuse(ctx, ReasonOtherProviders, fmt.Sprintf(
		"%s may submit only its own records (provider code %s or one of its sites, %sNN): %d record(s) name another provider: %s%s. Nothing of this submission was stored",
		sc.caller, sc.submitter, sc.submitter, n, strings.Join(parts, ", "), more))
}

// readerRecords feeds ownRecords from a record reader (HTTP: NDJSON or CSV).
func readerRecords(rd *record.Reader) func(func(int64, *dmicv1.CommissioningRecord)) error {
	return func(f func(int64, *dmicv1.CommissioningRecord)) error {
		for {
			it, ok := rd.Next()
			if !ok {
				return nil
			}
			if it.Err == nil {
				f(it.Line, it.Record)
			}
		}
	}
}

// spoolRecords feeds ownRecords from a gRPC submission's spool.
func spoolRecords(sp *spool, ds dmicv1.Dataset) func(func(int64, *dmicv1.CommissioningRecord)) error {
	return func(f func(int64, *dmicv1.CommissioningRecord)) error {
		var line int64
		return sp.records(func(js []byte) error {
			line++
			if len(js) > limits.MaxRecordBytes {
				return nil
			}
			if rec, _, err := record.DecodeJSON(js, ds); err == nil {
				f(line, rec)
			}
			return nil
		})
	}
}
