// Package service holds what every dmic service process shares: its common
// flags, logger, metrics endpoint, gRPC server and graceful shutdown.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/identity/oidcauth"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/ports"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Config is the part of every service's configuration that is the same for all.
type Config struct {
	Brokers  string
	GRPCAddr string
	// HTTPAddr is the listener of the service's HTTP API (ingest's, the
	// providers' door): HTTPS with client certificates. Only a service with
	// an HTTP API has the flag.
	HTTPAddr string
	// HTTP bounds the HTTP API's connections against slow clients (a
	// service with an HTTP API only).
	HTTP HTTPTimeouts
	// OpsAddr is the operational listener: /metrics, /healthz and
	// /debug/pprof, plain HTTP, on localhost by default. Never the API's.
	OpsAddr string
	// TLSCert and TLSKey are the service's certificate and private key (PEM
	// files; the key file mode 0600); TLSClientCA the authorities whose
	// client certificates it accepts (docs/security.md).
	TLSCert     string
	TLSKey      string
	TLSClientCA string
	// OIDC, when its issuer is set, also accepts OpenID Connect bearer
	// tokens of that issuer, beside client certificates.
	OIDC        oidcauth.Config
	LogLevel    string
	LogFormat   string
	Partitions  int
	Compression string
	// MaxBatch, MaxBatchBytes and BatchWait override the service's own batch
	// settings when set.
	MaxBatch      int
	MaxBatchBytes ByteSize
	BatchWait     time.Duration
	// Kafka is how the service authenticates to the brokers: its principal
	// (default dmic-<service>), SASL mechanism, password file, TLS.
	Kafka kafkaconn.Config
	// MemoryLimit is what the process may allocate: the Go runtime's soft
	// limit, less what the service keeps outside the Go heap
	// (Daemon.ReserveMemory). 0: none. GOMEMLIMIT, when set, wins.
	MemoryLimit ByteSize
}

// RegisterFlags registers the common flags, with this service's default ports
// (-http-addr only for a service with an HTTP API).
// Every flag can also be set by an environment variable DMIC_<FLAG> (upper
// case, dashes as underscores), which docker-compose uses.
func (c *Config) RegisterFlags(fs *flag.FlagSet, p ports.Ports) {
	fs.StringVar(&c.Brokers, "brokers", "localhost:9092", "Kafka bootstrap brokers, comma-separated.")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", fmt.Sprintf("localhost:%d", p.GRPC), "Listen address of the gRPC API (TLS; callers present a client certificate).")
	if p.HTTP != 0 {
		fs.StringVar(&c.HTTPAddr, "http-addr", fmt.Sprintf("localhost:%d", p.HTTP), "Listen address of the HTTP API (HTTPS; callers present a client certificate); empty: off.")
		c.HTTP.RegisterFlags(fs)
	}
	fs.StringVar(&c.OpsAddr, "ops-addr", fmt.Sprintf("localhost:%d", p.Ops), "Listen address of the operational HTTP endpoints /metrics, /healthz and /debug/pprof (plain HTTP: keep it on localhost or a private network); empty: off.")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "The service's certificate, PEM (with any intermediates after it). Required.")
	fs.StringVar(&c.TLSKey, "tls-key", "", "The service's private key, PEM; the file must not be readable by other users (mode 0600). Required.")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "Certificate authorities (PEM) whose client certificates the service accepts. Required.")
	c.OIDC.RegisterFlags(fs)
	fs.StringVar(&c.LogLevel, "log-level", "info", "Log level: debug, info, warn, error.")
	fs.StringVar(&c.LogFormat, "log-format", "text", "Log format: text or json.")
	fs.IntVar(&c.Partitions, "partitions", 6, "Partition count used when creating missing topics.")
	fs.IntVar(&c.MaxBatch, "max-batch", 0, "Most messages processed and committed together (0: the service's default).")
	fs.Var(&c.MaxBatchBytes, "max-batch-bytes", "A batch also ends once its messages hold this many bytes, such as 8MiB (0: the service's default). What a batch keeps live grows with it.")
	fs.DurationVar(&c.BatchWait, "batch-wait", 0, "Longest wait for a batch to fill after its first message (0: the service's default).")
	c.MemoryLimit = DefaultMemoryLimit
	fs.Var(&c.MemoryLimit, "memory-limit", "Soft limit of the memory the service allocates (Go heap and any store outside it), such as 96MiB; 0: none. "+
		"The garbage collector works harder as the process nears it. GOMEMLIMIT, when set, is the Go runtime's limit instead.")
	fs.StringVar(&c.Compression, "kafka-compression", "lz4", "Compression of produced messages: none, gzip, snappy, lz4, zstd (none saves CPU when the broker is on the same machine).")
	c.Kafka.RegisterFlags(fs)
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.BrokerList()) == 0 {
		errs = append(errs, errors.New("-brokers: at least one broker is required"))
	}
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("-grpc-addr: required"))
	}
	if c.HTTPAddr != "" {
		errs = append(errs, c.HTTP.Validate())
	}
	errs = append(errs, c.checkTLS()...)
	if err := c.OIDC.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.level(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("-log-format: %q is not text or json", c.LogFormat))
	}
	if _, err := kafkapipe.ParseCompression(c.Compression); err != nil {
		errs = append(errs, fmt.Errorf("-kafka-compression: %w", err))
	}
	if c.MaxBatch < 0 || c.BatchWait < 0 {
		errs = append(errs, errors.New("-max-batch and -batch-wait must not be negative"))
	}
	if c.MemoryLimit > 0 && c.MaxBatchBytes >= c.MemoryLimit {
		errs = append(errs, fmt.Errorf("-max-batch-bytes %s: a batch would not fit in -memory-limit %s", c.MaxBatchBytes, c.MemoryLimit))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("-partitions: %d must be at least 1", c.Partitions))
	}
	errs = append(errs, c.Kafka.Validate())
	return errors.Join(errs...)
}

