package service

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
)

func validConfig() Config {
	return Config{Brokers: "localhost:9092", GRPCAddr: "localhost:9102", LogLevel: "info", LogFormat: "text", Partitions: 6, Compression: "lz4",
		Kafka: kafkaconn.Config{Mechanism: kafkaconn.None}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings the error must contain; none: valid
	}{
		{"valid", func(*Config) {}, nil},
		{"json and debug", func(c *Config) { c.LogFormat, c.LogLevel = "json", "DEBUG" }, nil},
		{"no brokers", func(c *Config) { c.Brokers = " , ," }, []string{"-brokers"}},
		{"bad level", func(c *Config) { c.LogLevel = "loud" }, []string{`-log-level: "loud"`}},
		{"bad format", func(c *Config) { c.LogFormat = "xml" }, []string{`-log-format: "xml"`}},
		{"no partitions", func(c *Config) { c.Partitions = 0 }, []string{"-partitions: 0"}},
		{"no grpc address", func(c *Config) { c.GRPCAddr = "" }, []string{"-grpc-addr"}},
		{"bad compression", func(c *Config) { c.Compression = "brotli" }, []string{`-kafka-compression: compression "brotli"`}},
		{"SASL without a password", func(c *Config) {
			c.Kafka = kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512, User: "dmic-validate"}
		}, []string{"-kafka-sasl-password-file: required"}},
		{"everything at once", func(c *Config) {
			*c = Config{Brokers: "", LogLevel: "loud", LogFormat: "xml", Partitions: 0, Compression: "brotli", Kafka: kafkaconn.Config{Mechanism: "PLAIN", TLSCA: "/nonexistent/ca.pem"}}
		}, []string{"-brokers", "-grpc-addr", `-log-level: "loud"`, `-log-format: "xml"`, "-partitions: 0", "-kafka-compression",
			`-kafka-sasl-mechanism: "PLAIN"`, "-kafka-sasl-user", "-kafka-sasl-password-file", "-kafka-tls-ca"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to mention %q", err, w)
				}
			}
			// One line per problem: nothing more, nothing less.
			if n := len(strings.Split(err.Error(), "\n")); n != len(tt.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", n, len(tt.want), err)
			}
		})
	}
}

func TestBrokerList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"a:9092", []string{"a:9092"}},
		{" a:9092 ,b:9093,, c:9094 ", []string{"a:9092", "b:9093", "c:9094"}},
		{"\ta:1\n,b:2", []string{"a:1", "b:2"}},
	}
	for _, tt := range tests {
		c := Config{Brokers: tt.in}
		if got := c.BrokerList(); !slices.Equal(got, tt.want) {
			t.Errorf("BrokerList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func newFlagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs, 9102, 9202)
	return fs
}

func TestParseFlagsDefaults(t *testing.T) {
	var c Config
	if err := ParseFlags(newFlagSet(&c), nil); err != nil {
		t.Fatal(err)
	}
	want := Config{Brokers: "localhost:9092", GRPCAddr: "localhost:9102", HTTPAddr: "localhost:9202", LogLevel: "info", LogFormat: "text", Partitions: 6, Compression: "lz4",
		Kafka: kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512}}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
}

func TestParseFlagsEnvAndFlags(t *testing.T) {
	t.Setenv("DMIC_BROKERS", "env-broker:9092")
	t.Setenv("DMIC_GRPC_ADDR", ":7000")
	t.Setenv("DMIC_HTTP_ADDR", "")
	t.Setenv("DMIC_LOG_LEVEL", "debug")
	t.Setenv("DMIC_PARTITIONS", "12")
	var c Config
	fs := newFlagSet(&c)
	extra := fs.String("extra", "default", "a service's own flag")
	t.Setenv("DMIC_EXTRA", "from-env")
	args := []string{"-brokers", "flag-broker:9092", "-partitions", "3", "status"}
	if err := ParseFlags(fs, args); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Brokers:     "flag-broker:9092", // flag wins over env
		GRPCAddr:    ":7000",            // env
		HTTPAddr:    "",                 // env set to empty turns HTTP off
		LogLevel:    "debug",            // env
		LogFormat:   "text",             // default
		Partitions:  3,                  // flag wins over env
		Compression: "lz4",
		Kafka:       kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512},
	}
	if c != want {
		t.Errorf("config = %+v, want %+v", c, want)
	}
	if *extra != "from-env" {
		t.Errorf("-extra = %q, want from-env", *extra)
	}
	if !slices.Equal(fs.Args(), []string{"status"}) {
		t.Errorf("args = %q, want [status]", fs.Args())
	}
}

func TestParseFlagsBadEnv(t *testing.T) {
	t.Setenv("DMIC_PARTITIONS", "many")
	var c Config
	err := ParseFlags(newFlagSet(&c), []string{"-partitions", "3"})
	if err == nil || !strings.Contains(err.Error(), "DMIC_PARTITIONS") {
		t.Fatalf("ParseFlags = %v, want an error naming DMIC_PARTITIONS", err)
	}
}

func TestParseFlagsBadFlag(t *testing.T) {
	var c Config
	if err := ParseFlags(newFlagSet(&c), []string{"-partitions", "x"}); err == nil {
		t.Fatal("ParseFlags accepted -partitions x")
	}
}
