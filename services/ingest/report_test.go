package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// TestReportsOverHTTPAndGRPC serves a report from a real ClickHouse the way
// ingest does, over both transports, and checks they agree.
func TestReportsOverHTTPAndGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, cfg := chstoretest.Database(t, "dmic_ingest_reports")
	const sub = "sub-20261122-abc"
	nhs := dqreporttest.Failure("NHS-002", "nhs_number", dmicv1.Severity_SEVERITY_ERROR)
	w := chstore.NewWriter(conn, cfg.Database)
	if err := w.WriteReceipts(ctx, []*validationv1.SubmissionReceipt{dqreporttest.Receipt(sub, 3, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteOutcomes(ctx, []*validationv1.ValidationOutcome{
		dqreporttest.Outcome(sub, 1, validationv1.Outcome_OUTCOME_ACCEPTED),
		dqreporttest.Outcome(sub, 2, validationv1.Outcome_OUTCOME_REJECTED, nhs),
	}); err != nil {
		t.Fatal(err)
	}

	src := chstore.NewReports(chstoretest.As(t, cfg, chaccess.Reader)) // as ingest reads them
	defer src.Close()
	reports := ingest.NewReports(src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Served as ingest serves it: TLS, behind the authorisation layer,
	// which audits on the broker's dmic.audit.
	pki := devpkitest.New(t, clocktest.Today(t))
	g, _ := pki.Guard(brokertest.As(t, topicstest.Broker(t, 1), ingest.Access().Principal), clocktest.Clock(t))
	mux := access.NewMux()
	reports.RegisterHTTP(mux)
	url := pki.ServeHTTP(g, mux)
	// The submitter reads its report.
	rr8 := pki.HTTPClient(pki.Client(identity.Provider, "RR8", "RR8 EPR"))

	getAs := func(client *http.Client, path string) (int, string) {
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get := func(path string) (int, string) { return getAs(rr8, path) }
	code, body := get("/v1/submissions/" + sub)
	if code != http.StatusOK {
		t.Fatalf("GET report: %d %s", code, body)
	}
	overHTTP := &validationv1.SubmissionReport{}
	if err := protojson.Unmarshal([]byte(body), overHTTP); err != nil {
		t.Fatal(err)
	}
	if overHTTP.Records != 3 || overHTTP.Validated != 2 || overHTTP.Complete || overHTTP.Accepted != 1 || overHTTP.Rejected != 1 ||
		len(overHTTP.Rules) != 1 || overHTTP.Rules[0].RuleId != "NHS-002" || len(overHTTP.FailingRecords) != 1 ||
		overHTTP.FailingRecords[0].LineNumber != 2 {
		t.Errorf("report = %v, want 2 of 3 judged (1 accepted, 1 rejected by NHS-002 on line 2), not complete", overHTTP)
	}

	if code, text := get("/v1/submissions/" + sub + "?format=text"); code != http.StatusOK || !strings.Contains(text, "NHS-002") ||
		!strings.Contains(text, sub) {
		t.Errorf("GET text report: %d\n%s", code, text)
	}
	for path, want := range map[string]int{
		"/v1/submissions/" + sub + "?format=xml": http.StatusBadRequest,
		"/v1/submissions/sub-nothing-here":       http.StatusNotFound,
		"/v1/submissions/bad%20id":               http.StatusBadRequest,
		"/v1/submissions/" + sub + "?limit=0":    http.StatusBadRequest,
		"/v1/submissions/" + sub + "?limit=x":    http.StatusBadRequest,
	} {
		if code, body := get(path); code != want || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: %d %s, want %d with an error", path, code, body, want)
		}
	}
	// A parameter the endpoint does not take is refused, not ignored, with
	// the name it most likely meant; so is one given twice.
	for query, want := range map[string][]string{
		"limt=5":           {`\"limt\" is not known`, `did you mean limit?`, "known: limit, format"},
		"limit=5&limit=50": {`\"limit\" is given 2 times`},
	} {
		code, body := get("/v1/submissions/" + sub + "?" + query)
		if code != http.StatusBadRequest {
			t.Errorf("GET ?%s: %d %s, want 400", query, code, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET ?%s: %s does not say %s", query, body, w)
			}
		}
	}

	// Another provider may not read it, nor may anyone without a
	// certificate; an operator may.
	for _, c := range []struct {
		client *http.Client
		code   int
		text   string
	}{
		{pki.HTTPClient(pki.Client(identity.Provider, "RCF", "RCF EPR")), http.StatusForbidden, "reports of its own submissions only"},
		{pki.HTTPClient(nil), http.StatusUnauthorized, "no credentials"},
		{pki.HTTPClient(pki.Client(identity.Analyst, "0DC", "an analyst")), http.StatusForbidden, "it is for provider, national, operator"},
		{pki.HTTPClient(pki.Client(identity.Operator, "0DC", "an operator")), http.StatusOK, sub},
	} {
		if code, body := getAs(c.client, "/v1/submissions/"+sub); code != c.code || !strings.Contains(body, c.text) {
			t.Errorf("GET report: %d %s, want %d saying %q", code, body, c.code, c.text)
		}
	}

	// gRPC gives the same report.
	addr := pki.ServeGRPC(g, func(gs *grpc.Server) { validationv1.RegisterSubmissionReportServiceServer(gs, reports) })
	cc, err := grpc.NewClient(addr, pki.DialOption(pki.Client(identity.Provider, "RR8", "RR8 EPR")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := validationv1.NewSubmissionReportServiceClient(cc)
	resp, err := client.GetSubmissionReport(ctx, &validationv1.GetSubmissionReportRequest{SubmissionId: sub})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(resp.GetReport(), overHTTP) {
		t.Errorf("gRPC report %v differs from HTTP report %v", resp.GetReport(), overHTTP)
	}
	_, err = client.GetSubmissionReport(ctx, &validationv1.GetSubmissionReportRequest{SubmissionId: "sub-unknown"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown submission over gRPC: %v, want NotFound", err)
	}
}

func TestReportsUnavailableWithoutClickHouse(t *testing.T) {
	// Nothing listens on this port: the report cannot be read, and says so.
	src := chstore.NewReports(chstore.Config{Addr: "127.0.0.1:1", Database: "dmic"})
	reports := ingest.NewReports(src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err := reports.GetSubmissionReport(context.Background(), &validationv1.GetSubmissionReportRequest{SubmissionId: "sub-1"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("report without ClickHouse: %v, want Unavailable", err)
	}
}
