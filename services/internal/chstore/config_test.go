package chstore

import (
	"flag"
	"strings"
	"testing"
)

func TestConfigFlags(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		args      []string
		want      Config
	}{
		{"defaults", "", nil, Config{Addr: "localhost:9000", Database: "dmic"}},
		{"address from the environment", "ch.internal:9440", nil, Config{Addr: "ch.internal:9440", Database: "dmic"}},
		{"flags win", "ch.internal:9440", []string{"-clickhouse-addr", "h:1", "-clickhouse-database", "dmic_dev"}, Config{Addr: "h:1", Database: "dmic_dev"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CLICKHOUSE_ADDR", tc.env)
			var c Config
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

func TestConfigStringHidesPassword(t *testing.T) {
	s := Config{Addr: "clickhouse://analyst:s3cret@ch:9000", Database: "dmic"}.String()
	if strings.Contains(s, "s3cret") || !strings.Contains(s, "ch:9000") || !strings.HasSuffix(s, "/dmic") {
		t.Errorf("String() = %q, want the host and database without the password", s)
	}
}
