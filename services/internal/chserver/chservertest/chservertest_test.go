package chservertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
)

func version(t *testing.T, addr string) string {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil || v == "" {
		t.Fatalf("SELECT version() on %s: %q, %v", addr, v, err)
	}
	return v
}

// A CLICKHOUSE_ADDR that does not answer is passed over for a private server;
// one that answers is used as it is.
func TestAddr(t *testing.T) {
	t.Setenv("CLICKHOUSE_ADDR", "127.0.0.1:1") // nothing answers on port 1
	addr := chservertest.Addr(t)
	if addr == "127.0.0.1:1" {
		t.Fatal("Addr returned a CLICKHOUSE_ADDR that does not answer")
	}
	t.Logf("ClickHouse %s at %s", version(t, addr), addr)

	t.Setenv("CLICKHOUSE_ADDR", addr)
	if again := chservertest.Addr(t); again != addr {
		t.Fatalf("CLICKHOUSE_ADDR=%s answers, but Addr returned %s", addr, again)
	}
}
