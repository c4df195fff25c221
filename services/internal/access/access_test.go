package access_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	deidv1 "github.com/dmic-nhs/dmic/proto/dmic/deid/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/audit/audittest"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/control"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// TestEveryMethodHasARule walks every gRPC service of dmic's API contract,
// and health and reflection, and requires a rule for each method; and
// requires every rule to name a method that exists, so that the table cannot
// keep a rule for a method since renamed (deny by default would then refuse
// the new name, but the stale rule would hide that nobody decided).
func TestEveryMethodHasARule(t *testing.T) {
	// The generated packages register their files when imported.
	_ = []any{dmicv1.File_dmic_v1_control_proto, validationv1.File_dmic_validation_v1_specification_proto, deidv1.File_dmic_deid_v1_keys_proto}
	rules := access.GRPC()
	methods := map[string]bool{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		pkg := string(fd.Package())
		if !strings.HasPrefix(pkg, "dmic.") && pkg != "grpc.health.v1" && pkg != "grpc.reflection.v1" && pkg != "grpc.reflection.v1alpha" {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				methods["/"+string(sd.FullName())+"/"+string(sd.Methods().Get(j).Name())] = true
			}
		}
		return true
	})
	if len(methods) < 15 {
		t.Fatalf("found %d methods: the walk missed the API (%v)", len(methods), methods)
	}
	for m := range methods {
		if _, ok := rules[m]; !ok {
			t.Errorf("%s has no rule in access.GRPC: decide who may call it", m)
		}
	}
	for m := range rules {
		if !methods[m] {
			t.Errorf("access.GRPC has a rule for %s, which no service of the API has", m)
		}
	}
	// The acceptance of issue 12, as the table says it.
	want := map[string][]identity.Role{
		dmicv1.ControlService_Pause_FullMethodName:                         {identity.Operator},
		validationv1.SpecificationService_LoadSpecification_FullMethodName: {identity.Operator},
		deidv1.KeyService_ListKeys_FullMethodName:                          {identity.KeyCustodian},
		deidv1.KeyService_RotateKey_FullMethodName:                         {identity.KeyCustodian},
		deidv1.KeyService_Repseudonymise_FullMethodName:                    {identity.KeyCustodian},
	}
	for m, roles := range want {
		if !slices.Equal(rules[m].Roles, roles) || rules[m].Open {
			t.Errorf("%s is for %v (open %v), want %v", m, rules[m].Roles, rules[m].Open, roles)
		}
	}
	if r := rules[healthpb.Health_Check_FullMethodName]; !r.Open {
		t.Error("health is not open for probes")
	}
}

// stack is a guarded gRPC server and HTTP API over TLS on loopback, with
// the audit trail on an embedded broker.
type stack struct {
	pki   *devpkitest.PKI
	guard *access.Guard
	reg   *prometheus.Registry
	// operator reads the audit trail, as the operators' tools do.
	operator kafkaconn.Cluster
	grpc     string
	http     string
	target   *target
	keys     *keys
}

type target struct {
	mu     sync.Mutex
	paused bool
}

func (t *target) Pause()           { t.mu.Lock(); t.paused = true; t.mu.Unlock() }
func (t *target) Resume()          { t.mu.Lock(); t.paused = false; t.mu.Unlock() }
func (t *target) Paused() bool     { t.mu.Lock(); defer t.mu.Unlock(); return t.paused }
func (t *target) Processed() int64 { return 0 }
func (t *target) Rejected() int64  { return 0 }

// keys is a key service that does what it is asked: what is tested here is
// who may ask.
type keys struct {
	deidv1.UnimplementedKeyServiceServer
	mu      sync.Mutex
	rotated int
}

func (k *keys) RotateKey(context.Context, *deidv1.RotateKeyRequest) (*deidv1.RotateKeyResponse, error) {
	k.mu.Lock()
	k.rotated++
	k.mu.Unlock()
	return &deidv1.RotateKeyResponse{}, nil
}

func (k *keys) count() int { k.mu.Lock(); defer k.mu.Unlock(); return k.rotated }

// unlisted is a gRPC service no rule names. Its handler is written as
// protoc-gen-go-grpc writes them: through the server's interceptor.
var unlisted = grpc.ServiceDesc{
	ServiceName: "test.Unlisted",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Do", Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := &dmicv1.PauseRequest{}
		if err := dec(in); err != nil {
			return nil, err
		}
		reached := func(context.Context, any) (any, error) {
			return nil, status.Error(codes.Internal, "reached the handler of an unlisted method")
		}
		if interceptor == nil {
			return reached(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Unlisted/Do"}, reached)
	}}},
}

