package chaccess_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// ClickHouse's error codes for a refused login or statement: 18.16's, then
// current releases' where they differ.
var (
	loginRefused  = []int32{192, 193, 194, 195, 516} // unknown user, wrong/required password, IP not allowed; AUTHENTICATION_FAILED
	readonly      = []int32{164}                     // READONLY
	ddlProhibited = []int32{392}                     // QUERY_IS_PROHIBITED
	otherDatabase = []int32{291, 497}                // DATABASE_ACCESS_DENIED; ACCESS_DENIED
)

// server is a server as `make run` starts it (its users limited to one
// database), listening for HTTP too, with dmic's schema and some activity
// in that database, and a table in another.
type server struct {
	chserver.Server
	db       string
	httpPort int
}

const otherTable = "chaccess_other.secrets"

func startServer(t *testing.T) server {
	t.Helper()
	httpPort, err := chserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := server{db: "dmic_access", httpPort: httpPort}
	s.Server = chservertest.Start(t, chserver.Options{Databases: []string{s.db}, HTTPPort: httpPort})
	ctx := testContext(t)
	migrator := open(t, s.as(t, chaccess.Migrator))
	if err := chstore.ApplySchema(ctx, migrator, s.db); err != nil {
		t.Fatal(err)
	}
	// On a development server the migrator administers every database.
	for _, q := range []string{"CREATE DATABASE chaccess_other", "CREATE TABLE " + otherTable + " (v String) ENGINE = MergeTree ORDER BY v",
		"INSERT INTO " + otherTable + " (v) SELECT 'not yours'"} {
		if err := migrator.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	writer := chstore.NewWriter(open(t, s.as(t, chaccess.Writer)), s.db)
	for _, b := range chstoretest.SmallNumbersActivity() {
		if err := writer.WriteActivity(ctx, b); err != nil {
			t.Fatalf("the writer writes activity: %v", err)
		}
	}
	return s
}

func (s server) as(t *testing.T, user string) chstore.Config {
	return chstoretest.Config(t, s.Server, user, s.db)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, c chstore.Config) driver.Conn {
	t.Helper()
	conn, err := c.Open(testContext(t))
	if err != nil {
		t.Fatalf("%s logs in: %v", c.User, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dial logs in with the driver itself, as anyone could.
func dial(ctx context.Context, addr, user, password string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: password},
		DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// refused fails t unless err is a ClickHouse exception with one of codes.
func refused(t *testing.T, what string, err error, codes []int32) {
	t.Helper()
	var e *clickhouse.Exception
	switch {
	case err == nil:
		t.Errorf("%s: allowed, want it refused", what)
	case !errors.As(err, &e):
		t.Errorf("%s: %v, want a refusal by ClickHouse (code %v)", what, err, codes)
	case !slices.Contains(codes, e.Code):
		t.Errorf("%s: code %d (%s), want %v", what, e.Code, e.Message, codes)
	}
}

// The acceptance test of issue 12 for ClickHouse, on the server make run
// starts: nobody logs in as default or without the password; the analyst
// (and the reader) read and change nothing; the writer writes and changes no
// schema; none of them reaches another database; over the native protocol
// and over HTTP.
func TestAccess(t *testing.T) {
	s := startServer(t)
	ctx := testContext(t)
	table := s.db + "." + chstore.TableActivity

	t.Run("default user", func(t *testing.T) {
		_, err := dial(ctx, s.Addr, "default", "")
		refused(t, "default without a password", err, loginRefused)
		_, err = dial(ctx, s.Addr, "", "")
		refused(t, "no user name (the driver's default)", err, loginRefused)
		code, body := httpQuery(t, s, "", "", "SELECT count() FROM "+table)
		if code == http.StatusOK || !strings.Contains(body, "default") {
			t.Errorf("HTTP as default: %d %q, want a refusal naming the user", code, body)
		}
		if bin, err := exec.LookPath("clickhouse-client"); err == nil {
			out, err := exec.CommandContext(ctx, bin, "--host", "127.0.0.1", "--port", port(s.Addr), "--query", "SELECT count() FROM "+table).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "default") {
				t.Errorf("clickhouse-client as default: %v %q, want a refusal", err, out)
			}
		}
	})

	t.Run("wrong or no password", func(t *testing.T) {
		for _, u := range chaccess.Names() {
			_, err := dial(ctx, s.Addr, u, "not-the-password")
			refused(t, u+" with a wrong password", err, loginRefused)
			_, err = dial(ctx, s.Addr, u, "")
			refused(t, u+" without a password", err, loginRefused)
			if code, body := httpQuery(t, s, u, "not-the-password", "SELECT 1"); code == http.StatusOK {
				t.Errorf("HTTP as %s with a wrong password: %d %q", u, code, body)
			}
		}
	})

	for _, user := range []string{chaccess.Analyst, chaccess.Reader} {
		t.Run(user+" reads and changes nothing", func(t *testing.T) {
			conn := open(t, s.as(t, user))
			for _, v := range []string{chstore.ViewActivityCurrent, chstore.ViewDQSummary, chstore.ViewDQRuleSummary, chstore.ViewRejectionsSummary,
				chstore.ViewSmallNumbers, chstore.ViewSubmissionStatus, chstore.TableActivity} {
				var n uint64
				if err := conn.QueryRow(ctx, "SELECT count() FROM "+s.db+"."+v).Scan(&n); err != nil {
					t.Errorf("SELECT from %s: %v", v, err)
				} else if v == chstore.ViewActivityCurrent && n == 0 {
					t.Errorf("%s sees no activity", v)
				}
			}
			if _, err := chstore.DQSummary(ctx, conn, s.db, chstore.DQFilter{}); err != nil {
				t.Errorf("dmicctl dq's read: %v", err)
			}
			for _, q := range []string{
				"INSERT INTO " + table + " (record_key) SELECT 'x'",
				"ALTER TABLE " + table + " ADD COLUMN sneaky String",
				"ALTER TABLE " + table + " DELETE WHERE 1",
				"DROP TABLE " + table,
				"TRUNCATE TABLE " + table,
				"CREATE TABLE " + s.db + ".mine (v String) ENGINE = Memory",
				"RENAME TABLE " + table + " TO " + s.db + ".gone",
				"SET readonly = 0",
			} {
				refused(t, q, conn.Exec(ctx, q), readonly)
			}
			// Sent with the query rather than SET: 18.16 ignores a readonly
			// user's settings, current releases refuse them.
			withSettings := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"readonly": 0}))
			if err := conn.Exec(withSettings, "INSERT INTO "+table+" (record_key) SELECT 'x'"); err == nil {
				t.Error("INSERT with readonly = 0 sent along: allowed")
			}
			var v string
			refused(t, "SELECT from another database", conn.QueryRow(ctx, "SELECT v FROM "+otherTable).Scan(&v), otherDatabase)
			if code, body := httpQuery(t, s, user, password(t, s, user), "SELECT count() FROM "+table); code != http.StatusOK {
				t.Errorf("HTTP SELECT as %s: %d %q", user, code, body)
			}
			if code, body := httpPost(t, s, user, password(t, s, user), "INSERT INTO "+table+" (record_key) SELECT 'x'"); code == http.StatusOK {
				t.Errorf("HTTP INSERT as %s: %d %q, want a refusal", user, code, body)
			}
		})
	}

	// Issue 12: the audit trail is for analysts to read and nobody to
	// change; load (the writer) only inserts.
	t.Run("analyst reads the audit trail and cannot change it", func(t *testing.T) {
		trail := s.db + "." + chstore.TableAudit
		w := chstore.NewWriter(open(t, s.as(t, chaccess.Writer)), s.db)
		refusal := audit.Entry{ID: "a1", Time: time.Now().UTC(), Service: "validate", Protocol: "grpc", Action: "/dmic.v1.ControlService/Pause",
			Outcome: audit.Refused, Reason: "role", Caller: &identity.Identity{Org: "0DA", Role: identity.Analyst, Name: "Ann Analyst", Method: identity.MTLS}}
		if err := w.WriteAudit(ctx, []chstore.AuditRow{{Entry: refusal}}); err != nil {
			t.Fatalf("the writer writes the audit table: %v", err)
		}
		conn := open(t, s.as(t, chaccess.Analyst))
		got, err := chstore.ReadAudit(ctx, conn, s.db, chstore.AuditFilter{Outcome: audit.Refused})
		if err != nil || len(got) != 1 || got[0].CallerRole != "analyst" {
			t.Errorf("the analyst reads the audit table: %+v, %v", got, err)
		}
		for _, q := range []string{
			"INSERT INTO " + trail + " (id, outcome) SELECT 'forged', 'done'",
			"ALTER TABLE " + trail + " DELETE WHERE 1",
			"ALTER TABLE " + trail + " UPDATE detail = '' WHERE 1",
			"ALTER TABLE " + trail + " DROP COLUMN detail",
			"ALTER TABLE " + trail + " DROP PARTITION 202611",
			"OPTIMIZE TABLE " + trail + " FINAL",
			"TRUNCATE TABLE " + trail,
			"DROP TABLE " + trail,
			"RENAME TABLE " + trail + " TO " + s.db + ".gone",
		} {
			refused(t, "analyst: "+q, conn.Exec(ctx, q), readonly)
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+trail).Scan(&n); err != nil || n != 1 {
			t.Errorf("after the attempts the trail has %d rows (%v), want the 1 written", n, err)
		}
		// The writer inserts and may not rewrite or remove (allow_ddl = 0;
		// on 18.16 only as far as docs/security.md says).
		wconn := open(t, s.as(t, chaccess.Writer))
		for _, q := range []string{
			"ALTER TABLE " + trail + " DELETE WHERE 1",
			"DROP TABLE " + trail,
			"TRUNCATE TABLE " + trail,
		} {
			refused(t, "writer: "+q, wconn.Exec(ctx, q), ddlProhibited)
		}
	})

	t.Run("writer writes and changes no schema", func(t *testing.T) {
		conn := open(t, s.as(t, chaccess.Writer))
		if err := chstore.CheckSchema(ctx, conn, s.db); err != nil {
			t.Errorf("load's schema check as the writer: %v", err)
		}
		for _, q := range []string{
			"CREATE TABLE " + s.db + ".mine (v String) ENGINE = Memory",
			"ALTER TABLE " + table + " ADD COLUMN sneaky String",
			"ALTER TABLE " + table + " DELETE WHERE 1",
			"DROP TABLE " + table,
			"TRUNCATE TABLE " + table,
			"RENAME TABLE " + table + " TO " + s.db + ".gone",
			"CREATE DATABASE mine",
			"SET allow_ddl = 1",
		} {
			refused(t, q, conn.Exec(ctx, q), ddlProhibited)
		}
		var v string
		refused(t, "SELECT from another database", conn.QueryRow(ctx, "SELECT v FROM "+otherTable).Scan(&v), otherDatabase)
		refused(t, "INSERT into another database", conn.Exec(ctx, "INSERT INTO "+otherTable+" (v) SELECT 'x'"), otherDatabase)
	})

	// allow_ddl = 1 sent with a query, not by SET: current releases refuse
	// it; 18.16 applies it (docs/security.md: the writer's DDL limit is not
	// a boundary on 18.16). The test says which it found.
	t.Run("writer sends allow_ddl with a query", func(t *testing.T) {
		conn := open(t, s.as(t, chaccess.Writer))
		var version string
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
			t.Fatal(err)
		}
		withSettings := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"allow_ddl": 1}))
		err := conn.Exec(withSettings, "CREATE TABLE "+s.db+".sneaky (v String) ENGINE = Memory")
		switch {
		case err != nil:
			refused(t, "CREATE with allow_ddl = 1 sent along", err, ddlProhibited)
		case strings.HasPrefix(version, "18."):
			t.Logf("ClickHouse %s applies allow_ddl sent with a query: the writer could change the schema (docs/security.md)", version)
			_ = open(t, s.as(t, chaccess.Migrator)).Exec(ctx, "DROP TABLE "+s.db+".sneaky")
		default:
			t.Errorf("ClickHouse %s let the writer turn DDL on with a query's settings", version)
		}
	})
}

