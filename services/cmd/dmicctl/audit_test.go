package main

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
)

// auditTrail is dmic.audit as the services' audit.Log writes it: one
// partition, in order.
type auditTrail struct{ msgs []pipeline.Message }

func (tr *auditTrail) Publish(_ context.Context, _ string, v []byte, _ ...pipeline.Header) error {
	tr.msgs = append(tr.msgs, pipeline.Message{Topic: topics.Audit, Offset: int64(len(tr.msgs)), Value: v})
	return nil
}

type noKafka struct{}

func (noKafka) Write(context.Context, []pipeline.Output) error { return nil }

// TestAudit records entries as a service does (audit.Log), loads them as
// load does (its processor and sink, as the writer user) into a real
// ClickHouse, and reads them back with `dmicctl audit` as the analyst.
func TestAudit(t *testing.T) {
	_, cfg := chstoretest.Database(t, "dmicctl_audit")
	analyst := chstoretest.Args(chstoretest.As(t, cfg, chaccess.Analyst))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	writer, err := chstoretest.As(t, cfg, chaccess.Writer).Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clk := clock.NewManual(now.Add(-3 * 24 * time.Hour))
	tr := &auditTrail{}
	validate := audit.New(tr, "validate", clk.Clock(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	ingest := audit.New(tr, "ingest", clk.Clock(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	op := &identity.Identity{Org: "0DC", Role: identity.Operator, Name: "Olive Operator", Method: identity.MTLS, Serial: "7c1d"}
	an := &identity.Identity{Org: "0DA", Role: identity.Analyst, Name: "Ann Analyst", Method: identity.MTLS, Serial: "9a2b"}
	rcf := &identity.Identity{Org: "RCF", Role: identity.Provider, Name: "RCF PAS", Method: identity.MTLS, Serial: "33"}
	pause := "/dmic.v1.ControlService/Pause"
	record := func(l *audit.Log, e audit.Entry) {
		t.Helper()
		if err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Three days ago: an operator pauses validate.
	record(validate, audit.Entry{ID: "p1", Protocol: "grpc", Action: pause, Outcome: audit.Allowed, Caller: op, Peer: "10.1.2.3:5"})
	record(validate, audit.Entry{ID: "p1", Protocol: "grpc", Action: pause, Outcome: audit.Done, Caller: op, Peer: "10.1.2.3:5"})
	// An hour ago: nobody, then an analyst, try; a provider sends another's
	// records (an NHS number in the provider code column).
	clk.Set(now.Add(-time.Hour))
	record(validate, audit.Entry{ID: "p2", Protocol: "grpc", Action: pause, Outcome: audit.Refused, Reason: "no-certificate",
		Detail: "not authenticated: present a client certificate", Peer: "10.9.9.9:1"})
	record(validate, audit.Entry{ID: "p3", Protocol: "grpc", Action: pause, Outcome: audit.Refused, Reason: "role",
		Detail: "analyst:0DA (Ann Analyst) may not call " + pause + ": it is for operator", Caller: an, Peer: "10.9.9.9:2"})
	record(ingest, audit.Entry{ID: "s1", Protocol: "http", Action: "POST /v1/submissions", Outcome: audit.Refused, Reason: "other-providers",
		Detail: `provider:RCF (RCF PAS) may submit only its own records: 1 record(s) name another provider: line 1 ("9434765919")`, Caller: rcf})

	var outs []pipeline.Output
	for range 2 { // every entry delivered twice
		for _, m := range tr.msgs {
			o, err := load.Processor{}.Process(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, o...)
		}
	}
	if err := (load.Sink{Store: chstore.NewWriter(writer, cfg.Database), Kafka: noKafka{}}).Write(ctx, outs); err != nil {
		t.Fatal(err)
	}

	show := func(t *testing.T, args ...string) (string, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := auditCommand(ctx, append(slices.Clone(analyst), args...), &out, &errOut, time.Minute, now)
		return out.String(), errOut.String(), code
	}
	header := regexp.MustCompile(`(?m)^TIME +SERVICE +OUTCOME +ACTION +CALLER +SERIAL +REASON +SUBJECT +PEER +DETAIL$`)
	analystRow := regexp.MustCompile(`(?m)^2026-11-22T11:00:00Z +validate +refused +/dmic\.v1\.ControlService/Pause +analyst:0DA \(Ann Analyst\) +9a2b +role +- +10\.9\.9\.9:2 +analyst:0DA`)
	anonymousRow := regexp.MustCompile(`(?m)^2026-11-22T11:00:00Z +validate +refused +/dmic\.v1\.ControlService/Pause +- +- +no-certificate +`)

	t.Run("the last day", func(t *testing.T) {
		out, errOut, code := show(t)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		t.Log("\n" + out)
		if !header.MatchString(out) || !analystRow.MatchString(out) || !anonymousRow.MatchString(out) {
			t.Errorf("want the header and the two refused pauses:\n%s", out)
		}
		if n := strings.Count(out, "\n"); n != 4 {
			t.Errorf("%d lines, want the header and 3 entries (each once):\n%s", n, out)
		}
		if strings.Contains(out, "9434765919") || !strings.Contains(out, `line 1 ("[redacted]")`) {
			t.Errorf("the NHS number is shown, or the refusal is missing:\n%s", out)
		}
		if strings.Contains(out, "allowed") {
			t.Errorf("the pause of three days ago is shown:\n%s", out)
		}
	})

	t.Run("filters", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want int // entries
			has  string
		}{
			{[]string{"-since", "7d"}, 5, "allowed"},
			{[]string{"-since", "0", "-org", "0dc"}, 2, "operator:0DC (Olive Operator)"},
			{[]string{"-since", "2026-11-01", "-outcome", "done"}, 1, "done"},
			{[]string{"-outcome", "refused", "-action", "submissions"}, 1, "POST /v1/submissions"},
			{[]string{"-since", "7d", "-limit", "2"}, 2, "refused"},
		} {
			out, errOut, code := show(t, tc.args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", tc.args, code, errOut)
			}
			if n := strings.Count(out, "\n") - 1; n != tc.want || !strings.Contains(out, tc.has) {
				t.Errorf("%v: %d entries, want %d with %q:\n%s", tc.args, n, tc.want, tc.has, out)
			}
		}
	})

	t.Run("nothing selected", func(t *testing.T) {
		out, _, code := show(t, "-org", "XXX", "-outcome", "failed")
		if want := "No audit entries failed, of XXX, since 2026-11-21T12:00:00Z.\n"; code != 0 || out != want {
			t.Errorf("exit %d, output %q, want %q", code, out, want)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"-outcome", "maybe"}, {"-since", "yesterday"}, {"-limit", "0"}, {"-since", "-1h"}, {"extra"}} {
			if _, errOut, code := show(t, args...); code != 2 || errOut == "" {
				t.Errorf("%v: exit %d, stderr %q; want 2 and a reason", args, code, errOut)
			}
		}
	})

	t.Run("dmicctl dispatches audit", func(t *testing.T) {
		if code := run(append([]string{"audit", "-since", "0"}, analyst...)); code != 0 {
			t.Errorf("dmicctl audit: exit %d, want 0", code)
		}
	})
}
