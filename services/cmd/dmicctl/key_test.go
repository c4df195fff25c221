package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	deidv1 "github.com/dmic-nhs/dmic/proto/dmic/deid/v1"
	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
)

func TestParseInstant(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-04-01":                time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		"2026-04-01T10:30:00Z":      time.Date(2026, 4, 1, 10, 30, 0, 0, time.UTC),
		"2026-04-01T10:30:00+01:00": time.Date(2026, 4, 1, 9, 30, 0, 0, time.UTC),
	} {
		got, err := parseInstant(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseInstant(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01", "01/04/2026"} {
		if _, err := parseInstant(bad); err == nil {
			t.Errorf("parseInstant(%q) succeeded", bad)
		}
	}
}

func TestParseRotate(t *testing.T) {
	for _, args := range [][]string{{"analytics", "v2", "-generate"}, {"-generate", "analytics", "v2"}} {
		req, err := parseRotate(args)
		if err != nil || req.GetDomain() != "analytics" || req.GetVersion() != "v2" || !req.GetGenerate() {
			t.Errorf("parseRotate(%q) = %v, %v", args, req, err)
		}
	}
	if req, err := parseRotate([]string{"analytics", "v2"}); err != nil || req.GetGenerate() {
		t.Errorf("without -generate: %v, %v", req, err)
	}
	for _, args := range [][]string{{"analytics"}, {"analytics", "v2", "v3"}, {"analytics", "v2", "-force"}} {
		if _, err := parseRotate(args); err == nil {
			t.Errorf("parseRotate(%q) succeeded", args)
		}
	}
}

// dmicctl key against a real deidentify key service (real broker, real key
// directory, gRPC over TCP).
func TestKeyCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kc := brokertest.As(t, topicstest.Broker(t, 2), deidentify.Access().Principal)
	dir := filepath.Join(t.TempDir(), "keys")
	for _, d := range didi.Domains() {
		if err := didi.GenerateKeyFile(filepath.Join(dir, d, "v1.key"), "v1"); err != nil {
			t.Fatal(err)
		}
	}
	ring, err := didi.LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys := deidentify.NewKeyService(ring, kafkalog.New(kc, topics.KeyRotations, w),
		deidentify.NewReplayer(kafkapipe.RangeOpener(kc), kafkapipe.Sink{W: w}, nil, quiet), quiet)
	caught := make(chan struct{})
	go func() { _ = keys.FollowLog(ctx, func() { close(caught) }) }()
	<-caught
	addr, as := serveGRPC(t, kc, func(s *grpc.Server) { deidv1.RegisterKeyServiceServer(s, keys) })
	svcs := []endpoint{{"deidentify", addr}}
	// An operator's certificate may not touch the keys, not even list them.
	asOperator := runner(ctx, key, svcs, who{operator: as.operator, custodian: as.operator})
	for _, args := range [][]string{{"list"}, {"rotate", "analytics", "v2", "-generate"}} {
		if code, _, errOut := asOperator(args...); code != 1 || !strings.Contains(errOut, "PermissionDenied") || !strings.Contains(errOut, "it is for key-custodian") {
			t.Errorf("key %v as an operator: %d %q, want refused", args, code, errOut)
		}
	}
	run := runner(ctx, key, svcs, as)
	code, out, _ := run("rotate", "analytics", "v2", "-generate")
	if code != 0 || !strings.Contains(out, "analytics: key v2 is active for new records (was v1); key file analytics/v2.key") {
		t.Errorf("rotate: %d %q", code, out)
	}
	code, out, _ = run("list")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	want := []string{"DOMAIN VERSION ACTIVE FILE", "analytics v1 analytics/v1.key", "analytics v2 active analytics/v2.key", "national-return v1 active national-return/v1.key"}
	if code != 0 || !slices.Equal(lines, want) {
		t.Errorf("list: %d, %q, want %q", code, lines, want)
	}
	code, out, _ = run("repseudonymise", "2020-01-01", "2020-01-02")
	if code != 0 || !strings.Contains(out, "re-pseudonymised 0 records validated from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z (0 dead-lettered) with keys analytics=v2, national-return=v1") {
		t.Errorf("repseudonymise: %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"rotate", "analytics", "v2", "-generate"}, 1, "AlreadyExists"},
		{[]string{"rotate", "analytics"}, 2, "want DOMAIN and VERSION"},
		{[]string{"repseudonymise", "2020-01-02", "2020-01-01"}, 2, "must be before"},
		{[]string{"repseudonymise", "soon", "2020-01-01"}, 2, `"soon" is neither`},
		{[]string{"shred"}, 2, "usage: dmicctl key"},
	} {
		code, _, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%q: %d %q, want %d mentioning %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
	var errb bytes.Buffer
	if code := key(ctx, []string{"list"}, []endpoint{{"validate", "x:1"}}, as, io.Discard, &errb, time.Second); code != 2 || !strings.Contains(errb.String(), "no deidentify service") {
		t.Errorf("without a deidentify service: %d %q", code, errb.String())
	}
}