// No password in what a service logs: its config, a failed login, a
// successful one; nor in the server's own files beside the password folder.
func TestNoPasswordInLogs(t *testing.T) {
	s := startServer(t)
	ctx := testContext(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jsonLog := slog.New(slog.NewJSONHandler(&logs, nil))
	c := chstore.Config{Addr: s.Addr, Database: s.db, User: chaccess.Writer, PasswordFile: s.PasswordFile(chaccess.Writer)}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*slog.Logger{log, jsonLog} {
		l.Info("opening", "clickhouse", c, "config", fmt.Sprintf("%v %+v %#v", c, c, c))
	}
	conn, err := c.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	log.Info("opened", "clickhouse", c)
	wrong := c
	wrong.User = chaccess.Analyst // the writer's password, the analyst's name
	if _, err := wrong.Open(ctx); err == nil {
		t.Fatal("the analyst logged in with the writer's password")
	} else {
		log.Error("open failed", "err", err, "clickhouse", wrong)
	}
	places := map[string]string{"slog output": logs.String()}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(s.Secrets), "log", "*"))
	files = append(files, filepath.Join(filepath.Dir(s.Secrets), "users.xml"))
	more, _ := filepath.Glob(filepath.Join(filepath.Dir(s.Secrets), "data", "preprocessed_configs", "*"))
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		places[f] = string(b)
	}
	for _, u := range chaccess.Names() {
		pw := password(t, s, u)
		for where, text := range places {
			if strings.Contains(text, pw) {
				t.Errorf("%s's password is in %s", u, where)
			}
		}
	}
	if !strings.Contains(logs.String(), chaccess.Writer) {
		t.Errorf("the log does not even name the user:\n%s", logs.String())
	}
}

func password(t *testing.T, s server, user string) string {
	return chservertest.Password(t, s.Server, user)
}

func port(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

func httpQuery(t *testing.T, s server, user, password, q string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(s.httpPort)+"/?query="+url.QueryEscape(q), nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req, user, password)
}

func httpPost(t *testing.T, s server, user, password, q string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(s.httpPort)+"/", strings.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req, user, password)
}

func do(t *testing.T, req *http.Request, user, password string) (int, string) {
	t.Helper()
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("HTTP: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
