// Package chservertest gives a test a ClickHouse server to talk to, and the
// password files of dmic's users on it: the server at CLICKHOUSE_ADDR if it
// answers and DMIC_CLICKHOUSE_SECRETS holds passwords it accepts, else a
// private one of the test's own (chserver).
package chservertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/secret"
)

// SecretsEnv names the folder of password files (one per user, named after
// it: chaccess.Names) of the server at CLICKHOUSE_ADDR, e.g. the
// var/clickhouse/secrets of a `make run`. devrun reads it too.
const SecretsEnv = "DMIC_CLICKHOUSE_SECRETS"

// Server returns a ClickHouse for a test: the one at CLICKHOUSE_ADDR if it
// answers and lets dmic_migrator in with the password in SecretsEnv's folder
// (the tests make and drop databases of their own, so they need a server
// whose migrator may use every database, as a test server's does), otherwise
// a private server started on a free port in a temporary directory and
// stopped when the test (and its subtests) finish. The private server's
// writer, reader and analyst may use every database.
//
// When clickhouse-server is not installed it skips the test, except in CI (env
// CI set), where a missing server must fail loudly rather than turn the suite
// green by skipping.
func Server(t testing.TB) chserver.Server {
	return Start(t, chserver.Options{})
}

// Start is Server with options for the private server (Databases, HTTPPort);
// with options it always starts one (CLICKHOUSE_ADDR's users are what they are).
func Start(t testing.TB, o chserver.Options) chserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*chserver.StartTimeout)
	defer cancel()
	if addr := os.Getenv("CLICKHOUSE_ADDR"); addr != "" && len(o.Databases) == 0 && o.HTTPPort == 0 {
		srv := chserver.Server{Addr: addr, Secrets: os.Getenv(SecretsEnv)}
		if err := canLogIn(ctx, srv); err == nil {
			return srv
		} else {
			t.Logf("not using CLICKHOUSE_ADDR=%s (%v); starting a private clickhouse-server", addr, err)
		}
	}
	o.DataDir = t.TempDir()
	o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, stop, err := chserver.StartPrivate(ctx, o)
	if err != nil {
		if errors.Is(err, chserver.ErrNotInstalled) {
			if os.Getenv("CI") == "" {
				t.Skipf("skipping: %v", err)
			}
			t.Fatalf("CI is set and ClickHouse is needed: %v", err)
		}
		t.Fatalf("start clickhouse-server for test: %v", err)
	}
	// Registered after TempDir, so it runs first: the server has exited before
	// its directory is removed.
	t.Cleanup(stop)
	return srv
}

// Password is user's password on srv, for a test that connects with the
// driver itself.
func Password(t testing.TB, srv chserver.Server, user string) string {
	t.Helper()
	s, err := secret.FromFile(srv.PasswordFile(user))
	if err != nil {
		t.Fatalf("password of %s: %v", user, err)
	}
	return s.Reveal()
}

// canLogIn reports why dmic's migrator cannot log in to srv, if it cannot.
func canLogIn(ctx context.Context, srv chserver.Server) error {
	if !chserver.Answers(ctx, srv.Addr) {
		return errors.New("it does not answer")
	}
	if srv.Secrets == "" {
		return fmt.Errorf("%s does not name its password files", SecretsEnv)
	}
	pw, err := secret.FromFile(srv.PasswordFile(chaccess.Migrator))
	if err != nil {
		return err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr},
		Auth:        clickhouse.Auth{Username: chaccess.Migrator, Password: pw.Reveal()},
		DialTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("%s: %w", chaccess.Migrator, err)
	}
	return nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
