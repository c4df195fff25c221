package audit

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
)

// Messages that echo what a caller sent lose what looks like a patient
// identifier; the messages dmic makes of its own keep every word.
func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// ingest's refusal of another provider's records, with a CSV whose
		// columns are shifted: the provider code column holds NHS numbers,
		// postcodes and dates of birth.
		{`provider:RCF (Trust) may submit only its own records (provider code RCF or one of its sites, RCFNN): 3 record(s) name another provider: line 1 ("9434765919"), line 2 ("943 476 5919"), line 3 ("943-476-5919"). Nothing of this submission was stored`,
			`provider:RCF (Trust) may submit only its own records (provider code RCF or one of its sites, RCFNN): 3 record(s) name another provider: line 1 ("[redacted]"), line 2 ("[redacted]"), line 3 ("[redacted]"). Nothing of this submission was stored`},
		{`line 4 ("LS1 4AP"), line 5 ("sw1a1aa"), line 6 ("1980-01-02"), line 7 ("02/01/1980")`,
			`line 4 ("[redacted]"), line 5 ("[redacted]"), line 6 ("[redacted]"), line 7 ("[redacted]")`},
		{`submitter "NHS 94347659190" is not the organisation of your certificate`, `submitter "NHS [redacted]" is not the organisation of your certificate`},
		// Kept: organisation and site codes, methods, routes, HTTP and gRPC
		// codes, addresses, timestamps, certificate serials.
		{`analyst:0DC (Ann Analyst) may not call /dmic.v1.ControlService/Pause: it is for operator`, ""},
		{`provider:RCF (Trust) may submit only its own records (provider code RCF or one of its sites, RCFNN): 1 record(s) name another provider: line 2 ("RP4"), line 9 ("RP401")`, ""},
		{`not authenticated: x509: certificate has expired or is not yet valid: current time 2026-11-22T12:00:00Z is after 2026-11-21T12:00:00Z`, ""},
		{`submission 2e75b9ccf53e40f3 not fully stored: dial tcp 10.1.2.3:9092: connection refused`, ""},
		{`Forbidden`, ""},
	} {
		want := tc.want
		if want == "" {
			want = tc.in
		}
		if got := Redact(tc.in); got != want {
			t.Errorf("Redact(%q)\n = %q\nwant %q", tc.in, got, want)
		}
	}
}

type published struct{ values [][]byte }

func (p *published) Publish(_ context.Context, _ string, v []byte, _ ...pipeline.Header) error {
	p.values = append(p.values, v)
	return nil
}

// What reaches the topic is redacted, and bounded whole.
func TestEntryDetailIsRedacted(t *testing.T) {
	pub := &published{}
	l := New(pub, "ingest", clock.Fixed(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	long := strings.Repeat("line 1 (\"9434765919\"), ", 100)
	if err := l.Record(context.Background(), Entry{Action: "POST /v1/submissions", Outcome: Refused, Detail: long}); err != nil {
		t.Fatal(err)
	}
	got := string(pub.values[0])
	if strings.Contains(got, "943476") {
		t.Errorf("an NHS number reached the trail: %s", got)
	}
	if !strings.Contains(got, Redacted) {
		t.Errorf("nothing redacted: %s", got)
	}
}
