package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/ports"
)

// Config places the stack.
type Config struct {
	// BinDir holds the built binaries (broker, ingest, validate, ...).
	BinDir string
	// VarDir holds broker data, ClickHouse data (if started here) and the dev key.
	VarDir string
	// ReferenceDir is passed to the services that need reference data.
	ReferenceDir string
	// ClickHouseAddr is used if something answers there, else a server is started on it.
	ClickHouseAddr string
	// ClickHouseSecrets is the folder of password files (one per user, named
	// after it) of a server that answers at ClickHouseAddr but is not started
	// here; a server started here keeps its own under VarDir/clickhouse/secrets.
	ClickHouseSecrets string
	// Database in ClickHouse.
	Database string
	// PortBase shifts every port (0 for the defaults: broker 9092, ingest 8080/9101, ...),
	// so a test can run beside `make run`.
	PortBase int
	// Out receives every process's prefixed log lines.
	Out io.Writer
	// LogLevel of the services.
	LogLevel string
}

// ServiceNames in pipeline order.
var ServiceNames = ports.Services

// Stack is a running pipeline.
type Stack struct {
	cfg     Config
	Ports   ports.Table
	Brokers string
	// CH is the ClickHouse server and its users' password files.
	CH chserver.Server
	// KeyDir is deidentify's key directory (docs/deidentification.md).
	KeyDir   string
	Procs    map[string]*Process
	order    []*Process
	stopCH   func()
	outMu    sync.Mutex
	log      *slog.Logger
	outWidth int
}

