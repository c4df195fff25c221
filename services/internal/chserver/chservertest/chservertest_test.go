package chservertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
)

func version(t *testing.T, srv chserver.Server) string {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr},
		Auth: clickhouse.Auth{Username: chaccess.Analyst, Password: chservertest.Password(t, srv, chaccess.Analyst)}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil || v == "" {
		t.Fatalf("SELECT version() on %s: %q, %v", srv.Addr, v, err)
	}
	return v
}

// A CLICKHOUSE_ADDR that does not answer is passed over for a private server;
// so is one that answers but whose password files are not given; one that
// answers and takes the passwords in DMIC_CLICKHOUSE_SECRETS is used as it is.
func TestServer(t *testing.T) {
	t.Setenv("CLICKHOUSE_ADDR", "127.0.0.1:1") // nothing answers on port 1
	t.Setenv(chservertest.SecretsEnv, "")
	srv := chservertest.Server(t)
	if srv.Addr == "127.0.0.1:1" || srv.Secrets == "" {
		t.Fatalf("Server returned %+v for a CLICKHOUSE_ADDR that does not answer", srv)
	}
	t.Logf("ClickHouse %s at %s", version(t, srv), srv.Addr)

	t.Setenv("CLICKHOUSE_ADDR", srv.Addr)
	if other := chservertest.Server(t); other.Addr == srv.Addr {
		t.Fatalf("CLICKHOUSE_ADDR=%s answers but no passwords were given, and Server used it", srv.Addr)
	}
	t.Setenv(chservertest.SecretsEnv, srv.Secrets)
	if again := chservertest.Server(t); again.Addr != srv.Addr || again.Secrets != srv.Secrets {
		t.Fatalf("CLICKHOUSE_ADDR=%s answers and takes the passwords in %s, but Server returned %+v", srv.Addr, srv.Secrets, again)
	}
}
