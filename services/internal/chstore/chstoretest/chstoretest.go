// Package chstoretest gives a test its own dmic database on a real ClickHouse
// (chservertest.Addr), with the schema applied and dropped afterwards.
package chstoretest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
)

// Database opens a fresh database named prefix_<n> with dmic's schema, and
// returns the connection and the config that reaches it.
func Database(t testing.TB, prefix string) (driver.Conn, chstore.Config) {
	t.Helper()
	cfg := chstore.Config{Addr: chservertest.Addr(t), Database: fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano()%1e6)}
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
