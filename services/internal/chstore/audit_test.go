package chstore

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// AuditEntries are a refusal, an allowed pause and its end, and a refused
// submission whose detail holds an NHS number (as an entry written before
// the trail redacted could).
func auditEntries(at time.Time) []AuditRow {
	op := &identity.Identity{Org: "0DC", Role: identity.Operator, Name: "Olive Operator", Method: identity.MTLS, Serial: "7c1d"}
	an := &identity.Identity{Org: "0DA", Role: identity.Analyst, Name: "Ann Analyst", Method: identity.MTLS, Serial: "9a2b"}
	pv := &identity.Identity{Org: "RCF", Role: identity.Provider, Name: "RCF PAS", Method: identity.MTLS, Serial: "33"}
	return []AuditRow{
		{Offset: 0, Entry: audit.Entry{ID: "a1", Time: at, Service: "validate", Protocol: "grpc", Action: "/dmic.v1.ControlService/Pause",
			Outcome: audit.Refused, Reason: "role", Detail: "analyst:0DA (Ann Analyst) may not call /dmic.v1.ControlService/Pause: it is for operator", Caller: an, Peer: "127.0.0.1:5"}},
		{Offset: 1, Entry: audit.Entry{ID: "a2", Time: at.Add(time.Second), Service: "validate", Protocol: "grpc", Action: "/dmic.v1.ControlService/Pause",
			Outcome: audit.Allowed, Caller: op, Peer: "127.0.0.1:6"}},
		{Offset: 2, Entry: audit.Entry{ID: "a2", Time: at.Add(2 * time.Second), Service: "validate", Protocol: "grpc", Action: "/dmic.v1.ControlService/Pause",
			Outcome: audit.Done, Caller: op, Peer: "127.0.0.1:6"}},
		{Offset: 3, Entry: audit.Entry{ID: "a3", Time: at.Add(3 * time.Second), Service: "ingest", Protocol: "http", Action: "POST /v1/submissions",
			Outcome: audit.Refused, Reason: "other-providers", Detail: `line 1 ("9434765919")`, Caller: pv}},
		{Offset: 4, Entry: audit.Entry{ID: "a4", Time: at.Add(4 * time.Second), Service: "ingest", Protocol: "grpc", Action: "/dmic.v1.IngestService/SubmitRecords",
			Outcome: audit.Refused, Reason: "no-certificate", Detail: "not authenticated"}},
	}
}

// The audit table, written as load writes it (the writer user): every
// entry once however often it is delivered, the allowed and done entries of
// one call both, no NHS number, and ReadAudit's filters.
func TestAuditTable(t *testing.T) {
	srv := chservertest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	migrator, err := Open(ctx, testConfig(t, srv, chaccess.Migrator, DefaultDatabase))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { migrator.Close() })
	db := "dmic_audit_" + time.Now().Format("150405")
	if err := ApplySchema(ctx, migrator, db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = migrator.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	wconn, err := Open(ctx, testConfig(t, srv, chaccess.Writer, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wconn.Close() })
	if err := CheckSchema(ctx, wconn, db); err != nil {
		t.Fatalf("load's schema check: %v", err)
	}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	w := NewWriter(wconn, db)
	entries := auditEntries(at)
	// Delivered twice: a batch written again after a lost acknowledgement.
	for range 2 {
		if err := w.WriteAudit(ctx, entries); err != nil {
			t.Fatal(err)
		}
	}
	read := func(t *testing.T, f AuditFilter) []AuditRecord {
		t.Helper()
		rs, err := ReadAudit(ctx, migrator, db, f)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	all := read(t, AuditFilter{})
	var ids []string
	for _, r := range all {
		ids = append(ids, r.ID+"/"+r.Outcome)
	}
	if got, want := strings.Join(ids, " "), "a4/refused a3/refused a2/done a2/allowed a1/refused"; got != want {
		t.Errorf("entries, newest first: %s, want %s", got, want)
	}
	if r := all[len(all)-1]; r.CallerOrg != "0DA" || r.CallerRole != "analyst" || r.CallerName != "Ann Analyst" || r.CallerSerial != "9a2b" ||
		r.Reason != "role" || r.Service != "validate" || !r.Time.Equal(at) || r.Peer != "127.0.0.1:5" {
		t.Errorf("the analyst's refusal reads back as %+v", r)
	}
	if r := all[0]; r.CallerOrg != "" || r.CallerRole != "" {
		t.Errorf("an anonymous refusal names a caller: %+v", r)
	}
	if n := count(t, migrator, "SELECT count() FROM "+db+".audit WHERE position(detail, '9434765919') > 0"); n != 0 {
		t.Errorf("%d rows hold the NHS number", n)
	}
	if got := all[1].Detail; got != `line 1 ("[redacted]")` {
		t.Errorf("detail %q, want the NHS number redacted", got)
	}

	// What docs/analytics.md tells analysts to run does run.
	for _, q := range docQueries(t, "## The audit table") {
		rows, err := migrator.Query(ctx, strings.ReplaceAll(q, "dmic.", db+"."))
		if err != nil {
			t.Errorf("%s\n=> %v", q, err)
			continue
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s\n=> %v", q, err)
		}
		rows.Close()
	}

	for _, tc := range []struct {
		name string
		f    AuditFilter
		want int
	}{
		{"refused", AuditFilter{Outcome: audit.Refused}, 3},
		{"an organisation", AuditFilter{Org: "0DC"}, 2},
		{"an action", AuditFilter{Action: "Pause"}, 3},
		{"since", AuditFilter{Since: at.Add(2 * time.Second)}, 3},
		{"limit", AuditFilter{Limit: 2}, 2},
		{"nothing", AuditFilter{Org: "XXX"}, 0},
	} {
		if got := read(t, tc.f); len(got) != tc.want {
			t.Errorf("%s: %d entries, want %d: %+v", tc.name, len(got), tc.want, got)
		}
	}
}

// docQueries are the SQL examples of a section of docs/analytics.md.
func docQueries(t *testing.T, heading string) []string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(doc), heading)
	if start < 0 {
		t.Fatalf("docs/analytics.md has no section %q", heading)
	}
	section := string(doc)[start+len(heading):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatalf("no SQL example in %q", heading)
	}
	return out
}
