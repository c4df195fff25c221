package chstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/dqreport/dqreporttest"
)

// testServer connects to a real ClickHouse (chservertest.Server) and returns a
// function that makes a fresh database with the schema applied, dropped when
// the (sub)test ends.
func testServer(t *testing.T) (context.Context, driver.Conn, func(t *testing.T) (string, *Writer)) {
	t.Helper()
	srv := chservertest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	conn, err := Open(ctx, testConfig(t, srv, chaccess.Migrator, DefaultDatabase))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	n := 0
	fresh := func(t *testing.T) (string, *Writer) {
		t.Helper()
		n++
		db := fmt.Sprintf("dmic_test_%d_%d", time.Now().UnixNano()%1e6, n)
		if err := ApplySchema(ctx, conn, db); err != nil {
			t.Fatalf("ApplySchema: %v", err)
		}
		t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
		return db, NewWriter(conn, db)
	}
	return ctx, conn, fresh
}

// writeCase stores a suite case: each receipt and each batch as one insert.
func writeCase(ctx context.Context, t *testing.T, w *Writer, c dqreporttest.Case) {
	t.Helper()
	for _, r := range c.Receipts {
		if err := w.WriteReceipts(ctx, []*validationv1.SubmissionReceipt{r}); err != nil {
			t.Fatalf("WriteReceipts: %v", err)
		}
	}
	for _, b := range c.Batches {
		if err := w.WriteOutcomes(ctx, b); err != nil {
			t.Fatalf("WriteOutcomes: %v", err)
		}
	}
}

// TestReportConformance runs the conformance suite through ClickHouse and
// through dqreport.Builder: the online report and the offline checker's must
// be the same report, and the one the suite expects. All cases share one
// database (each is its own submission), as submissions share the table in
// production; it is read before and after a forced merge, since FINAL and a
// merged part must agree.
func TestReportConformance(t *testing.T) {
	ctx, conn, fresh := testServer(t)
	db, w := fresh(t)
	cases := dqreporttest.Cases()
	for _, c := range cases {
		writeCase(ctx, t, w, c)
	}
	check := func(t *testing.T, c dqreporttest.Case) {
		got, found, err := SubmissionReport(ctx, conn, db, c.SubmissionID, c.Limit)
		if err != nil {
			t.Fatalf("SubmissionReport: %v", err)
		}
		if !found {
			t.Fatalf("SubmissionReport: not found")
		}
		built := c.Build()
		if !proto.Equal(got, built) {
			t.Errorf("ClickHouse report:\n%s\nBuilder report:\n%s", prototext.Format(got), prototext.Format(built))
		}
		if !proto.Equal(got, c.Want) {
			t.Errorf("ClickHouse report:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(c.Want))
		}
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { check(t, c) })
	}
	for _, table := range []string{TableOutcomes, TableSubmissions} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+"."+table+" FINAL"); err != nil {
			t.Fatalf("OPTIMIZE %s: %v", table, err)
		}
	}
	for _, c := range cases {
		t.Run(c.Name+" after merges", func(t *testing.T) { check(t, c) })
	}
}
