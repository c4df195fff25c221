package devstack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
)

// No service gets a ClickHouse password on its command line, which every
// user of the machine can read (ps, /proc/<pid>/cmdline): the services that
// log in get their password file's path, and the user the table in chaccess
// gives them. (The e2e test checks the running processes' command lines.)
func TestClickHouseArgsHoldNoSecret(t *testing.T) {
	secrets := t.TempDir()
	passwords := map[string]string{}
	for _, u := range chaccess.Names() {
		pw := "pw-of-" + u + "-0123456789abcdef"
		passwords[u] = pw
		if err := os.WriteFile(filepath.Join(secrets, u), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := &Stack{cfg: Config{Database: "dmic"}, CH: chserver.Server{Addr: "127.0.0.1:9000", Secrets: secrets}}
	for _, name := range []string{"load", "ingest", "assign"} {
		args := s.clickHouseArgs(name)
		line := strings.Join(args, " ")
		for u, pw := range passwords {
			if strings.Contains(line, pw) {
				t.Errorf("%s's command line holds %s's password: %s", name, u, line)
			}
		}
		user := ClickHouseUser(name)
		i := slices.Index(args, "-clickhouse-password-file")
		if i < 0 || args[i+1] != filepath.Join(secrets, user) || !slices.Contains(args, "-clickhouse-user") || args[slices.Index(args, "-clickhouse-user")+1] != user {
			t.Errorf("%s: %s; want -clickhouse-user %s and its password file", name, line, user)
		}
		u, ok := chaccess.Lookup(user)
		if !ok || !slices.ContainsFunc(u.UsedBy, func(by string) bool { return strings.HasPrefix(by, name) }) {
			t.Errorf("%s logs in as %s, which the table in chaccess does not say", name, user)
		}
	}
	if _, err := s.ClickHouseConfig(chaccess.Migrator); err != nil {
		t.Error(err)
	}
}
