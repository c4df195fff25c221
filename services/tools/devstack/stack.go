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
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/ports"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
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
	CHAddr  string
	// KeyDir is deidentify's key directory (docs/deidentification.md).
	KeyDir string
	// PKI holds the development certificates (VarDir/pki): the authority,
	// each service's, and the operator's, key custodian's, analyst's,
	// national exchange's and each sample provider's (docs/security.md).
	PKI      devpki.Dir
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
	for _, d := range []string{"kafka", "clickhouse", "keys", "pki"} {
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
	addr, stop, err := chserver.Ensure(ctx, cfg.ClickHouseAddr, filepath.Join(cfg.VarDir, "clickhouse"), s.log)
	if err != nil {
		return nil, fmt.Errorf("ClickHouse: %w", err)
	}
	s.CHAddr, s.stopCH = addr, stop

	s.KeyDir = filepath.Join(cfg.VarDir, "keys")
	if err := s.devKeys(); err != nil {
		return nil, err
	}
	s.PKI = devpki.Dir{Path: filepath.Join(cfg.VarDir, "pki")}
	if err := s.devPKI(); err != nil {
		return nil, err
	}

	for _, name := range ServiceNames {
		file := devpki.ServiceFile(name)
		args := []string{
			"-brokers", s.Brokers,
			"-grpc-addr", "localhost:" + strconv.Itoa(s.Ports.GRPC[name]),
			"-ops-addr", "localhost:" + strconv.Itoa(s.Ports.Ops[name]),
			"-tls-cert", s.PKI.Cert(file), "-tls-key", s.PKI.Key(file), "-tls-client-ca", s.PKI.CA(),
			"-log-level", cfg.LogLevel,
			// Broker on the same machine: compression would only cost CPU.
			"-kafka-compression", "none",
		}
		if port, ok := s.Ports.HTTP[name]; ok {
			args = append(args, "-http-addr", "localhost:"+strconv.Itoa(port))
		}
		switch name {
		case "deidentify":
			args = append(args, "-key-dir", s.KeyDir, "-reference-dir", cfg.ReferenceDir)
		case "assign", "validate":
			args = append(args, "-reference-dir", cfg.ReferenceDir)
		case "load", "ingest":
			args = append(args, "-clickhouse-addr", s.CHAddr, "-clickhouse-database", cfg.Database)
		}
		if err := s.spawn(name, true, nil, args...); err != nil {
			return nil, err
		}
	}
	// Ready is every service SERVING: load has opened ClickHouse and made
	// the schema that ingest's reports read. Health is on the operational
	// listener, plain HTTP on localhost.
	for _, name := range ServiceNames {
		url := "http://localhost:" + strconv.Itoa(s.Ports.Ops[name]) + "/healthz"
		if err := waitHTTP(ctx, url, 90*time.Second); err != nil {
			return nil, fmt.Errorf("%s did not come up: %w", name, err)
		}
	}
	ok = true
	return s, nil
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

// devPKI makes sure VarDir/pki holds the development certificates: every
// service's, the people's and exchanges', and one per provider of the
// reference data (the generator sends each provider's records with its own
// certificate). Kept across runs, issued again when near their end.
func (s *Stack) devPKI() error {
	ref, err := refdata.LoadDir(s.cfg.ReferenceDir)
	if err != nil {
		return fmt.Errorf("development certificates: reference data: %w", err)
	}
	wrote, err := s.PKI.Ensure(time.Now(), devpki.Subjects(ServiceNames, ref.TrustCodes()))
	if err != nil {
		return err
	}
	if len(wrote) > 0 {
		s.log.Info("issued development certificates", "dir", s.PKI.Path, "files", len(wrote))
	}
	return nil
}

// IngestURL is ingest's base URL (HTTPS: callers present a certificate).
func (s *Stack) IngestURL() string {
	return "https://localhost:" + strconv.Itoa(s.Ports.HTTP["ingest"])
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
