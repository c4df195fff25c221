package load_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/dmic-nhs/dmic/proto/dmic/access/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
	"github.com/dmic-nhs/dmic/services/load/dsa"
)

// memLog is a control log in memory.
type memLog struct {
	mu      sync.Mutex
	entries []controllog.Entry
}

func (l *memLog) Publish(_ context.Context, _ string, value []byte, hs ...pipeline.Header) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, controllog.Entry{Offset: int64(len(l.entries)), Value: value, Headers: hs})
	return nil
}

func (l *memLog) FollowEntries(ctx context.Context, apply func(controllog.Entry), caughtUp func()) error {
	l.mu.Lock()
	es := slices.Clone(l.entries)
	l.mu.Unlock()
	for _, e := range es {
		apply(e)
	}
	caughtUp()
	<-ctx.Done()
	return nil
}

func agreementDoc(t *testing.T, id, ods string, commissioners, columns []string, start, expiry string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id": id, "version": "1", "recipient": map[string]any{"ods_code": ods, "name": ods + " ICB"},
		"purpose": "commissioning", "legal_basis": map[string]any{"text": "s.254 direction", "reference": "DARS-TEST"},
		"datasets": []string{"apc", "outpatient"}, "columns": columns,
		"row_scope":       map[string]any{"commissioner_codes": commissioners},
		"activity_period": map[string]any{"from": "2025-04-01", "to": "2027-03-31"},
		"start_date":      start, "expiry_date": expiry, "on_end": "drop",
		"pseudonym_domain":       map[string]any{"kind": "recipient"},
		"small_number_threshold": 5,
		"approvers":              []any{map[string]any{"name": "IG lead", "role": "IG", "date": "2026-01-01"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func activityRecord(key string, version uint64, dataset dmicv1.Dataset, patient, commissioner string) *dmicv1.DeidentifiedRecord {
	a := &dmicv1.DeidentifiedActivity{CdsUniqueIdentifier: key, ProviderCode: "RHQ", ActivityDate: "2026-01-05",
		PseudoNhsNumber: patient, PseudonymKeyVersion: "v1", PseudonymDomain: "analytics"}
	if dataset == dmicv1.Dataset_DATASET_APC {
		a.Activity = &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{HrgCode: "EB10A"}}
	} else {
		a.Activity = &dmicv1.DeidentifiedActivity_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{HrgCode: "WF01A"}}
	}
	return &dmicv1.DeidentifiedRecord{
		Header:     &dmicv1.EnvelopeHeader{RecordKey: "RHQ|" + key, Dataset: dataset, Source: dmicv1.Source_SOURCE_PROVIDER, Version: version},
		MatchKey:   "m|" + key,
		Activity:   a,
		Assignment: &dmicv1.Assignment{CommissionerCode: commissioner},
	}
}

// recipientConn logs in as a recipient with the password load generated.
func recipientConn(t *testing.T, addr, secrets, user string) driver.Conn {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(secrets, user))
	if err != nil {
		t.Fatalf("password of %s: %v", user, err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr},
		Auth: clickhouse.Auth{Database: user, Username: user, Password: strings.TrimSpace(string(pw))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// eventually retries f until it returns nil (ClickHouse reloads users.d
// within seconds), failing after a minute.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func rowsOf(ctx context.Context, conn driver.Conn, q string) ([][2]string, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return nil, err
		}
		out = append(out, [2]string{a, b})
	}
	return out, rows.Err()
}

