package chstore

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/chserver"
)

// testConfig is the Config that logs in to srv's database db as user, with
// its password read (Validate) from srv's password file.
func testConfig(t testing.TB, srv chserver.Server, user, db string) Config {
	t.Helper()
	c := Config{Addr: srv.Addr, Database: db, User: user, PasswordFile: srv.PasswordFile(user)}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}
