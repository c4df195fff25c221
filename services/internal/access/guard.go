package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// Protocols, as metrics and the audit trail name them.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// Reasons of the guard's own refusals (the authenticator's are in package
// identity; a handler names its own with Refuse).
const (
	// ReasonUnlisted: the method or route is in no table (deny by default).
	ReasonUnlisted = "unlisted"
	// ReasonRole: the caller's role may not call it.
	ReasonRole = "role"
	// ReasonNotAudited: the action could not be recorded, so it was not
	// carried out.
	ReasonNotAudited = "not-audited"
)

// auditWait bounds how long an action waits to be recorded before it is
// refused as not audited.
const auditWait = 10 * time.Second

// Guard authorises the calls of one service.
type Guard struct {
	auth      identity.Authenticator
	audit     audit.Recorder
	log       *slog.Logger
	refusals  *prometheus.CounterVec
	grpcRules map[string]Rule
	httpRules map[string]Rule
}

// New guards calls with auth, recording on rec and counting refusals in
// reg, by the tables GRPC and HTTP.
func New(auth identity.Authenticator, rec audit.Recorder, log *slog.Logger, reg prometheus.Registerer) *Guard {
	g := &Guard{auth: auth, audit: rec, log: log, grpcRules: GRPC(), httpRules: HTTP(),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_auth_refusals_total",
			Help: "Calls refused: not authenticated, not authorised, or content the caller may not send; by protocol and reason."},
			[]string{"protocol", "reason"}),
	}
	reg.MustRegister(g.refusals)
	return g
}

// call is what the guard knows of one call while it runs: filled by the
// handler through Refuse and SetSubject, read by the guard when it ends.
type call struct {
	mu      sync.Mutex
	subject string
	refusal *identity.Refusal
}

type callKey struct{}

func contextWithCall(ctx context.Context, c *call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// SetSubject names what the call acts on (a submission id, a key version)
// for its audit entries. Outside a guarded call it does nothing.
func SetSubject(ctx context.Context, subject string) {
	if c := callOf(ctx); c != nil {
		c.mu.Lock()
		c.subject = subject
		c.mu.Unlock()
	}
}

// Refuse is a handler's refusal of what only it can judge (content the
// caller may not send): the guard counts and audits it with reason when the
// call ends. It returns the gRPC PermissionDenied error with message; an
// HTTP handler answers 403 with the same message.
func Refuse(ctx context.Context, reason, message string) error {
	if c := callOf(ctx); c != nil {
		c.mu.Lock()
		c.refusal = &identity.Refusal{Reason: reason, Message: message}
		c.mu.Unlock()
	}
	return status.Error(codes.PermissionDenied, message)
}

// refused is a refusal the guard answers: authentication (Unauthenticated /
// 401) or authorisation (PermissionDenied / 403).
type refused struct {
	unauthenticated bool
	reason          string
	message         string
}

// check authenticates and authorises a call to action under rule. It
// returns the caller, or the refusal; an open rule needs no caller.
func (g *Guard) check(ctx context.Context, action string, rule Rule, known bool, cr identity.Credentials) (identity.Identity, *identity.Identity, *refused) {
	if !known {
		return identity.Identity{}, nil, &refused{reason: ReasonUnlisted,
			message: fmt.Sprintf("%s is not in dmic's authorisation table, so nobody may call it (docs/security.md)", action)}
	}
	if rule.Open {
		return identity.Identity{}, nil, nil
	}
	id, err := g.auth.Authenticate(ctx, cr)
	if err != nil {
		r := &refused{unauthenticated: true, reason: identity.ReasonInvalidCertificate, message: "not authenticated: " + err.Error()}
		if rf, ok := errors.AsType[*identity.Refusal](err); ok {
			r.reason, r.message = rf.Reason, "not authenticated: "+rf.Message
		}
		return identity.Identity{}, nil, r
	}
	if !rule.allows(id) {
		return id, &id, &refused{reason: ReasonRole,
			message: fmt.Sprintf("%s may not call %s: it is for %s", id, action, rule.roleNames())}
	}
	return id, &id, nil
}

// refuse logs, counts and audits a refusal.
func (g *Guard) refuse(protocol, action, peerAddr string, caller *identity.Identity, id, reason, message, subject string) {
	g.refusals.WithLabelValues(protocol, reason).Inc()
	attrs := []any{"protocol", protocol, "action", action, "reason", reason, "peer", peerAddr, "audit_id", id, "detail", message}
	if caller != nil {
		attrs = append(attrs, caller.LogAttrs()...)
	}
	g.log.Warn("refused", attrs...)
	g.audit.Enqueue(audit.Entry{ID: id, Protocol: protocol, Action: action, Outcome: audit.Refused, Reason: reason,
		Detail: message, Caller: caller, Peer: peerAddr, Subject: subject})
}

// begin records an allowed action that changes something, before it is
// carried out.
func (g *Guard) begin(ctx context.Context, protocol, action, peerAddr string, caller identity.Identity, id string) error {
	// Bounded: a caller waits for the audit trail, not for ever.
	ctx, cancel := context.WithTimeout(ctx, auditWait)
	defer cancel()
	return g.audit.Record(ctx, audit.Entry{ID: id, Protocol: protocol, Action: action, Outcome: audit.Allowed, Caller: &caller, Peer: peerAddr})
}

// end records how an allowed action ended, or the handler's refusal.
func (g *Guard) end(protocol, action, peerAddr string, caller identity.Identity, rule Rule, id string, c *call, failure string, detail string) {
	c.mu.Lock()
	subject, rf := c.subject, c.refusal
	c.mu.Unlock()
	if rf != nil {
		g.refuse(protocol, action, peerAddr, &caller, id, rf.Reason, rf.Message, subject)
		return
	}
	if !rule.Changes {
		return
	}
	e := audit.Entry{ID: id, Protocol: protocol, Action: action, Outcome: audit.Done, Caller: &caller, Peer: peerAddr, Subject: subject}
	if failure != "" {
		e.Outcome, e.Reason, e.Detail = audit.Failed, failure, detail
	}
	g.audit.Enqueue(e)
}

// CheckGRPC reports the methods a gRPC server registers that are not in the
// table: a service must not serve what nobody decided who may call.
func (g *Guard) CheckGRPC(services map[string]grpc.ServiceInfo) error {
	var names []string
	for svc, info := range services {
		for _, m := range info.Methods {
			names = append(names, "/"+svc+"/"+m.Name)
		}
	}
	if m := missing(names, g.grpcRules); len(m) > 0 {
		return fmt.Errorf("gRPC methods without an authorisation rule (add them to internal/access, GRPC): %s", strings.Join(m, ", "))
	}
	return nil
}

// grpcCredentials are what a gRPC call presents.
func grpcCredentials(ctx context.Context) (identity.Credentials, string) {
	var cr identity.Credentials
	addr := ""
	if p, ok := peer.FromContext(ctx); ok {
		if p.Addr != nil {
			addr = p.Addr.String()
		}
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			st := ti.State
			cr.TLS = &st
		}
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			cr.Authorization = v[0]
		}
	}
	return cr, addr
}