// Start brings everything up: broker, ClickHouse, services. It returns once
// ingest answers HTTP.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Database == "" {
		cfg.Database = "dmic"
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	s := &Stack{cfg: cfg, Ports: ports.For(cfg.PortBase), Procs: map[string]*Process{}, outWidth: 10}
	s.log = slog.New(slog.NewTextHandler(s.writer("devstack"), nil))
	s.Brokers = "localhost:" + strconv.Itoa(s.Ports.Broker)
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	for _, d := range []string{"kafka", "clickhouse", "keys"} {
		if err := os.MkdirAll(filepath.Join(cfg.VarDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	// Broker first: everything else waits for it.
	if err := s.spawn("broker", false, nil, "-port", strconv.Itoa(s.Ports.Broker), "-data-dir", filepath.Join(cfg.VarDir, "kafka"),
		"-http-addr", "localhost:"+strconv.Itoa(s.Ports.BrokerHTTP)); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, s.Brokers, 30*time.Second); err != nil {
		return nil, fmt.Errorf("broker did not start: %w", err)
	}
	srv, stop, err := chserver.Ensure(ctx, chserver.Options{Addr: cfg.ClickHouseAddr, DataDir: filepath.Join(cfg.VarDir, "clickhouse"),
		Databases: []string{cfg.Database}, Secrets: cfg.ClickHouseSecrets, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("ClickHouse: %w", err)
	}
	s.CH, s.stopCH = srv, stop
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	for _, user := range []string{chaccess.Analyst, chaccess.Migrator} {
		if err := chserver.WriteClientConfig(s.ClientConfig(user), s.CH.Addr, user, s.CH.PasswordFile(user)); err != nil {
			return nil, err
		}
	}

	s.KeyDir = filepath.Join(cfg.VarDir, "keys")
	if err := s.devKeys(); err != nil {
		return nil, err
	}

	for _, name := range ServiceNames {
		args := []string{
			"-brokers", s.Brokers,
			"-grpc-addr", "localhost:" + strconv.Itoa(s.Ports.GRPC[name]),
			"-http-addr", "localhost:" + strconv.Itoa(s.Ports.HTTP[name]),
			"-log-level", cfg.LogLevel,
			// Broker on the same machine: compression would only cost CPU.
			"-kafka-compression", "none",
		}
		switch name {
		case "deidentify":
			args = append(args, "-key-dir", s.KeyDir, "-reference-dir", cfg.ReferenceDir)
		case "assign", "validate":
			args = append(args, "-reference-dir", cfg.ReferenceDir)
		case "load", "ingest":
			args = append(args, s.clickHouseArgs(name)...)
		}
		if err := s.spawn(name, true, nil, args...); err != nil {
			return nil, err
		}
	}
	// Ready is every service SERVING: load has opened ClickHouse and found
	// the schema current.
	for _, name := range ServiceNames {
		url := "http://localhost:" + strconv.Itoa(s.Ports.HTTP[name]) + "/healthz"
		if err := waitHTTP(ctx, url, 90*time.Second); err != nil {
			return nil, fmt.Errorf("%s did not come up: %w", name, err)
		}
	}
	ok = true
	return s, nil
}

// clickHouseArgs are the ClickHouse flags of a service that logs in. A
// password is never on a command line (every user of the machine can read
// one): the service gets the path of its password file.
func (s *Stack) clickHouseArgs(service string) []string {
	user := ClickHouseUser(service)
	return []string{"-clickhouse-addr", s.CH.Addr, "-clickhouse-database", s.cfg.Database,
		"-clickhouse-user", user, "-clickhouse-password-file", s.CH.PasswordFile(user)}
}

// ClickHouseUser is the ClickHouse user a service logs in as, "" for one
// that does not (chaccess.Users says why).
func ClickHouseUser(service string) string {
	switch service {
	case "load":
		return chaccess.Writer
	case "ingest":
		return chaccess.Reader
	}
	return ""
}

// migrate makes or migrates the schema as the migrator, before the services
// start: load only checks it (chstore.CheckSchema), and ingest's reports
// read it. This is what `dmicctl migrate` does in production.
func (s *Stack) migrate(ctx context.Context) error {
	c, err := s.ClickHouseConfig(chaccess.Migrator)
	if err != nil {
		return err
	}
	conn, err := c.Open(ctx)
	if err != nil {
		return fmt.Errorf("ClickHouse schema: %w", err)
	}
	defer conn.Close()
	if err := chstore.ApplySchema(ctx, conn, s.cfg.Database); err != nil {
		return fmt.Errorf("ClickHouse schema: %w", err)
	}
	return nil
}

// ClickHouseConfig is the config that logs in to the stack's database as
// user, its password read from the user's file.
func (s *Stack) ClickHouseConfig(user string) (chstore.Config, error) {
	c := chstore.Config{Addr: s.CH.Addr, Database: s.cfg.Database, User: user, PasswordFile: s.CH.PasswordFile(user)}
	if err := c.Validate(); err != nil {
		return chstore.Config{}, fmt.Errorf("ClickHouse user %s: %w", user, err)
	}
	return c, nil
}

// ClientConfig is the clickhouse-client configuration that logs in as user
// (`clickhouse-client --config-file PATH`): written at start for the analyst
// and the migrator, mode 0600.
func (s *Stack) ClientConfig(user string) string {
	return filepath.Join(s.cfg.VarDir, "clickhouse", "client", user+".xml")
}

// devKeys makes sure the key directory has a development key in every
// domain, generating dev-1 where there is none. A key file of the single-key
// layout (keys/pseudonym.key, before key directories) becomes analytics/dev-1
// so that pseudonyms already in a development ClickHouse stay valid.
func (s *Stack) devKeys() error {
	legacy := filepath.Join(s.KeyDir, "pseudonym.key")
	analytics := filepath.Join(s.KeyDir, didi.DomainAnalytics)
	if _, err := os.Stat(legacy); err == nil {
		if _, err := os.Stat(analytics); os.IsNotExist(err) {
			if err := os.Mkdir(analytics, 0o700); err != nil {
				return fmt.Errorf("dev pseudonymisation keys: %w", err)
			}
			// Named after the version inside it, as a key directory requires.
			k, err := didi.LoadKey(legacy)
			if err != nil {
				return fmt.Errorf("dev pseudonymisation keys: %w", err)
			}
			if err := os.Rename(legacy, filepath.Join(analytics, k.Version+didi.KeyFileSuffix)); err != nil {
				return fmt.Errorf("dev pseudonymisation keys: %w", err)
			}
			s.log.Info("moved the development key into the key directory", "domain", didi.DomainAnalytics, "key_version", k.Version)
		}
	}
	for _, domain := range didi.Domains() {
		dir := filepath.Join(s.KeyDir, domain)
		keys, _ := filepath.Glob(filepath.Join(dir, "*"+didi.KeyFileSuffix))
		if len(keys) > 0 {
			continue
		}
		if err := didi.GenerateKeyFile(filepath.Join(dir, "dev-1"+didi.KeyFileSuffix), "dev-1"); err != nil {
			return fmt.Errorf("dev pseudonymisation key of %s: %w", domain, err)
		}
		s.log.Info("generated a development pseudonymisation key", "domain", domain, "dir", dir)
	}
	return nil
}

// IngestURL is ingest's base URL.
func (s *Stack) IngestURL() string {
	return "http://localhost:" + strconv.Itoa(s.Ports.HTTP["ingest"])
}

// ControlAddrs is the -services value for dmicctl.
func (s *Stack) ControlAddrs() string { return s.Ports.ControlAddrs("localhost") }

func (s *Stack) writer(name string) *prefixWriter {
	out := s.cfg.Out
	if out == nil {
		out = os.Stderr
	}
	return newPrefixWriter(&s.outMu, out, name, s.outWidth)
}

func (s *Stack) spawn(name string, restart bool, env []string, args ...string) error {
	p := &Process{Name: name, Path: filepath.Join(s.cfg.BinDir, name), Args: args, Env: env, Restart: restart, out: s.writer(name)}
	if err := p.start(); err != nil {
		return err
	}
	s.Procs[name] = p
	s.order = append(s.order, p)
	return nil
}

// Run starts a one-off process (e.g. the generator) with prefixed output and
// waits for it.
func (s *Stack) Run(ctx context.Context, name, bin string, args ...string) error {
	p := &Process{Name: name, Path: filepath.Join(s.cfg.BinDir, bin), Args: args, out: s.writer(name)}
	if err := p.start(); err != nil {
		return err
	}
	if err := p.Wait(ctx); err != nil {
		p.stop(5 * time.Second)
		return err
	}
	if c := p.ExitCode(); c != 0 {
		return fmt.Errorf("%s exited with code %d", name, c)
	}
	return nil
}

// Stop stops services in reverse order, then ClickHouse (if started here),
// then the broker.
func (s *Stack) Stop() {
	for i := len(s.order) - 1; i >= 0; i-- {
		p := s.order[i]
		if p.Name == "broker" {
			continue
		}
		p.stop(15 * time.Second)
	}
	if s.stopCH != nil {
		s.stopCH()
	}
	if b := s.Procs["broker"]; b != nil {
		b.stop(15 * time.Second)
	}
}

func waitTCP(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
