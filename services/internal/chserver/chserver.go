// Package chserver finds a ClickHouse server that answers the native protocol,
// and, for development and tests on one machine, starts a private local
// clickhouse-server when none answers.
//
// The private server gets its own generated configuration, data directory and
// log files, so it never clashes with a system-wide installation: it listens on
// 127.0.0.1 only, on the native port asked for, with HTTP and the interserver
// port disabled (dmic speaks the native protocol only; clickhouse-go's HTTP
// protocol does not work against ClickHouse 18.16 anyway). Its users are
// dmic's (package chaccess), each with a password generated at the first
// start; it has no `default` user.
package chserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
)

// ErrNoSecrets is returned (wrapped) by Ensure when a server answers that was
// not started here and no password files were given for it.
var ErrNoSecrets = errors.New("no password files were given for its users")

// ErrNotInstalled is returned (wrapped) when no clickhouse-server binary can be found.
var ErrNotInstalled = errors.New("clickhouse-server is not installed (Debian/Ubuntu: apt-get install clickhouse-server clickhouse-client; " +
	"or install a current ClickHouse from https://clickhouse.com/docs/install, or point the service at a running server)")

const (
	// StartTimeout bounds the wait for a started server to answer. 18.16 answers
	// in 1–3 s on a fresh data directory; a large existing one takes longer.
	StartTimeout = 60 * time.Second
	// stopTimeout bounds the wait after SIGTERM before the server is killed.
	stopTimeout = 30 * time.Second
	pollEvery   = 200 * time.Millisecond
)

// Options say where a server is wanted and, when one is started, how.
type Options struct {
	// Addr is host:port of the native protocol.
	Addr string
	// DataDir holds a started server's configuration, data, logs and the
	// password files of its users (DataDir/secrets).
	DataDir string
	// Databases are the databases the writer, reader and analyst users of a
	// started server may use; empty: every database (a test server, whose
	// tests make databases of their own). The migrator is the development
	// server's administrator and may use every database (chaccess).
	Databases []string
	// HTTPPort, when not 0, makes a started server listen for HTTP there too
	// (on 127.0.0.1), so that a test can show the users hold over HTTP.
	HTTPPort int
	// Secrets is the folder of password files (one per user, named after it)
	// of a server that answers at Addr but was not started here.
	Secrets string
	// UsersConfig, when set, is the started server's users.xml instead of
	// dmic's users with the generated passwords, and UsersD are files for
	// users.d/ beside it, by name: a test of another users configuration
	// (docker-compose's, on a server that has a passwordless default user
	// as the image's has).
	UsersConfig []byte
	UsersD      map[string][]byte
	// Logger receives what happens (nil: nothing).
	Logger *slog.Logger
}

// Server is a ClickHouse server and where its users' passwords are.
type Server struct {
	Addr string
	// Secrets is the folder holding one password file per user, named after
	// the user (chaccess.Names).
	Secrets string
	// Started: this process started the server.
	Started bool
	// UsersDir is the users.d folder of a server started here, where a
	// running dmic writes its recipients' users (load; docs/data-access.md).
	// chserver empties it at every start. "" for a server not started here.
	UsersDir string
}

// PasswordFile is the file holding user's password.
func (s Server) PasswordFile(user string) string { return filepath.Join(s.Secrets, user) }

