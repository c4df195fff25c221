package validate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validate/spec"
)

// serve serves specs over gRPC on a TCP port, over TLS and behind the
// authorisation layer as validate serves them, and returns a client that
// presents the operator's certificate, so that the call has a real peer,
// metadata and an authenticated caller.
func serve(t *testing.T, kc kafkaconn.Cluster, clk clock.Clock, specs *validate.Specifications) (validationv1.SpecificationServiceClient, *devpki.Leaf) {
	t.Helper()
	pki := devpkitest.New(t, clk.Now())
	g, _ := pki.Guard(kc, clk)
	addr := pki.ServeGRPC(g, func(gs *grpc.Server) { validationv1.RegisterSpecificationServiceServer(gs, specs) })
	op := pki.Client(identity.Operator, "0DC", "Olive Operator")
	cc, err := grpc.NewClient(addr, pki.DialOption(op), grpc.WithUserAgent("backdating-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return validationv1.NewSpecificationServiceClient(cc), op
}

// A version effective before today would judge records already received: it
// is refused. With the override and a reason it loads, the override is
// logged at WARN with who asked, and the record of it is on the log, so a
// restarted instance shows it too.
func TestBackdatedSpecificationRefusedUnlessOverriddenAndAudited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := topicstest.Broker(t, 3)
	vc := brokertest.As(t, brokers, validate.Access().Principal)
	clk := clocktest.Manual(t)
	today := clk.Now()
	yesterday := clocktest.Date(today.AddDate(0, 0, -1))

	reg, err := spec.BuiltIn()
	if err != nil {
		t.Fatal(err)
	}
	v := spec.New(reg, spec.WithClock(clk.Clock()))
	w := kafkapipe.NewWriter(vc)
	t.Cleanup(func() { w.Close() })
	var logs bytes.Buffer
	specs := validate.NewSpecifications(v, kafkalog.New(vc, topics.Specifications, w), slog.New(slog.NewJSONHandler(&logs, nil)))
	client, op := serve(t, vc, clk.Clock(), specs)
	serial := strings.ToLower(op.Cert.SerialNumber.Text(16))

	backdated := apcVersion(t, "2026.9", yesterday)
	_, err = client.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{Document: backdated})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("backdated load: %v, want FailedPrecondition", err)
	}
	for _, want := range []string{"apc/2026.9", "effective from " + yesterday, "before today (" + clocktest.Date(today), "allow_backdated"} {
		if !strings.Contains(status.Convert(err).Message(), want) {
			t.Errorf("refusal %q does not say %q", status.Convert(err).Message(), want)
		}
	}
	// The override needs a reason, and a reason needs the override.
	for _, req := range []*validationv1.LoadSpecificationRequest{
		{Document: backdated, AllowBackdated: true},
		{Document: backdated, AllowBackdated: true, Reason: "  "},
		{Document: backdated, Reason: "why not"},
		{Document: backdated, AllowBackdated: true, Reason: "two\nlines"},
	} {
		if _, err := client.LoadSpecification(ctx, req); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "reason") {
			t.Errorf("allow_backdated %v, reason %q: %v, want InvalidArgument about the reason", req.AllowBackdated, req.Reason, err)
		}
	}
	// Effective today is not backdated: no override needed.
	if resp, err := client.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{Document: apcVersion(t, "2026.8", clocktest.Date(today))}); err != nil ||
		!resp.Created || resp.Summary.GetLoad().GetBackdated() {
		t.Errorf("effective today: %v, %v; want loaded, not backdated", resp, err)
	}
	// An override that turns out not to be needed loads the version as it
	// is, and keeps the reason given.
	if resp, err := client.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{
		Document: apcVersion(t, "2026.10", clocktest.Date(today.AddDate(0, 0, 1))), AllowBackdated: true, Reason: "just in case",
	}); err != nil || resp.Summary.GetLoad().GetBackdated() || resp.Summary.GetLoad().GetReason() != "just in case" {
		t.Errorf("effective tomorrow, with the override: %v, %v; want loaded, not backdated, the reason kept", resp, err)
	}
	if strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Errorf("logged a warning before any override:\n%s", logs.String())
	}

	const reason = "CHG-1234: the CODE-003 correction applies from yesterday"
	resp, err := client.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{Document: backdated, AllowBackdated: true, Reason: reason})
	if err != nil || !resp.Created {
		t.Fatalf("backdated load with the override: %v, %v", resp, err)
	}
	checkAudit := func(where string, load *validationv1.SpecificationLoad) {
		t.Helper()
		c := load.GetCaller()
		if !load.GetBackdated() || load.GetReason() != reason || c.GetName() != "Olive Operator" || c.GetRole() != "operator" ||
			c.GetOrg() != "0DC" || c.GetSerial() != serial || c.GetMethod() != "mtls" ||
			!strings.HasPrefix(load.GetPeer(), "127.0.0.1:") || !strings.Contains(load.GetUserAgent(), "backdating-test") ||
			!load.GetLoadedTime().AsTime().Equal(today) {
			t.Errorf("%s: load record %v, want backdated by the operator's certificate from 127.0.0.1 with the reason, at %v", where, load, today)
		}
	}
	checkAudit("answer", resp.Summary.GetLoad())

	// One WARN line, with the override, who asked and why.
	var warned map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] == "WARN" {
			if warned != nil {
				t.Errorf("more than one warning: %v and %v", warned, rec)
			}
			warned = rec
		}
	}
	if warned["spec"] != "apc/2026.9" || warned["reason"] != reason || warned["caller_name"] != "Olive Operator" || warned["caller_serial"] != serial || warned["backdated"] != true ||
		warned["effective_from"] != yesterday || warned["today"] != clocktest.Date(today) {
		t.Errorf("warning = %v, want the override of apc/2026.9 with who asked and why", warned)
	}

	// A restart replays the log: the version and its audit are there, with
	// the time it was loaded, although the restart is a day later.
	clk.Set(today.AddDate(0, 0, 1))
	restarted := startInstance(t, ctx, brokers, clk.Clock())
	list, err := restarted.specs.ListSpecifications(ctx, &validationv1.ListSpecificationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range list.Specifications {
		switch s.Id + "/" + s.Version {
		case "apc/2026.9":
			found = true
			checkAudit("after a restart", s.GetLoad())
			if !s.GetLoadedTime().AsTime().Equal(today) {
				t.Errorf("after a restart: loaded %v, want %v", s.GetLoadedTime().AsTime(), today)
			}
		case "apc/2026.8":
			if l := s.GetLoad(); l.GetBackdated() || l.GetCaller().GetName() != "Olive Operator" {
				t.Errorf("after a restart: apc/2026.8 load record %v, want not backdated, by the operator", l)
			}
		case "apc/2026.1":
			if s.GetLoad() != nil {
				t.Errorf("a built-in version has a load record: %v", s.GetLoad())
			}
		}
	}
	if !found {
		t.Error("after a restart: apc/2026.9 is not listed")
	}
}
