// Package chstoretest gives a test its own dmic database on a real ClickHouse
// (chservertest.Server), with the schema applied and dropped afterwards.
package chstoretest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
)

// Database opens a fresh database named prefix_<n> with dmic's schema, and
// returns the migrator's connection and config (password read) that reach
// it. As gives another user's config for the same database.
func Database(t testing.TB, prefix string) (driver.Conn, chstore.Config) {
	t.Helper()
	srv := chservertest.Server(t)
	cfg := Config(t, srv, chaccess.Migrator, fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano()%1e6))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := cfg.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	if err := chstore.ApplySchema(ctx, conn, cfg.Database); err != nil {
		t.Fatal(err)
	}
	return conn, cfg
}

// Config is the config that logs in to srv's database as user, with the
// password read from srv's password file.
func Config(t testing.TB, srv chserver.Server, user, database string) chstore.Config {
	t.Helper()
	c := chstore.Config{Addr: srv.Addr, Database: database, User: user, PasswordFile: srv.PasswordFile(user)}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// As is cfg's server and database as another user: that user's password file
// sits beside cfg's, in the server's secrets folder (one file per user).
func As(t testing.TB, cfg chstore.Config, user string) chstore.Config {
	t.Helper()
	return Config(t, chserver.Server{Addr: cfg.Addr, Secrets: filepath.Dir(cfg.PasswordFile)}, user, cfg.Database)
}

// Args are the command-line flags that reach cfg's server and database as
// cfg's user: the password file's path, never the password.
func Args(cfg chstore.Config) []string {
	return []string{"-clickhouse-addr", cfg.Addr, "-clickhouse-database", cfg.Database,
		"-clickhouse-user", cfg.User, "-clickhouse-password-file", cfg.PasswordFile}
}
