package validate_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validate/spec"
	"github.com/dmic-nhs/dmic/services/validate/spec/spectest"
)

// apcVersion is the built-in apc document as a new version: effective from
// the given day, with gender codes (CODE-003) made an error.
func apcVersion(t *testing.T, version, effective string) []byte {
	t.Helper()
	return spectest.Version(t, "apc", version, effective, func(doc map[string]any) {
		for _, r := range doc["rules"].([]any) {
			if rule := r.(map[string]any); rule["id"] == "CODE-003" {
				rule["severity"] = "error"
			}
		}
	})
}

// instance is one validate process: its validator, following the log.
type instance struct {
	v     *spec.Validator
	specs *validate.Specifications
	stage *validate.Stage
}

// startInstance starts validate's specification service, connected as
// validate's principal.
func startInstance(t *testing.T, ctx context.Context, b *broker.Broker, clk clock.Clock) *instance {
	t.Helper()
	reg, err := spec.BuiltIn()
	if err != nil {
		t.Fatal(err)
	}
	v := spec.New(reg, spec.WithClock(clk))
	c := brokertest.As(t, b, validate.Access().Principal)
	w := kafkapipe.NewWriter(c)
	t.Cleanup(func() { w.Close() })
	specs := validate.NewSpecifications(v, kafkalog.New(c, topics.Specifications, w), slog.New(slog.NewTextHandler(io.Discard, nil)))
	caught := make(chan struct{})
	go func() { _ = specs.Follow(ctx, func() { close(caught) }) }()
	select {
	case <-caught:
	case <-time.After(20 * time.Second):
		t.Fatal("specification log not replayed within 20s")
	}
	return &instance{v: v, specs: specs, stage: validate.New(v)}
}

// verdict validates the apc example with gender code 7, received on day.
func (in *instance) verdict(t *testing.T, day time.Time) *validationv1.ValidationOutcome {
	t.Helper()
	raw := envelope.Raw{Dataset: dmicv1.Dataset_DATASET_APC, Submitter: "RJ7", SubmissionID: "sub-1", Received: day, Line: 1}
	m := message(apcRecord(`"person_gender_code":"7"`), raw.Headers())
	m.Time = day // received by ingest on day
	outs, err := in.stage.Process(context.Background(), m)
	if rej, ok := err.(*pipeline.Rejection); ok {
		outs = rej.Also
	} else if err != nil {
		t.Fatal(err)
	}
	return verdictOf(t, outs)
}