// grpcGuard authorises one gRPC call; it returns the context the handler
// runs in and a function to call with the handler's error, or the refusal.
func (g *Guard) grpcGuard(ctx context.Context, method string) (context.Context, func(error), error) {
	rule, known := g.grpcRules[method]
	cr, addr := grpcCredentials(ctx)
	caller, who, r := g.check(ctx, method, rule, known, cr)
	id := audit.NewID()
	if r != nil {
		g.refuse(ProtocolGRPC, method, addr, who, id, r.reason, r.message, "")
		code := codes.PermissionDenied
		if r.unauthenticated {
			code = codes.Unauthenticated
		}
		return nil, nil, status.Error(code, r.message)
	}
	if rule.Open {
		return ctx, func(error) {}, nil
	}
	c := &call{}
	ctx = contextWithCall(identity.NewContext(ctx, caller), c)
	if rule.Changes {
		if err := g.begin(ctx, ProtocolGRPC, method, addr, caller, id); err != nil {
			g.refuse(ProtocolGRPC, method, addr, &caller, id, ReasonNotAudited, err.Error(), "")
			return nil, nil, status.Errorf(codes.Unavailable, "%s not carried out: it could not be recorded on the audit trail (%v); retry later", method, err)
		}
	}
	return ctx, func(err error) {
		failure, detail := "", ""
		if err != nil {
			st := status.Convert(err)
			failure, detail = st.Code().String(), st.Message()
		}
		g.end(ProtocolGRPC, method, addr, caller, rule, id, c, failure, detail)
	}, nil
}

// UnaryInterceptor authorises unary calls.
func (g *Guard) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, done, err := g.grpcGuard(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		resp, err := handler(ctx, req)
		done(err)
		return resp, err
	}
}

// StreamInterceptor authorises streaming calls.
func (g *Guard) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, done, err := g.grpcGuard(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		err = handler(srv, &guardedStream{ServerStream: ss, ctx: ctx})
		done(err)
		return err
	}
}

// guardedStream is a stream whose context carries the caller.
type guardedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *guardedStream) Context() context.Context { return s.ctx }

// ServerOptions are the options a gRPC server needs to be guarded by g.
func (g *Guard) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(g.UnaryInterceptor()), grpc.ChainStreamInterceptor(g.StreamInterceptor())}
}
