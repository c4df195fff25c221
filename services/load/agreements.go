package load

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	accessv1 "github.com/dmic-nhs/dmic/proto/dmic/access/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/load/dsa"
)

// logEntry is one entry of the agreements log: a load (the document, byte
// for byte) or a revocation.
type logEntry struct {
	Kind     string    `json:"kind"` // "load" or "revoke"
	Document []byte    `json:"document,omitempty"`
	ID       string    `json:"id,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	By       string    `json:"by"`
	Time     time.Time `json:"time"`
}

// Known is what an agreement may name: dmic's data sets and the columns of
// the analyst model a recipient may be given.
func Known() dsa.Known {
	var ds []string
	for d := dmicv1.Dataset_DATASET_APC; d <= dmicv1.Dataset_DATASET_LOCAL_FLOW; d++ {
		ds = append(ds, record.DatasetName(d))
	}
	return dsa.Known{Datasets: ds, Columns: chstore.RecipientColumns()}
}

// Agreements serves dmic.access.v1.AgreementService: data sharing agreements
// loaded at run time, kept on the agreements log (every instance and restart
// applies the same), and turned into recipients' data by Recipients.
type Agreements struct {
	accessv1.UnimplementedAgreementServiceServer

	mu    sync.Mutex
	set   dsa.Set
	log   controllog.Log
	clock clock.Clock
	lg    *slog.Logger
	known dsa.Known
	keys  *RecipientKeys
	// changed is signalled when the set changes, so that Recipients applies
	// it at once rather than at its next tick.
	changed chan struct{}
	report  func(ctx context.Context) ([]AccessRow, error)
	// base is dmic's database, which recipients' databases are named after.
	base string
}

// NewAgreements follows and publishes to log; keys are the recipients'
// pseudonym keys; c is the process clock (an agreement's state); base is
// dmic's database.
func NewAgreements(log controllog.Log, keys *RecipientKeys, c clock.Clock, base string, lg *slog.Logger) *Agreements {
	return &Agreements{log: log, keys: keys, clock: c, base: base, lg: lg, known: Known(), changed: make(chan struct{}, 1)}
}

// Set is the agreements as applied so far.
func (a *Agreements) Set() dsa.Set {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.set
}

// Changed is signalled (without blocking) when the set changes.
func (a *Agreements) Changed() <-chan struct{} { return a.changed }

func (a *Agreements) signal() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// apply adds an entry to the set.
func (a *Agreements) apply(e logEntry) (dsa.Loaded, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch e.Kind {
	case "load":
		ag, err := dsa.Parse(e.Document, a.known)
		if err != nil {
			return dsa.Loaded{}, false, err
		}
		l := dsa.Loaded{Agreement: ag, Document: e.Document, Time: e.Time, By: e.By}
		next, created, err := a.set.With(l)
		if err != nil {
			return dsa.Loaded{}, false, err
		}
		a.set = next
		if created {
			a.signal()
		}
		got, _ := a.set.Get(ag.ID, ag.Version)
		return got, created, nil
	case "revoke":
		_, already := a.set.Revocation(e.ID)
		next, err := a.set.Revoke(dsa.Revocation{ID: e.ID, Time: e.Time, By: e.By, Reason: e.Reason})
		if err != nil {
			return dsa.Loaded{}, false, err
		}
		a.set = next
		a.signal()
		got, _ := a.set.Get(e.ID, "")
		return got, !already, nil
	}
	return dsa.Loaded{}, false, fmt.Errorf("unknown entry kind %q", e.Kind)
}

// Follow applies every entry of the log, then new ones, until ctx ends.
func (a *Agreements) Follow(ctx context.Context, caughtUp func()) error {
	return a.log.FollowEntries(ctx, func(e controllog.Entry) {
		var le logEntry
		if err := json.Unmarshal(e.Value, &le); err != nil {
			a.lg.Error("agreements log entry not read", "offset", e.Offset, "err", err)
			return
		}
		l, created, err := a.apply(le)
		if err != nil {
			a.lg.Error("agreements log entry not applied", "offset", e.Offset, "err", err)
			return
		}
		if created {
			a.lg.Info("agreement applied", "kind", le.Kind, "agreement", l.Label(), "recipient", l.Recipient.ODSCode, "by", le.By, "offset", e.Offset)
		}
	}, caughtUp)
}

func callerName(ctx context.Context) string {
	if id, ok := identity.FromContext(ctx); ok {
		return fmt.Sprintf("%s:%s:%s", id.Role, id.Org, id.Name)
	}
	return "unknown"
}

func (a *Agreements) publish(ctx context.Context, key string, e logEntry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return a.log.Publish(ctx, key, v)
}

// LoadAgreement implements the gRPC call: check, persist, apply.
func (a *Agreements) LoadAgreement(ctx context.Context, req *accessv1.LoadAgreementRequest) (*accessv1.LoadAgreementResponse, error) {
	doc := req.GetDocument()
	if len(doc) == 0 {
		return nil, status.Error(codes.InvalidArgument, "document: empty")
	}
	ag, err := dsa.Parse(doc, a.known)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "agreement refused, %v", err)
	}
	access.SetSubject(ctx, ag.Label())
	now := a.clock.Now()
	if _, _, err := a.Set().With(dsa.Loaded{Agreement: ag, Document: doc, Time: now}); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "agreement refused: %v", err)
	}
	if a.keys != nil && !a.keys.Has(ag.PseudonymDomain()) {
		return nil, status.Errorf(codes.FailedPrecondition,
			"agreement %s refused: pseudonym domain %s has no key yet; a key custodian creates it first (dmicctl dsa key %s)",
			ag.Label(), ag.PseudonymDomain(), ag.PseudonymDomain())
	}
	e := logEntry{Kind: "load", Document: doc, By: callerName(ctx), Time: now.UTC()}
	if err := a.publish(ctx, ag.ID+"@"+ag.Version, e); err != nil {
		return nil, status.Errorf(codes.Unavailable, "agreement %s not stored: %v", ag.Label(), err)
	}
	l, created, err := a.apply(e)
	if err != nil {
		return nil, status.Errorf(codes.Aborted, "agreement %s: %v", ag.Label(), err)
	}
	a.lg.Info("agreement loaded", "agreement", l.Label(), "recipient", l.Recipient.ODSCode, "by", e.By, "created", created)
	return &accessv1.LoadAgreementResponse{Summary: a.summary(l), Created: created}, nil
}

// RevokeAgreement implements the gRPC call.
func (a *Agreements) RevokeAgreement(ctx context.Context, req *accessv1.RevokeAgreementRequest) (*accessv1.RevokeAgreementResponse, error) {
	reason := strings.TrimSpace(req.GetReason())
	if reason == "" {
		return nil, status.Error(codes.InvalidArgument, "reason: required (it is kept with the revocation)")
	}
	if len(reason) > 500 || strings.ContainsAny(reason, "\n\r") {
		return nil, status.Error(codes.InvalidArgument, "reason: one line of at most 500 characters")
	}
	access.SetSubject(ctx, req.GetId())
	if !a.Set().Known(req.GetId()) {
		return nil, status.Errorf(codes.NotFound, "no agreement %q", req.GetId())
	}
	e := logEntry{Kind: "revoke", ID: req.GetId(), Reason: reason, By: callerName(ctx), Time: a.clock.Now().UTC()}
	if err := a.publish(ctx, "revoke/"+req.GetId(), e); err != nil {
		return nil, status.Errorf(codes.Unavailable, "revocation of %s not stored: %v", req.GetId(), err)
	}
	l, _, err := a.apply(e)
	if err != nil {
		return nil, status.Errorf(codes.Aborted, "revoke %s: %v", req.GetId(), err)
	}
	a.lg.Warn("agreement revoked", "agreement", req.GetId(), "by", e.By, "reason", reason)
	return &accessv1.RevokeAgreementResponse{Summary: a.summary(l)}, nil
}

// ListAgreements implements the gRPC call.
func (a *Agreements) ListAgreements(context.Context, *accessv1.ListAgreementsRequest) (*accessv1.ListAgreementsResponse, error) {
	out := &accessv1.ListAgreementsResponse{}
	for _, l := range a.Set().All() {
		out.Agreements = append(out.Agreements, a.summary(l))
	}
	return out, nil
}

// GetAgreement implements the gRPC call.
func (a *Agreements) GetAgreement(_ context.Context, req *accessv1.GetAgreementRequest) (*accessv1.GetAgreementResponse, error) {
	l, ok := a.Set().Get(req.GetId(), req.GetVersion())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no agreement %q version %q", req.GetId(), req.GetVersion())
	}
	return &accessv1.GetAgreementResponse{Summary: a.summary(l), Document: l.Document}, nil
}

// CreatePseudonymKey implements the gRPC call (key custodians).
func (a *Agreements) CreatePseudonymKey(ctx context.Context, req *accessv1.CreatePseudonymKeyRequest) (*accessv1.CreatePseudonymKeyResponse, error) {
	access.SetSubject(ctx, req.GetDomain()+"/"+req.GetVersion())
	if a.keys == nil {
		return nil, status.Error(codes.FailedPrecondition, "this load has no recipient key directory (-recipient-key-dir)")
	}
	if err := a.keys.Create(req.GetDomain(), req.GetVersion()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "key %s/%s not created: %v", req.GetDomain(), req.GetVersion(), err)
	}
	a.lg.Info("recipient pseudonym key created", "domain", req.GetDomain(), "key_version", req.GetVersion(), "by", callerName(ctx))
	a.signal()
	return &accessv1.CreatePseudonymKeyResponse{Domain: req.GetDomain(), Version: req.GetVersion()}, nil
}

// AccessRow is one recipient user's use of its data.
type AccessRow struct {
	User       string
	Queries    int64
	Failed     int64
	RowsRead   int64
	LastAccess time.Time
}

// SetReport gives the access report its source (the audit table).
func (a *Agreements) SetReport(f func(ctx context.Context) ([]AccessRow, error)) { a.report = f }

// AccessReport implements the gRPC call: per agreement, the version in force
// (or the latest) and its recipient's queries.
func (a *Agreements) AccessReport(ctx context.Context, _ *accessv1.AccessReportRequest) (*accessv1.AccessReportResponse, error) {
	if a.report == nil {
		return nil, status.Error(codes.Unavailable, "the access audit is not ready (ClickHouse)")
	}
	rows, err := a.report(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "access report: %v", err)
	}
	byUser := map[string]AccessRow{}
	for _, r := range rows {
		byUser[r.User] = r
	}
	set, now := a.Set(), a.clock.Now()
	out := &accessv1.AccessReportResponse{}
	seen := map[string]bool{}
	all := set.All()
	for i := len(all) - 1; i >= 0; i-- {
		l := all[i]
		if seen[l.ID] {
			continue
		}
		// The version in force, else the latest loaded.
		for _, v := range set.InForce(now) {
			if v.ID == l.ID {
				l = v
			}
		}
		seen[l.ID] = true
		user := l.Database(a.base)
		r := byUser[user]
		ra := &accessv1.RecipientAccess{Recipient: l.Recipient.ODSCode, User: user, AgreementId: l.ID,
			AgreementVersion: l.Version, State: set.State(l, now), Queries: r.Queries, FailedQueries: r.Failed, RowsRead: r.RowsRead}
		if !r.LastAccess.IsZero() {
			ra.LastAccess = timestamppb.New(r.LastAccess)
		}
		out.Recipients = append(out.Recipients, ra)
	}
	return out, nil
}

func (a *Agreements) summary(l dsa.Loaded) *accessv1.AgreementSummary {
	set := a.Set()
	s := &accessv1.AgreementSummary{Id: l.ID, Version: l.Version, Recipient: l.Recipient.ODSCode, Purpose: l.Purpose,
		State: set.State(l, a.clock.Now()), StartDate: l.StartDate, ExpiryDate: l.ExpiryDate, Datasets: l.Datasets,
		Commissioners: l.RowScope.CommissionerCodes, PseudonymDomain: l.PseudonymDomain(), SmallNumberThreshold: int32(l.SmallNumbers),
		Database: l.Database(a.base), Sha256: l.SHA256(), LoadedBy: l.By, Columns: l.Columns}
	if !l.Time.IsZero() {
		s.LoadedTime = timestamppb.New(l.Time)
	}
	if r, ok := set.Revocation(l.ID); ok {
		s.RevokedBy, s.RevokeReason = r.By, r.Reason
	}
	return s
}
