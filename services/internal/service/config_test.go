package service

import (
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/identity/oidcauth"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/ports"
	"github.com/dmic-nhs/dmic/services/tools/devpki/devpkitest"
)

// otherKey is the key file of another certificate.
func otherKey(t *testing.T) string {
	f := devpkitest.New(t, time.Now()).ServiceFiles("other")
	p := filepath.Join(t.TempDir(), "other.key")
	b, err := os.ReadFile(f.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Only a service with an HTTP API has -http-addr; every service has the
// operational listener, on localhost by default.
func TestHTTPAddrOnlyWithAnAPI(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs, ports.Ports{GRPC: 9101, HTTP: 8080, Ops: 9201})
	if err := ParseFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "localhost:8080" || c.OpsAddr != "localhost:9201" {
		t.Errorf("ingest: API %q, ops %q", c.HTTPAddr, c.OpsAddr)
	}
	if c.HTTP != DefaultHTTPTimeouts() {
		t.Errorf("ingest: HTTP timeouts %+v, want the defaults %+v", c.HTTP, DefaultHTTPTimeouts())
	}
	var v Config
	if err := ParseFlags(newFlagSet(&v), []string{"-http-addr", ":8080"}); err == nil {
		t.Error("a service without an HTTP API took -http-addr")
	}
	if err := ParseFlags(newFlagSet(&v), []string{"-http-read-timeout", "1m"}); err == nil {
		t.Error("a service without an HTTP API took -http-read-timeout")
	}
}

// The HTTP API's timeouts: each at least a second, and the write timeout,
// which runs while the body is read, no shorter than the read timeout.
func TestHTTPTimeoutsValidate(t *testing.T) {
	if err := DefaultHTTPTimeouts().Validate(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	err := HTTPTimeouts{ReadHeader: 0, Read: time.Hour, Write: time.Minute, Idle: time.Millisecond}.Validate()
	for _, w := range []string{"-http-read-header-timeout", "-http-idle-timeout", "-http-write-timeout: 1m0s is less than -http-read-timeout"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate = %v, want it to say %q", err, w)
		}
	}
	// A Config built in code, without flags, still gets timeouts.
	var srv http.Server
	(HTTPTimeouts{}).apply(&srv)
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes != maxHeaderBytes {
		t.Errorf("server without settings: read header %v, read %v, write %v, idle %v, header bytes %d",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

func validConfig(t *testing.T) Config {
	f := devpkitest.New(t, time.Now()).ServiceFiles("validate")
	return Config{Brokers: "localhost:9092", GRPCAddr: "localhost:9102", TLSCert: f.Cert, TLSKey: f.Key, TLSClientCA: f.CA,
		LogLevel: "info", LogFormat: "text", Partitions: 6, Compression: "lz4", Kafka: kafkaconn.Config{Mechanism: kafkaconn.None}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings the error must contain; none: valid
		lines  int      // problems reported, when not one per substring
	}{
		{"valid", func(*Config) {}, nil, 0},
		{"json and debug", func(c *Config) { c.LogFormat, c.LogLevel = "json", "DEBUG" }, nil, 0},
		{"no brokers", func(c *Config) { c.Brokers = " , ," }, []string{"-brokers"}, 0},
		{"bad level", func(c *Config) { c.LogLevel = "loud" }, []string{`-log-level: "loud"`}, 0},
		{"bad format", func(c *Config) { c.LogFormat = "xml" }, []string{`-log-format: "xml"`}, 0},
		{"no partitions", func(c *Config) { c.Partitions = 0 }, []string{"-partitions: 0"}, 0},
		{"no grpc address", func(c *Config) { c.GRPCAddr = "" }, []string{"-grpc-addr"}, 0},
		{"bad compression", func(c *Config) { c.Compression = "brotli" }, []string{`-kafka-compression: compression "brotli"`}, 0},
		{"no TLS", func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = "", "", "" }, []string{"-tls-cert: required", "-tls-key: required", "-tls-client-ca: required"}, 0},
		{"key of another certificate", func(c *Config) { c.TLSKey = otherKey(t) }, []string{"-tls-cert, -tls-key: certificate", "private key does not match public key"}, 1},
		{"key readable by everyone", func(c *Config) {
			if err := os.Chmod(c.TLSKey, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"-tls-cert, -tls-key: private key: secret file", "mode 0644"}, 1},
		{"OIDC issuer alone", func(c *Config) { c.OIDC.Issuer = "https://login.example" }, []string{"-oidc-audience: required", "-oidc-jwks-url: required"}, 0},
		{"OIDC audience without an issuer", func(c *Config) { c.OIDC.Audience = "dmic" }, []string{"given without -oidc-issuer"}, 0},
		{"OIDC", func(c *Config) {
			c.OIDC = oidcauth.Config{Issuer: "https://login.example", Audience: "dmic", JWKSURL: "https://login.example/jwks"}
		}, nil, 0},
		{"client CA not PEM", func(c *Config) { c.TLSClientCA = c.TLSKey }, []string{"-tls-client-ca: certificate authorities", "no PEM certificate"}, 1},
		{"SASL without a password", func(c *Config) {
			c.Kafka = kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512, User: "dmic-validate"}
		}, []string{"-kafka-sasl-password-file: required"}, 0},
		{"everything at once", func(c *Config) {
			*c = Config{Brokers: "", LogLevel: "loud", LogFormat: "xml", Partitions: 0, Compression: "brotli", Kafka: kafkaconn.Config{Mechanism: "PLAIN", TLSCA: "/nonexistent/ca.pem"}}
		}, []string{"-brokers", "-grpc-addr", "-tls-cert", "-tls-key", "-tls-client-ca", `-log-level: "loud"`, `-log-format: "xml"`, "-partitions: 0", "-kafka-compression",
			`-kafka-sasl-mechanism: "PLAIN"`, "-kafka-sasl-user", "-kafka-sasl-password-file", "-kafka-tls-ca"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
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
			want := len(tt.want)
			if tt.lines > 0 {
				want = tt.lines
			}
			if n := len(strings.Split(err.Error(), "\n")); n != want {
				t.Errorf("Validate reported %d problems, want %d:\n%v", n, want, err)
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
	c.RegisterFlags(fs, ports.Ports{GRPC: 9102, Ops: 9202})
	return fs
}

func TestParseFlagsDefaults(t *testing.T) {
	var c Config
	if err := ParseFlags(newFlagSet(&c), nil); err != nil {
		t.Fatal(err)
	}
	want := Config{Brokers: "localhost:9092", GRPCAddr: "localhost:9102", OpsAddr: "localhost:9202", LogLevel: "info", LogFormat: "text", Partitions: 6, Compression: "lz4",
		Kafka: kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512}, MemoryLimit: DefaultMemoryLimit}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
}

func TestParseFlagsEnvAndFlags(t *testing.T) {
	t.Setenv("DMIC_BROKERS", "env-broker:9092")
	t.Setenv("DMIC_GRPC_ADDR", ":7000")
	t.Setenv("DMIC_OPS_ADDR", "")
	t.Setenv("DMIC_TLS_CERT", "/run/secrets/validate.crt")
	t.Setenv("DMIC_LOG_LEVEL", "debug")
	t.Setenv("DMIC_PARTITIONS", "12")
	t.Setenv("DMIC_MEMORY_LIMIT", "64MiB")
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
		OpsAddr:     "",                 // env set to empty turns the operational listener off
		TLSCert:     "/run/secrets/validate.crt",
		LogLevel:    "debug", // env
		LogFormat:   "text",  // default
		Partitions:  3,       // flag wins over env
		Compression: "lz4",
		Kafka:       kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512},
		MemoryLimit: 64 << 20, // env
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