// TestSpecificationLoadedAtRunTime loads a new version through the gRPC
// service, without a restart: it applies to records received from its
// effective date, reaches another instance through the log, and survives a
// restart. Every date is relative to the suite's today, on one clock per
// instance: what is "in effect" and which version judges a record are read
// from the same clock, so moving it moves both.
func TestSpecificationLoadedAtRunTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := topicstest.Broker(t, 3)
	// The new version takes effect nine days after today (in England's
	// calendar); before is the day before that.
	clk := clocktest.Manual(t)
	today := clk.Now()
	effective := clocktest.Date(today.AddDate(0, 0, 9))
	after, err := time.ParseInLocation(time.DateOnly, effective, london(t))
	if err != nil {
		t.Fatal(err)
	}
	after = after.Add(12 * time.Hour)
	before := after.AddDate(0, 0, -1)
	a := startInstance(t, ctx, brokers, clk.Clock())
	other := startInstance(t, ctx, brokers, clk.Clock())

	if v := a.verdict(t, after); v.Outcome != validationv1.Outcome_OUTCOME_WARNED || v.Header.GetSpecVersion() != "apc/2026.1" {
		t.Fatalf("before loading: %v, want a CODE-003 warning under apc/2026.1", v)
	}
	doc := apcVersion(t, "2026.2", effective)
	resp, err := a.specs.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{Document: doc})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !resp.Created || resp.Summary.GetId() != "apc" || resp.Summary.GetVersion() != "2026.2" || resp.Summary.GetInEffect() ||
		resp.Summary.GetOrigin() != "loaded" || resp.Summary.GetEffectiveFrom() != effective ||
		!resp.Summary.GetLoadedTime().AsTime().Equal(today) {
		t.Errorf("load answer = %v, want created apc 2026.2, loaded %s, effective %s, not yet in effect", resp, today, effective)
	}
	for _, tc := range []struct {
		day     time.Time
		outcome validationv1.Outcome
		sp      string
	}{
		{before, validationv1.Outcome_OUTCOME_WARNED, "apc/2026.1"},
		{after, validationv1.Outcome_OUTCOME_REJECTED, "apc/2026.2"},
	} {
		if v := a.verdict(t, tc.day); v.Outcome != tc.outcome || v.Header.GetSpecVersion() != tc.sp {
			t.Errorf("received %s: %v under %s, want %v under %s", tc.day.Format(time.DateOnly), v.Outcome,
				v.Header.GetSpecVersion(), tc.outcome, tc.sp)
		}
	}

	// The other instance gets it from the log, without a call of its own.
	deadline := time.Now().Add(20 * time.Second)
	for other.verdict(t, after).Header.GetSpecVersion() != "apc/2026.2" {
		if time.Now().After(deadline) {
			t.Fatal("the other instance did not apply the loaded version within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Loading it again is a no-op; the same version with other content is refused.
	again, err := a.specs.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{Document: doc})
	if err != nil || again.Created {
		t.Errorf("second load: %v, %v; want no error and not created", again, err)
	}
	changed := []byte(strings.Replace(string(doc), effective, clocktest.Date(after.AddDate(0, 0, 1)), 1))
	if _, err := a.specs.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{Document: changed}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("same version, other content: %v, want InvalidArgument", err)
	}
	// A broken document is refused with every problem at once, and never logged.
	broken := []byte(`{"id":"apc","version":"","effective_from":"soon","source":"provider","datasets":["apc"],` +
		`"rules":[{"id":"X-1","severity":"fatal","check":"no_such_check","fields":["no_such_field"],"message":"m"}]}`)
	_, err = a.specs.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{Document: broken})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("broken document: %v, want InvalidArgument", err)
	}
	for _, want := range []string{"version", "effective_from", "fatal", "no_such_check"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %s", err, want)
		}
	}

	// A restart replays the log: the loaded version is there.
	restarted := startInstance(t, ctx, brokers, clk.Clock())
	list, err := restarted.specs.ListSpecifications(ctx, &validationv1.ListSpecificationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	inEffect := map[string]bool{}
	for _, s := range list.Specifications {
		inEffect[s.Id+"/"+s.Version] = s.InEffect
	}
	if e, ok := inEffect["apc/2026.2"]; !ok || e {
		t.Errorf("after restart: apc/2026.2 listed %v, in effect %v; want listed, not yet in effect (%v)", ok, e, inEffect)
	}
	if !inEffect["apc/2026.1"] || len(inEffect) != 6 {
		t.Errorf("after restart: %v, want the five built-in specifications plus apc/2026.2, apc/2026.1 in effect", inEffect)
	}
	got, err := restarted.specs.GetSpecification(ctx, &validationv1.GetSpecificationRequest{Id: "apc", Version: "2026.2"})
	if err != nil || string(got.Document) != string(doc) {
		t.Errorf("get apc 2026.2 after restart: %v; document equal %v", err, got != nil && string(got.Document) == string(doc))
	}
	if v := restarted.verdict(t, after); v.Header.GetSpecVersion() != "apc/2026.2" {
		t.Errorf("after restart, received %s: spec %s, want apc/2026.2", after.Format(time.DateOnly), v.Header.GetSpecVersion())
	}

	// The calendar reaches the effective date: one clock moves every
	// decision of every instance. The listing, the unversioned lookup and
	// the judged time all follow it.
	clk.Set(after)
	list, err = restarted.specs.ListSpecifications(ctx, &validationv1.ListSpecificationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Specifications {
		inEffect[s.Id+"/"+s.Version] = s.InEffect
	}
	if !inEffect["apc/2026.2"] || inEffect["apc/2026.1"] {
		t.Errorf("on %s: %v, want apc/2026.2 in effect and apc/2026.1 not", effective, inEffect)
	}
	current, err := other.specs.GetSpecification(ctx, &validationv1.GetSpecificationRequest{Id: "apc"})
	if err != nil || current.GetSummary().GetVersion() != "2026.2" {
		t.Errorf("apc in effect on %s: %v, %v; want 2026.2", effective, current.GetSummary(), err)
	}
	if v := other.verdict(t, after); !v.GetValidatedTime().AsTime().Equal(after) {
		t.Errorf("judged at %v, want the clock's %v", v.GetValidatedTime().AsTime(), after)
	}
}

// london is the calendar specification dates are read in.
func london(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no tzdata for Europe/London")
	}
	return loc
}