// Ensure returns a ClickHouse that answers the native protocol at o.Addr.
//
// If something answers there, Ensure returns it with o.Secrets as its
// password files (it is an error to give none: dmic does not log in without a
// password) and a no-op stop. Otherwise, if the address is on the loopback
// interface, it starts clickhouse-server (found on PATH, /usr/bin or
// /usr/sbin; a single `clickhouse` binary is run as `clickhouse server`) with
// a private configuration written into o.DataDir (data under data/, logs
// under log/), native port = the address's port, and waits up to a minute
// until it answers.
//
// The started server has dmic's users (chaccess) and no `default` user. Each
// user's password is generated at the first start into DataDir/secrets/<user>
// (mode 0600) and kept; the server's users.xml holds their SHA-256 hashes.
//
// The returned stop sends SIGTERM to the server it started and waits for it
// to exit; calling it more than once is harmless. The started server belongs
// to the calling process: on Linux it receives SIGTERM if that process dies,
// so a crashed test or service leaves no orphan holding the port and the data
// directory. It runs in its own process group so that a Ctrl-C in a terminal
// reaches the service, which then stops it in order.
func Ensure(ctx context.Context, o Options) (srv Server, stop func(), err error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	noop := func() {}
	addr := o.Addr
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Server{}, noop, fmt.Errorf("clickhouse address %q: %w", addr, err)
	}
	if Answers(ctx, addr) {
		logger.Debug("clickhouse answers", "addr", addr)
		if o.Secrets == "" {
			return Server{}, noop, fmt.Errorf("a ClickHouse answers at %s, but it was not started here and %w (%s)",
				addr, ErrNoSecrets, strings.Join(chaccess.Names(), ", "))
		}
		return Server{Addr: addr, Secrets: o.Secrets}, noop, nil
	}
	if !isLoopback(host) {
		return Server{}, noop, fmt.Errorf("no ClickHouse answers the native protocol at %s (not a local address, so none is started)", addr)
	}
	if listening(ctx, addr) {
		return Server{}, noop, fmt.Errorf("something listens on %s but does not answer the ClickHouse native protocol; choose another port", addr)
	}
	portNum, err := strconv.Atoi(port)
	if err != nil || portNum <= 0 || portNum > 65535 {
		return Server{}, noop, fmt.Errorf("clickhouse address %q: bad port", addr)
	}
	if o.DataDir == "" {
		return Server{}, noop, errors.New("chserver: a data directory is needed to start a local clickhouse-server")
	}
	bin, args, err := findServer()
	if err != nil {
		return Server{}, noop, err
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return Server{}, noop, fmt.Errorf("data directory %q: %w", o.DataDir, err)
	}
	secrets := filepath.Join(dir, "secrets")
	hashes, err := ensureSecrets(secrets)
	if err != nil {
		return Server{}, noop, err
	}
	users := o.UsersConfig
	if users == nil {
		users, err = chaccess.Config{Databases: o.Databases, Development: true, Networks: chaccess.Loopback(),
			PasswordHashes: hashes, BaseProfile: true, BaseSettings: baseSettings()}.XML()
		if err != nil {
			return Server{}, noop, err
		}
	}
	configPath, err := writeConfig(dir, portNum, o.HTTPPort, users, o.UsersD)
	if err != nil {
		return Server{}, noop, err
	}
	out, err := os.OpenFile(filepath.Join(dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return Server{}, noop, fmt.Errorf("open clickhouse-server output log: %w", err)
	}
	// exec.Command, not CommandContext: ctx bounds the start-up wait, not the
	// server's life, which stop controls.
	cmd := exec.Command(bin, append(args, "--config-file="+configPath)...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return Server{}, noop, fmt.Errorf("start %s: %w", bin, err)
	}
	logger.Info("started local clickhouse-server", "binary", bin, "addr", addr, "pid", cmd.Process.Pid, "data_dir", dir, "secrets", secrets)

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		out.Close()
		close(exited)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(stopTimeout):
				logger.Warn("clickhouse-server did not stop after SIGTERM; killing it", "pid", cmd.Process.Pid)
				_ = cmd.Process.Kill()
				<-exited
			}
			logger.Info("stopped local clickhouse-server", "pid", cmd.Process.Pid)
		})
	}

	logs := filepath.Join(dir, "log")
	deadline := time.NewTimer(StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			// Another process may have started a server on the same port at the
			// same moment (ours then fails to bind or to lock the data path):
			// use that one. It was started from the same folder, or its users
			// will refuse these passwords, which the caller then reports.
			if Answers(ctx, addr) {
				logger.Info("clickhouse-server we started exited, but another answers", "addr", addr)
				return Server{Addr: addr, Secrets: secrets}, noop, nil
			}
			return Server{}, noop, fmt.Errorf("clickhouse-server exited before answering on %s (%v); see the logs in %s", addr, waitErr, logs)
		case <-ctx.Done():
			stop()
			return Server{}, noop, fmt.Errorf("waiting for clickhouse-server on %s: %w", addr, ctx.Err())
		case <-deadline.C:
			stop()
			return Server{}, noop, fmt.Errorf("clickhouse-server did not answer on %s within %s; see the logs in %s", addr, StartTimeout, logs)
		case <-tick.C:
			if Answers(ctx, addr) {
				logger.Info("local clickhouse-server answers", "addr", addr)
				return Server{Addr: addr, Secrets: secrets, Started: true, UsersDir: filepath.Join(dir, "users.d")}, stop, nil
			}
		}
	}
}

// Answers reports whether a ClickHouse server answers the native protocol at
// addr. It knows no password: a server that refuses the login (no default
// user, as on every server dmic starts) answers all the same, with a
// ClickHouse exception rather than a broken connection.
func Answers(ctx context.Context, addr string) bool {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second,
	})
	if err != nil {
		return false
	}
	defer conn.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err = conn.Ping(pctx)
	var exception *clickhouse.Exception
	return err == nil || errors.As(err, &exception)
}

// listening reports whether anything accepts TCP connections at addr.
func listening(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func isLoopback(host string) bool {
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// findServer returns the server binary and the arguments that precede --config-file.
func findServer() (string, []string, error) {
	return findServerIn(exec.LookPath, isExecutable)
}

func findServerIn(lookPath func(string) (string, error), executable func(string) bool) (string, []string, error) {
	if p, err := lookPath("clickhouse-server"); err == nil {
		return p, nil, nil
	}
	// Debian puts 18.16's binary in /usr/sbin, which is not on every user's PATH.
	for _, p := range []string{"/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"} {
		if executable(p) {
			return p, nil, nil
		}
	}
	// Current releases can be installed as a single multi-tool binary.
	if p, err := lookPath("clickhouse"); err == nil {
		return p, []string{"server"}, nil
	}
	if executable("/usr/bin/clickhouse") {
		return "/usr/bin/clickhouse", []string{"server"}, nil
	}
	return "", nil, ErrNotInstalled
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