// newStack guards as a service does: its audit trail is written as a
// service's principal (ingest's), which the ACL table lets append to it.
func newStack(t *testing.T, b *broker.Broker) *stack {
	t.Helper()
	now := time.Now()
	p := devpkitest.New(t, now)
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	kc := brokertest.As(t, b, topics.ServicePrincipal("ingest"))
	w := kafkapipe.NewWriter(kc)
	t.Cleanup(func() { w.Close() })
	reg := prometheus.NewRegistry()
	trail := audit.New(kafkalog.New(kc, topics.Audit, w), "test", clock.System(), lg, reg)
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { trail.Run(ctx); close(ran) }()
	t.Cleanup(func() { stop(); <-ran })
	g := access.New(identity.Chain{p.Authenticator(clock.System())}, trail, lg, reg)

	s := &stack{pki: p, guard: g, reg: reg, operator: brokertest.As(t, b, topics.Operator), target: &target{}, keys: &keys{}}
	tlsCfg := p.ServerTLS()
	gs := grpc.NewServer(append(g.ServerOptions(), grpc.Creds(credentialsFor(tlsCfg)))...)
	control.Register(gs, control.Info{Service: "test"}, s.target, nil, nil, lg)
	deidv1.RegisterKeyServiceServer(gs, s.keys)
	gs.RegisterService(&unlisted, struct{}{})
	if err := g.CheckGRPC(gs.GetServiceInfo()); err == nil || !strings.Contains(err.Error(), "/test.Unlisted/Do") || strings.Contains(err.Error(), "Health") {
		t.Errorf("CheckGRPC = %v, want it to name /test.Unlisted/Do alone", err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(gl) }()
	t.Cleanup(gs.Stop)
	s.grpc = gl.Addr().String()

	mux := access.NewMux()
	mux.HandleFunc("POST /v1/submissions", func(w http.ResponseWriter, r *http.Request) {
		id, _ := identity.FromContext(r.Context())
		if r.URL.Query().Get("submitter") != "" && r.URL.Query().Get("submitter") != id.Org {
			err := access.Refuse(r.Context(), "not-your-records", fmt.Sprintf("%s may not submit as %s", id, r.URL.Query().Get("submitter")))
			access.WriteError(w, http.StatusForbidden, status.Convert(err).Message())
			return
		}
		access.SetSubject(r.Context(), "sub-1")
		fmt.Fprintf(w, "submitted by %s\n", id.Org)
	})
	mux.HandleFunc("GET /v1/submissions/{id}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "report") })
	mux.HandleFunc("GET /v1/secret", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "reached an unlisted route") })
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := tlsCfg.Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	srv := &http.Server{Handler: g.HTTP(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(tlsListener(hl, cfg)) }()
	t.Cleanup(func() { srv.Close() })
	s.http = "https://" + hl.Addr().String()
	if err := g.CheckHTTP(mux); err == nil || !strings.Contains(err.Error(), "GET /v1/secret") {
		t.Errorf("CheckHTTP = %v, want it to name the unlisted route", err)
	}
	return s
}

func setup(t *testing.T) *stack {
	t.Helper()
	return newStack(t, brokertest.New(t, broker.WithDefaultPartitions(1)))
}

func (s *stack) conn(t *testing.T, leaf *devpki.Leaf) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(s.grpc, s.pki.DialOption(leaf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestGRPCWhoMayDoWhat is issue 12's acceptance for the control API and the
// key service, over real TLS connections: without a client certificate
// nobody can pause a service or call the key service; an operator can pause
// but cannot rotate a key; a key custodian can. Each refusal is answered
// with its reason, counted and audited; each allowed change is audited with
// its caller.
func TestGRPCWhoMayDoWhat(t *testing.T) {
	s := setup(t)
	p := s.pki
	operator := p.Client(identity.Operator, "0DC", "Olive Operator")
	custodian := p.Client(identity.KeyCustodian, "0DC", "Kim Custodian")
	analyst := p.Client(identity.Analyst, "0DC", "Ann Analyst")
	impostor := devpkitest.New(t, p.Now).Client(identity.Operator, "0DC", "Imp Ostor")
	ctx := ctxT(t)
	type step struct {
		name   string
		leaf   *devpki.Leaf
		call   func(*grpc.ClientConn) error
		code   codes.Code
		reason string // the refusal's reason; "" when allowed
		text   string
	}
	pause := func(c *grpc.ClientConn) error {
		_, err := dmicv1.NewControlServiceClient(c).Pause(ctx, &dmicv1.PauseRequest{})
		return err
	}
	rotate := func(c *grpc.ClientConn) error {
		_, err := deidv1.NewKeyServiceClient(c).RotateKey(ctx, &deidv1.RotateKeyRequest{Domain: "analytics", Version: "v2"})
		return err
	}
	steps := []step{
		{"anonymous health", nil, func(c *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}, codes.OK, "", ""},
		{"anonymous status", nil, func(c *grpc.ClientConn) error {
			_, err := dmicv1.NewControlServiceClient(c).GetStatus(ctx, &dmicv1.GetStatusRequest{})
			return err
		}, codes.Unauthenticated, identity.ReasonNoCredentials, "no credentials"},
		{"anonymous pause", nil, pause, codes.Unauthenticated, identity.ReasonNoCredentials, "present a client certificate"},
		{"anonymous rotation", nil, rotate, codes.Unauthenticated, identity.ReasonNoCredentials, ""},
		{"untrusted operator pause", impostor, pause, codes.Unauthenticated, identity.ReasonUntrusted, "not issued by an authority dmic trusts"},
		{"analyst status", analyst, func(c *grpc.ClientConn) error {
			_, err := dmicv1.NewControlServiceClient(c).GetStatus(ctx, &dmicv1.GetStatusRequest{})
			return err
		}, codes.OK, "", ""},
		{"analyst pause", analyst, pause, codes.PermissionDenied, access.ReasonRole, "analyst:0DC (Ann Analyst) may not call /dmic.v1.ControlService/Pause: it is for operator"},
		{"operator rotation", operator, rotate, codes.PermissionDenied, access.ReasonRole, "it is for key-custodian"},
		{"operator key list", operator, func(c *grpc.ClientConn) error {
			_, err := deidv1.NewKeyServiceClient(c).ListKeys(ctx, &deidv1.ListKeysRequest{})
			return err
		}, codes.PermissionDenied, access.ReasonRole, "it is for key-custodian"},
		{"custodian pause", custodian, pause, codes.PermissionDenied, access.ReasonRole, ""},
		{"operator pause", operator, pause, codes.OK, "", ""},
		{"custodian rotation", custodian, rotate, codes.OK, "", ""},
		{"operator unlisted", operator, func(c *grpc.ClientConn) error {
			return c.Invoke(ctx, "/test.Unlisted/Do", &dmicv1.PauseRequest{}, &dmicv1.PauseResponse{})
		}, codes.PermissionDenied, access.ReasonUnlisted, "not in dmic's authorisation table"},
	}
	for _, st := range steps {
		err := st.call(s.conn(t, st.leaf))
		if status.Code(err) != st.code {
			t.Errorf("%s: %v, want %v", st.name, err, st.code)
			continue
		}
		if st.text != "" && !strings.Contains(status.Convert(err).Message(), st.text) {
			t.Errorf("%s: %q does not say %q", st.name, status.Convert(err).Message(), st.text)
		}
	}
	if !s.target.Paused() || s.keys.count() != 1 {
		t.Errorf("paused %v, rotations %d: want the operator's pause and the custodian's rotation carried out, and nothing else", s.target.Paused(), s.keys.count())
	}
	// Counted by reason.
	for reason, want := range map[string]float64{identity.ReasonNoCredentials: 3, identity.ReasonUntrusted: 1, access.ReasonRole: 4, access.ReasonUnlisted: 1} {
		if got := refusals(t, s.reg, access.ProtocolGRPC, reason); got != want {
			t.Errorf("refusals for %s: %v, want %v", reason, got, want)
		}
	}
	// Audited: 9 refusals, and the pause and the rotation, each allowed and done.
	entries := audittest.Trail(t, s.operator, 13)
	var refusals []audit.Entry
	byOutcome := map[string][]audit.Entry{}
	for _, e := range entries {
		byOutcome[e.Outcome] = append(byOutcome[e.Outcome], e)
		if e.Outcome == audit.Refused {
			refusals = append(refusals, e)
		}
	}
	if len(refusals) != 9 || len(byOutcome[audit.Allowed]) != 2 || len(byOutcome[audit.Done]) != 2 {
		t.Fatalf("audit: %d refused, %d allowed, %d done; want 9, 2, 2: %+v", len(refusals), len(byOutcome[audit.Allowed]), len(byOutcome[audit.Done]), entries)
	}
	for _, e := range byOutcome[audit.Done] {
		if e.Caller == nil || e.Protocol != "grpc" || e.Peer == "" || e.Time.IsZero() || e.Service != "test" {
			t.Errorf("done entry without who, where or when: %+v", e)
		}
		allowed := slices.IndexFunc(byOutcome[audit.Allowed], func(a audit.Entry) bool { return a.ID == e.ID })
		if allowed < 0 {
			t.Errorf("done entry %s has no allowed entry before it", e.ID)
		}
	}
	pauseDone := slices.IndexFunc(byOutcome[audit.Done], func(e audit.Entry) bool { return e.Action == dmicv1.ControlService_Pause_FullMethodName })
	if pauseDone < 0 || byOutcome[audit.Done][pauseDone].Caller.Name != "Olive Operator" || byOutcome[audit.Done][pauseDone].Caller.Serial != strings.ToLower(operator.Cert.SerialNumber.Text(16)) {
		t.Errorf("the pause is not audited as the operator's (name and certificate serial): %+v", byOutcome[audit.Done])
	}
	analystRefusal := slices.IndexFunc(refusals, func(e audit.Entry) bool { return e.Caller != nil && e.Caller.Role == identity.Analyst })
	if analystRefusal < 0 || refusals[analystRefusal].Reason != access.ReasonRole || refusals[analystRefusal].Action != dmicv1.ControlService_Pause_FullMethodName {
		t.Errorf("the analyst's refused pause is not audited with who and why: %+v", refusals)
	}
	anonymous := slices.IndexFunc(refusals, func(e audit.Entry) bool {
		return e.Caller == nil && e.Reason == identity.ReasonNoCredentials && e.Action == deidv1.KeyService_RotateKey_FullMethodName
	})
	if anonymous < 0 {
		t.Errorf("the anonymous rotation is not audited: %+v", refusals)
	}
}

// TestHTTPWhoMayDoWhat: the middleware answers 401 without a certificate,
// 403 to a role the route is not for and to a handler's refusal, and lets a
// provider submit; an unlisted route is refused even to a caller with a
// valid certificate.
func TestHTTPWhoMayDoWhat(t *testing.T) {
	s := setup(t)
	p := s.pki
	rcf := p.Client(identity.Provider, "RCF", "RCF EPR")
	analyst := p.Client(identity.Analyst, "0DC", "Ann Analyst")
	tests := []struct {
		name   string
		leaf   *devpki.Leaf
		method string
		path   string
		code   int
		text   string
	}{
		{"anonymous submission", nil, http.MethodPost, "/v1/submissions", http.StatusUnauthorized, "no credentials"},
		{"analyst submission", analyst, http.MethodPost, "/v1/submissions", http.StatusForbidden, "may not call POST /v1/submissions: it is for provider, national"},
		{"provider submission", rcf, http.MethodPost, "/v1/submissions", http.StatusOK, "submitted by RCF"},
		{"provider as another", rcf, http.MethodPost, "/v1/submissions?submitter=RP4", http.StatusForbidden, "may not submit as RP4"},
		{"provider report", rcf, http.MethodGet, "/v1/submissions/sub-1", http.StatusOK, "report"},
		{"unlisted route", rcf, http.MethodGet, "/v1/secret", http.StatusForbidden, "not in dmic's authorisation table"},
		{"no route", rcf, http.MethodGet, "/nowhere", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(ctxT(t), tt.method, s.http+tt.path, strings.NewReader("{}\n"))
		resp, err := p.HTTPClient(tt.leaf).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.text) {
			t.Errorf("%s: %d %s, want %d saying %q", tt.name, resp.StatusCode, body, tt.code, tt.text)
		}
	}
	for reason, want := range map[string]float64{identity.ReasonNoCredentials: 1, access.ReasonRole: 1, "not-your-records": 1, access.ReasonUnlisted: 1} {
		if got := refusals(t, s.reg, access.ProtocolHTTP, reason); got != want {
			t.Errorf("HTTP refusals for %s: %v, want %v", reason, got, want)
		}
	}
	// 4 refusals; the two submissions allowed, one done (sub-1) and one
	// refused by its handler.
	entries := audittest.Trail(t, s.operator, 7)
	var got []string
	for _, e := range entries {
		got = append(got, e.Outcome+"/"+e.Reason+"/"+e.Subject)
	}
	slices.Sort(got)
	want := []string{"allowed//", "allowed//", "done//sub-1", "refused/no-credentials/", "refused/not-your-records/", "refused/role/", "refused/unlisted/"}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail %v, want %v", got, want)
	}
}

// An action that cannot be recorded is not carried out.
func TestNoAuditNoAction(t *testing.T) {
	b := brokertest.New(t, broker.WithDefaultPartitions(1))
	ctx := ctxT(t)
	s := newStack(t, b)
	b.Close() // the audit trail is gone
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := dmicv1.NewControlServiceClient(s.conn(t, s.pki.Client(identity.Operator, "0DC", "op"))).Pause(cctx, &dmicv1.PauseRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "could not be recorded on the audit trail") {
		t.Errorf("pause without an audit trail: %v, want Unavailable", err)
	}
	if s.target.Paused() {
		t.Error("the pause was carried out without being audited")
	}
	if got := refusals(t, s.reg, access.ProtocolGRPC, access.ReasonNotAudited); got != 1 {
		t.Errorf("not-audited refusals: %v, want 1", got)
	}
}

// refusals is the count of refusals for protocol and reason.
func refusals(t *testing.T, reg *prometheus.Registry, protocol, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "dmic_auth_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["protocol"] == protocol && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func credentialsFor(c *tls.Config) credentials.TransportCredentials { return credentials.NewTLS(c) }

func tlsListener(l net.Listener, c *tls.Config) net.Listener { return tls.NewListener(l, c) }