// checkTLS says what is wrong with the TLS files, each problem once.
func (c *Config) checkTLS() []error {
	var errs []error
	for _, f := range []struct{ name, value, what string }{
		{"-tls-cert", c.TLSCert, "the service's certificate"},
		{"-tls-key", c.TLSKey, "its private key"},
		{"-tls-client-ca", c.TLSClientCA, "the authorities of the callers' certificates"},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s: required (%s, a PEM file; docs/security.md; make run makes development ones under var/pki)", f.name, f.what))
		}
	}
	if c.TLSCert != "" && c.TLSKey != "" {
		if _, err := identity.LoadKeyPair(c.TLSCert, c.TLSKey); err != nil {
			errs = append(errs, fmt.Errorf("-tls-cert, -tls-key: %w", err))
		}
	}
	if c.TLSClientCA != "" {
		if _, err := identity.LoadRoots(c.TLSClientCA); err != nil {
			errs = append(errs, fmt.Errorf("-tls-client-ca: %w", err))
		}
	}
	return errs
}

// BrokerList splits Brokers.
func (c *Config) BrokerList() []string {
	var out []string
	for _, b := range strings.Split(c.Brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func (c *Config) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("-log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// Logger builds the service's structured logger.
func (c *Config) Logger(service string) *slog.Logger {
	l, _ := c.level()
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h).With("service", service)
}

// ParseFlags parses args into fs after applying DMIC_* environment variables
// as defaults, so that flags given on the command line win.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "DMIC_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// BuildRevision is the VCS revision stamped into the binary (go build
// -buildvcs=true) and whether the tree had uncommitted changes; "" if none.
func BuildRevision() (rev string, dirty bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	return RevisionOf(bi)
}

// RevisionOf is a build's VCS revision and whether its tree was modified
// ("" when it was built without -buildvcs): of this process (BuildRevision)
// or of another binary (debug/buildinfo.ReadFile).
func RevisionOf(bi *debug.BuildInfo) (rev string, dirty bool) {
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	return rev, dirty
}

// Version is the build's VCS revision (short, "-dirty" if modified), or "dev".
func Version() string {
	rev, dirty := BuildRevision()
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// Main is the whole of a service's main: parse flags (with the service's own
// flags added by register), validate every setting at once, then run until
// SIGTERM or Ctrl-C. It returns the process exit code. The default ports are
// the service's in the one port table (package ports).
func Main(name string, args []string, register func(fs *flag.FlagSet), validate func() error, run func(ctx context.Context, d *Daemon) error) int {
	// Each service is its own Kafka principal unless told otherwise.
	cfg := Config{Kafka: kafkaconn.Config{User: topics.ServicePrincipal(name)}}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	p, err := ports.Default(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	cfg.RegisterFlags(fs, p)
	if register != nil {
		register(fs)
	}
	if err := ParseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	errs := []error{cfg.Validate()}
	if validate != nil {
		errs = append(errs, validate())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid configuration:\n%v\n", name, err)
		return 2
	}
	if os.Getenv("GOGC") == "" {
		// The services allocate short-lived records at a high rate: collecting
		// less often saves CPU (GOGC=100 spent a fifth of reconcile's time in
		// the collector). The memory limit below keeps the heap from growing
		// to five times what is live.
		debug.SetGCPercent(400)
	}
	mem := applyMemoryLimit(cfg.MemoryLimit)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cluster, err := cfg.Kafka.Cluster(cfg.BrokerList())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid configuration:\n%v\n", name, err)
		return 2
	}
	d, err := New(name, cfg, cluster)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	d.memory = mem
	// Seen starting, not unreachable, while run waits for its dependencies.
	stopStarting := d.ServeStarting()
	defer stopStarting()
	if err := run(ctx, d); err != nil && ctx.Err() == nil {
		d.Log.Error("exiting", "err", err)
		return 1
	}
	return 0
}
