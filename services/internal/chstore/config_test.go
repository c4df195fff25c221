package chstore

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/secret"
)

func TestConfigFlags(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		env, envUser    string
		envPasswordFile string
		args            []string
		want            Config
	}{
		{"defaults", "", "", "", nil, Config{Addr: "localhost:9000", Database: "dmic", User: "dmic_writer"}},
		{"from the environment", "ch.internal:9440", "analyst", pwFile, nil,
			Config{Addr: "ch.internal:9440", Database: "dmic", User: "analyst", PasswordFile: pwFile}},
		{"flags win", "ch.internal:9440", "analyst", "", []string{"-clickhouse-addr", "h:1", "-clickhouse-database", "dmic_dev", "-clickhouse-user", "u", "-clickhouse-password-file", pwFile},
			Config{Addr: "h:1", Database: "dmic_dev", User: "u", PasswordFile: pwFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CLICKHOUSE_ADDR", tc.env)
			t.Setenv("DMIC_CLICKHOUSE_USER", tc.envUser)
			t.Setenv("DMIC_CLICKHOUSE_PASSWORD_FILE", tc.envPasswordFile)
			c := Config{User: "dmic_writer"}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			c.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if c != tc.want {
				t.Errorf("config = %+v, want %+v", c, tc.want)
			}
		})
	}
}

// Every problem at once; the password from the file, else the environment;
// none, a password in the address, or a file others may read: refused.
func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	open := filepath.Join(dir, "open")
	for p, mode := range map[string]os.FileMode{good: 0o600, open: 0o644} {
		if err := os.WriteFile(p, []byte("s3cret\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(PasswordEnv, "")
	os.Unsetenv(PasswordEnv)

	c := Config{Addr: "h:1", Database: "dmic", User: "u", PasswordFile: good}
	if err := c.Validate(); err != nil || c.Password.Reveal() != "s3cret" {
		t.Fatalf("from a file: %v, password %q", err, c.Password.Reveal())
	}

	t.Setenv(PasswordEnv, "from-env")
	c = Config{Addr: "h:1", Database: "dmic", User: "u"}
	if err := c.Validate(); err != nil || c.Password.Reveal() != "from-env" {
		t.Fatalf("from the environment: %v, password %q", err, c.Password.Reveal())
	}
	os.Unsetenv(PasswordEnv)

	c = Config{Addr: "clickhouse://u:hunter2@h:1", Database: "bad-name"}
	err := c.Validate()
	if err == nil {
		t.Fatal("a config with four problems passed")
	}
	for _, want := range []string{"holds a password", "-clickhouse-database", "-clickhouse-user: required", PasswordEnv + ": required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password: %v", err)
	}

	c = Config{Addr: "h:1", Database: "dmic", User: "u", PasswordFile: open}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a password file others may read: %v", err)
	}
}

func TestConfigNeverShowsThePassword(t *testing.T) {
	c := Config{Addr: "clickhouse://analyst:s3cret@ch:9000", Database: "dmic", User: "analyst", Password: secret.Of("hunter2", "test")}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "clickhouse", c)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "clickhouse", c)
	for _, out := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c), logs.String()} {
		if strings.Contains(out, "s3cret") || strings.Contains(out, "hunter2") {
			t.Errorf("password shown: %q", out)
		}
	}
	if s := c.String(); !strings.Contains(s, "ch:9000") || !strings.HasSuffix(s, "/dmic") || !strings.HasPrefix(s, "analyst@") {
		t.Errorf("String() = %q, want the user, host and database", s)
	}
}