// An agreement becomes access through a real ClickHouse, and access goes
// when it ends: rows of A's commissioners only, A's own pseudonyms, only the
// allowed columns, re-assignment moves a record from A to B, A's queries are
// audited, and revocation and expiry take effect without a restart.
func TestAgreementsBecomeAccess(t *testing.T) {
	srv := chservertest.Start(t, chserver.Options{Databases: []string{"dmic_dsa"}})
	if srv.UsersDir == "" {
		t.Skip("needs a ClickHouse started here (its users.d)")
	}
	base := "dmic_dsa"
	cfg := chstoretest.Config(t, srv, chaccess.Migrator, base)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	conn, err := cfg.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := chstore.ApplySchema(ctx, conn, base); err != nil {
		t.Fatal(err)
	}
	today := clocktest.Today(t)
	clk := clock.NewManual(today)
	lg := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	keys, err := load.NewRecipientKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	secrets := t.TempDir()
	ag := load.NewAgreements(&memLog{}, keys, clk.Clock(), base, lg)
	rec := load.NewRecipients(load.RecipientsConfig{Base: base, UsersDir: srv.UsersDir, SecretsDir: secrets,
		ClientHost: "127.0.0.1", ClientPort: "9000", Networks: chaccess.Loopback()}, ag, keys, conn, clk.Clock(), nil, lg)

	start, expiryA, expiryB := dsa.Day(today.AddDate(0, 0, -30)), dsa.Day(today.AddDate(0, 1, 0)), dsa.Day(today.AddDate(0, 0, 5))
	docA := agreementDoc(t, "dsa-a", "QF7", []string{"02P", "02X"}, []string{"pseudo_nhs_number", "hrg_code"}, start, expiryA)
	docB := agreementDoc(t, "dsa-b", "QHM", []string{"00L"}, []string{"pseudo_nhs_number", "provider_code"}, start, expiryB)

	// No key yet: refused, naming what the key custodian must do.
	_, err = ag.LoadAgreement(ctx, &accessv1.LoadAgreementRequest{Document: docA})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "dmicctl dsa key recipient-qf7") {
		t.Fatalf("load without a key: %v", err)
	}
	for _, d := range []string{"recipient-qf7", "recipient-qhm"} {
		if _, err := ag.CreatePseudonymKey(ctx, &accessv1.CreatePseudonymKeyRequest{Domain: d, Version: "v1"}); err != nil {
			t.Fatal(err)
		}
	}
	// A malformed agreement is refused with every problem and its path.
	_, err = ag.LoadAgreement(ctx, &accessv1.LoadAgreementRequest{Document: []byte(`{"id":"dsa-x","datasets":["apc","x"],"columns":["nhs_number"]}`)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "$.version: required") ||
		!strings.Contains(err.Error(), `$.datasets[1]: unknown data set "x"`) || !strings.Contains(err.Error(), `$.columns[0]: "nhs_number"`) {
		t.Fatalf("malformed agreement: %v", err)
	}
	for _, d := range [][]byte{docA, docB} {
		if r, err := ag.LoadAgreement(ctx, &accessv1.LoadAgreementRequest{Document: d}); err != nil || r.GetSummary().GetState() != dsa.Active {
			t.Fatalf("load: %v %v", r, err)
		}
	}
	if err := rec.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	dbA, dbB := base+"_r_dsa_a", base+"_r_dsa_b"

	// Records assigned to both: patient P has activity with A (apc and
	// outpatient) and with B; patient Q with B only.
	p, q := strings.Repeat("a", 64), strings.Repeat("b", 64)
	sink := load.Sink{Store: chstore.NewWriter(conn, base), Recipients: rec}
	write := func(recs ...*dmicv1.DeidentifiedRecord) {
		t.Helper()
		var rows []load.Row
		for _, r := range recs {
			rows = append(rows, decoded(t, topics.Assigned, r))
		}
		if err := sink.WriteRows(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	write(activityRecord("1", 10, dmicv1.Dataset_DATASET_APC, p, "02P"),
		activityRecord("2", 10, dmicv1.Dataset_DATASET_OUTPATIENT, p, "02X"),
		activityRecord("3", 10, dmicv1.Dataset_DATASET_APC, p, "00L"),
		activityRecord("4", 10, dmicv1.Dataset_DATASET_APC, q, "00L"),
		activityRecord("5", 10, dmicv1.Dataset_DATASET_APC, q, "99X"))

	connA := recipientConn(t, srv.Addr, secrets, dbA)
	connB := recipientConn(t, srv.Addr, secrets, dbB)
	const sel = "SELECT commissioner_code, pseudo_nhs_number FROM activity ORDER BY commissioner_code"
	var gotA, gotB [][2]string
	eventually(t, "A logs in and reads", func() error { gotA, err = rowsOf(ctx, connA, sel); return err })
	eventually(t, "B logs in and reads", func() error { gotB, err = rowsOf(ctx, connB, sel); return err })
	if len(gotA) != 2 || gotA[0][0] != "02P" || gotA[1][0] != "02X" {
		t.Errorf("A sees %v, want its commissioners' two rows (02P, 02X)", gotA)
	}
	if len(gotB) != 2 || gotB[0][0] != "00L" || gotB[1][0] != "00L" {
		t.Errorf("B sees %v, want its two 00L rows", gotB)
	}
	// Per-recipient pseudonyms: the same across A's data sets, another in B's,
	// and neither is the analytics pseudonym.
	if len(gotA) == 2 && len(gotB) == 2 {
		pA := gotA[0][1]
		if gotA[1][1] != pA {
			t.Errorf("A's pseudonym of one patient differs across data sets: %s, %s", pA, gotA[1][1])
		}
		if pA == p || slices.ContainsFunc(gotB, func(r [2]string) bool { return r[1] == pA || r[1] == p || r[1] == q }) {
			t.Errorf("pseudonyms linkable: A %v, B %v", gotA, gotB)
		}
	}
	// A column the agreement does not allow cannot be read; nor B's data, nor dmic's.
	for _, forbidden := range []string{
		"SELECT provider_code FROM activity",
		"SELECT cds_unique_identifier FROM activity_rows",
		"SELECT count() FROM " + dbB + ".activity",
		"SELECT count() FROM " + base + ".activity",
		"SELECT count() FROM " + base + ".activity_current",
	} {
		if _, err := rowsOf(ctx, connA, forbidden); err == nil {
			t.Errorf("A ran %q", forbidden)
		}
	}
	if _, err := rowsOf(ctx, connB, "SELECT commissioner_code, provider_code FROM activity"); err != nil {
		t.Errorf("B cannot read a column its agreement allows: %v", err)
	}
	// Suppression: the aggregate view applies k = 5 (every cell here is small).
	var released []*int64
	if rows, err := connA.Query(ctx, "SELECT released_records FROM activity_summary"); err != nil {
		t.Errorf("A's summary: %v", err)
	} else {
		for rows.Next() {
			var v *int64
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			released = append(released, v)
		}
		rows.Close()
		if len(released) != 2 || released[0] != nil || released[1] != nil {
			t.Errorf("A's summary released %v, want two suppressed cells", released)
		}
	}

	// Re-assignment: record 1 moves from A's 02P to B's 00L.
	write(activityRecord("1", 11, dmicv1.Dataset_DATASET_APC, p, "00L"))
	if gotA, err = rowsOf(ctx, connA, sel); err != nil || len(gotA) != 1 || gotA[0][0] != "02X" {
		t.Errorf("after re-assignment A sees %v (%v), want only 02X", gotA, err)
	}
	if gotB, err = rowsOf(ctx, connB, sel); err != nil || len(gotB) != 3 {
		t.Errorf("after re-assignment B sees %v (%v), want 3 rows", gotB, err)
	}
	// A delete reaches recipient data.
	del := activityRecord("2", 12, dmicv1.Dataset_DATASET_OUTPATIENT, p, "02X")
	del.Activity.UpdateType = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	write(del)
	if gotA, err = rowsOf(ctx, connA, sel); err != nil || len(gotA) != 0 {
		t.Errorf("after delete A sees %v (%v), want nothing", gotA, err)
	}

	// A's queries appear in the access report.
	eventually(t, "A's queries in the access report", func() error {
		r, err := ag.AccessReport(ctx, &accessv1.AccessReportRequest{})
		if err != nil {
			return err
		}
		for _, ra := range r.GetRecipients() {
			if ra.GetUser() == dbA && ra.GetQueries() >= 3 && ra.GetFailedQueries() >= 1 && ra.GetLastAccess() != nil &&
				ra.GetAgreementId() == "dsa-a" && ra.GetState() == dsa.Active {
				return nil
			}
		}
		return status.Errorf(codes.NotFound, "report: %v", r.GetRecipients())
	})

	// Revocation: A's queries fail, without a restart; B's go on.
	if _, err := ag.RevokeAgreement(ctx, &accessv1.RevokeAgreementRequest{Id: "dsa-a", Reason: "DSA breach"}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A refused after revocation", func() error {
		if _, err := rowsOf(ctx, connA, sel); err == nil {
			return status.Error(codes.Unknown, "A still reads")
		}
		return nil
	})
	if _, err := rowsOf(ctx, connB, sel); err != nil {
		t.Errorf("B refused after A's revocation: %v", err)
	}
	// Expiry: the clock passes B's expiry date; B's queries fail.
	clk.Set(today.AddDate(0, 0, 6))
	if err := rec.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B refused after expiry", func() error {
		if _, err := rowsOf(ctx, connB, sel); err == nil {
			return status.Error(codes.Unknown, "B still reads")
		}
		return nil
	})
	l, _ := ag.ListAgreements(ctx, &accessv1.ListAgreementsRequest{})
	var states []string
	for _, s := range l.GetAgreements() {
		states = append(states, s.GetId()+"="+s.GetState())
	}
	if !slices.Equal(states, []string{"dsa-a=revoked", "dsa-b=expired"}) {
		t.Errorf("states %v", states)
	}
}
