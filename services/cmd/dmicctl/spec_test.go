package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validate/spec"
	"github.com/dmic-nhs/dmic/services/validate/spec/spectest"
)

func TestParseLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "apc.json")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--allow-backdated", "--reason", "why", file}, {file, "--allow-backdated", "--reason", "why"}} {
		req, err := parseLoad(args)
		if err != nil || !req.GetAllowBackdated() || req.GetReason() != "why" || string(req.GetDocument()) != "{}" {
			t.Errorf("parseLoad(%q) = %v, %v", args, req, err)
		}
	}
	for _, args := range [][]string{{}, {file, file}, {"--allow-backdated", file}, {"--reason", "why", file}, {"--backdate", file}} {
		if _, err := parseLoad(args); err == nil {
			t.Errorf("parseLoad(%q) succeeded", args)
		}
	}
}

// dmicctl spec against a real validate specification service (real broker,
// gRPC over TCP): a backdated version is refused, then loaded with the
// override, and list and show say so, with the reason and who asked.
func TestSpecCommandsBackdating(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kc := brokertest.As(t, topicstest.Broker(t, 2), validate.Access().Principal)
	reg, err := spec.BuiltIn()
	if err != nil {
		t.Fatal(err)
	}
	today := clocktest.Today(t)
	v := spec.New(reg, spec.WithClock(clocktest.Clock(t)))
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	specs := validate.NewSpecifications(v, kafkalog.New(kc, topics.Specifications, w), slog.New(slog.NewTextHandler(io.Discard, nil)))
	caught := make(chan struct{})
	go func() { _ = specs.Follow(ctx, func() { close(caught) }) }()
	<-caught
	addr, as := serveGRPC(t, kc, func(s *grpc.Server) { validationv1.RegisterSpecificationServiceServer(s, specs) })
	run := runner(ctx, specCommand, []endpoint{{"validate", addr}}, as)

	lastWeek := clocktest.Date(today.AddDate(0, 0, -7))
	file := filepath.Join(t.TempDir(), "apc-2026.7.json")
	if err := os.WriteFile(file, spectest.Version(t, "apc", "2026.7", lastWeek, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run("load", file); code != 1 || !strings.Contains(errOut, "FailedPrecondition") || !strings.Contains(errOut, "--allow-backdated") {
		t.Errorf("backdated load: %d %q, want 1, refused, naming --allow-backdated", code, errOut)
	}
	code, out, errOut := run("load", "--allow-backdated", "--reason", "CHG-42 agreed with the providers", file)
	if code != 0 || !strings.Contains(out, "apc/2026.7 loaded: applies to records received from "+lastWeek) ||
		!strings.Contains(out, `BACKDATED by override, recorded with the load: "CHG-42 agreed with the providers"`) {
		t.Errorf("load with the override: %d %q %q", code, out, errOut)
	}
	code, out, _ = run("list")
	var row string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "apc ") && strings.Contains(line, "2026.7") {
			row = strings.Join(strings.Fields(line), " ")
		}
	}
	if code != 0 || !strings.Contains(out, "BACKDATED") || !strings.Contains(row, "loaded "+today.UTC().Format(time.RFC3339)+" yes") {
		t.Errorf("list: %d, row %q in\n%s", code, row, out)
	}
	code, out, _ = run("show", "apc", "2026.7")
	for _, want := range []string{"Backdated:", "yes, by override: CHG-42 agreed with the providers", "Requested by:", "operator:0DC (test operator), certificate serial ", "from 127.0.0.1:",
		"Loaded:", today.UTC().Format(time.RFC3339)} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show: %d, %q does not say %q", code, out, want)
		}
	}
	if code, out, _ := run("show", "apc", "2026.1"); code != 0 || !strings.Contains(out, "Origin:") || strings.Contains(out, "Backdated") {
		t.Errorf("show of a built-in version: %d %q", code, out)
	}
	if code, _, errOut := run("load", "--allow-backdated", file); code != 2 || !strings.Contains(errOut, "go together") {
		t.Errorf("--allow-backdated without --reason: %d %q", code, errOut)
	}
}
