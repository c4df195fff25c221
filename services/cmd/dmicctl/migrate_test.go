package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
)

// TestMigrate: `dmicctl migrate` makes the schema as the migrator, twice
// without harm; the writer may not (it has no DDL), and load's check then
// passes. Without a password it refuses to start, naming what is missing.
func TestMigrate(t *testing.T) {
	srv := chservertest.Server(t)
	db := fmt.Sprintf("dmicctl_migrate_%d", time.Now().UnixNano()%1e6)
	migrator := chstoretest.Config(t, srv, chaccess.Migrator, db)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := migrator.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	mig := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := migrate(ctx, args, &out, &errOut, time.Minute)
		return out.String(), errOut.String(), code
	}

	writer := chstoretest.Config(t, srv, chaccess.Writer, db)
	if _, errOut, code := mig(chstoretest.Args(writer)...); code != 1 || !strings.Contains(errOut, "DDL") {
		t.Errorf("migrate as the writer: exit %d, %q; want 1, refused by ClickHouse", code, errOut)
	}
	if err := chstore.CheckSchema(ctx, conn, db); err == nil {
		t.Fatal("CheckSchema passes on a database that was never migrated")
	}
	for i := 0; i < 2; i++ {
		out, errOut, code := mig(chstoretest.Args(migrator)...)
		if code != 0 || !strings.Contains(out, "is current") {
			t.Fatalf("migrate #%d: exit %d, %q %q", i+1, code, out, errOut)
		}
	}
	if err := chstore.CheckSchema(ctx, conn, db); err != nil {
		t.Errorf("after migrate: %v", err)
	}

	t.Setenv(chstore.PasswordEnv, "")
	t.Setenv("DMIC_CLICKHOUSE_PASSWORD_FILE", "")
	if _, errOut, code := mig("-clickhouse-addr", srv.Addr, "-clickhouse-database", db); code != 2 || !strings.Contains(errOut, "-clickhouse-password-file or "+chstore.PasswordEnv+": required") {
		t.Errorf("migrate without a password: exit %d, %q; want 2 and the reason", code, errOut)
	}
}
