package chserver

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/secret"
)

func TestRenderConfig(t *testing.T) {
	for _, httpPort := range []int{0, 18123} {
		cfg := renderConfig("/tmp/a&b", 19001, httpPort)
		var parsed struct {
			XMLName    xml.Name `xml:"yandex"`
			TCPPort    int      `xml:"tcp_port"`
			HTTPPort   *int     `xml:"http_port"`
			Interport  *int     `xml:"interserver_http_port"`
			ListenHost []string `xml:"listen_host"`
			Path       string   `xml:"path"`
			Users      string   `xml:"users_config"`
			Log        string   `xml:"logger>log"`
		}
		if err := xml.Unmarshal(cfg, &parsed); err != nil {
			t.Fatalf("generated config is not XML: %v\n%s", err, cfg)
		}
		if parsed.TCPPort != 19001 {
			t.Errorf("tcp_port = %d, want 19001", parsed.TCPPort)
		}
		if httpPort == 0 && parsed.HTTPPort != nil || httpPort != 0 && (parsed.HTTPPort == nil || *parsed.HTTPPort != httpPort) || parsed.Interport != nil {
			t.Errorf("HTTP port %d asked: http_port %v, interserver %v", httpPort, parsed.HTTPPort, parsed.Interport)
		}
		if len(parsed.ListenHost) != 1 || parsed.ListenHost[0] != "127.0.0.1" {
			t.Errorf("listen_host = %v, want [127.0.0.1]", parsed.ListenHost)
		}
		for name, got := range map[string]string{"path": parsed.Path, "users_config": parsed.Users, "log": parsed.Log} {
			if !strings.HasPrefix(got, "/tmp/a&b/") {
				t.Errorf("%s = %q, want it under the private directory", name, got)
			}
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"LOCALHOST", true}, {"127.0.0.1", true}, {"127.0.0.53", true}, {"::1", true}, {"", true},
		{"10.0.0.1", false}, {"clickhouse", false}, {"192.0.2.1", false},
	} {
		if got := isLoopback(tc.host); got != tc.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestFindServerIn(t *testing.T) {
	notFound := func(string) (string, error) { return "", errors.New("not found") }
	none := func(string) bool { return false }
	if _, _, err := findServerIn(notFound, none); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("no binary anywhere: err = %v, want ErrNotInstalled", err)
	}
	if !strings.Contains(ErrNotInstalled.Error(), "apt-get install clickhouse-server clickhouse-client") {
		t.Errorf("the not-installed error must say how to install: %q", ErrNotInstalled)
	}
	bin, args, err := findServerIn(notFound, func(p string) bool { return p == "/usr/sbin/clickhouse-server" })
	if err != nil || bin != "/usr/sbin/clickhouse-server" || len(args) != 0 {
		t.Errorf("Debian layout: got %q %v %v", bin, args, err)
	}
	single := func(name string) (string, error) {
		if name == "clickhouse" {
			return "/opt/ch/clickhouse", nil
		}
		return "", errors.New("not found")
	}
	bin, args, err = findServerIn(single, none)
	if err != nil || bin != "/opt/ch/clickhouse" || len(args) != 1 || args[0] != "server" {
		t.Errorf("single binary: got %q %v %v", bin, args, err)
	}
}

func TestEnsureDoesNotStartRemote(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// 192.0.2.0/24 is TEST-NET-1: nothing answers there.
	_, stop, err := Ensure(ctx, Options{Addr: "192.0.2.1:9000", DataDir: t.TempDir()})
	defer stop()
	if err == nil || !strings.Contains(err.Error(), "not a local address") {
		t.Fatalf("err = %v, want a refusal to start for a remote address", err)
	}
}

func TestEnsureRefusesForeignListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, stop, err := Ensure(ctx, Options{Addr: l.Addr().String(), DataDir: t.TempDir()})
	defer stop()
	if err == nil || !strings.Contains(err.Error(), "does not answer the ClickHouse native protocol") {
		t.Fatalf("err = %v, want a refusal because the port is taken", err)
	}
}

func TestEnsureStartsStopsAndKeepsData(t *testing.T) {
	if _, _, err := findServer(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	srv, stop, err := Ensure(ctx, Options{Addr: addr, DataDir: dir})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Cleanup(stop)
	if srv.Addr != addr || !srv.Started || srv.Secrets != filepath.Join(dir, "secrets") {
		t.Fatalf("Ensure returned %+v, want %s started here with secrets under %s", srv, addr, dir)
	}
	execSQL(t, ctx, srv, "CREATE DATABASE IF NOT EXISTS chserver_probe")
	for _, f := range []string{"config.xml", "users.xml", "data", "log/clickhouse-server.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("expected %s in the private directory: %v", f, err)
		}
	}
	passwords := checkSecrets(t, srv)

	// A second caller finds the running server: without its password files
	// it is refused; with them, it gets the server and must not own it.
	if _, stop2, err := Ensure(ctx, Options{Addr: addr, DataDir: t.TempDir()}); !errors.Is(err, ErrNoSecrets) {
		stop2()
		t.Fatalf("second Ensure without password files: %v, want a refusal", err)
	}
	again, stop2, err := Ensure(ctx, Options{Addr: addr, DataDir: t.TempDir(), Secrets: srv.Secrets})
	if err != nil || again.Addr != addr || again.Started || again.Secrets != srv.Secrets {
		t.Fatalf("second Ensure: %+v, %v", again, err)
	}
	stop2()
	if !Answers(ctx, addr) {
		t.Fatal("the second caller's stop stopped a server it did not start")
	}

	t0 := time.Now()
	stop()
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("stop with an open client pool took %s; poll_interval should keep it near 1 s", d)
	}
	stop() // harmless twice
	if Answers(ctx, addr) {
		t.Fatal("server still answers after stop")
	}

	// Restart on the same directory: the data and the passwords are still there.
	srv3, stop3, err := Ensure(ctx, Options{Addr: addr, DataDir: dir})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(stop3)
	if again := checkSecrets(t, srv3); !maps.Equal(again, passwords) {
		t.Error("the passwords changed at a restart")
	}
	var n uint64
	if err := query(t, ctx, srv3, "SELECT count() FROM system.databases WHERE name = 'chserver_probe'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("database created before the restart: count %d, err %v", n, err)
	}
	stop3()
}

// checkSecrets checks that srv's folder holds a password file of mode 0600
// for every user, in a 0700 folder, that each differs from the others, and
// that the users config holds no password, only hashes; it returns the
// passwords.
func checkSecrets(t *testing.T, srv Server) map[string]string {
	t.Helper()
	if fi, err := os.Stat(srv.Secrets); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("secrets folder: %v, %v; want mode 0700", fi.Mode(), err)
	}
	users, err := os.ReadFile(filepath.Join(filepath.Dir(srv.Secrets), "users.xml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	seen := map[string]string{}
	for _, u := range chaccess.Names() {
		fi, err := os.Stat(srv.PasswordFile(u))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("password file of %s: %v; want mode 0600", u, err)
			continue
		}
		pw := password(t, srv, u)
		if len(pw) < 32 {
			t.Errorf("password of %s is %d characters, want 32 or more", u, len(pw))
		}
		if other, dup := seen[pw]; dup {
			t.Errorf("%s and %s have the same password", u, other)
		}
		seen[pw] = u
		out[u] = pw
		if bytes.Contains(users, []byte(pw)) {
			t.Errorf("users.xml holds %s's password", u)
		}
		if !bytes.Contains(users, []byte(chaccess.HashPassword(pw))) {
			t.Errorf("users.xml lacks %s's password hash", u)
		}
	}
	var parsed struct {
		DefaultProfile *struct{} `xml:"profiles>default"`
		DefaultUser    *struct{} `xml:"users>default"`
	}
	if err := xml.Unmarshal(users, &parsed); err != nil {
		t.Fatalf("users.xml: %v", err)
	}
	if parsed.DefaultProfile == nil || parsed.DefaultUser != nil {
		t.Errorf("users.xml must define the default profile and no default user:\n%s", users)
	}
	return out
}

func password(t *testing.T, srv Server, user string) string {
	t.Helper()
	s, err := secret.FromFile(srv.PasswordFile(user))
	if err != nil {
		t.Fatal(err)
	}
	return s.Reveal()
}

// connect logs in as the migrator, the development server's administrator.
func connect(t *testing.T, srv Server) clickhouse.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr},
		Auth: clickhouse.Auth{Username: chaccess.Migrator, Password: password(t, srv, chaccess.Migrator)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func execSQL(t *testing.T, ctx context.Context, srv Server, q string) {
	t.Helper()
	if err := connect(t, srv).Exec(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func query(t *testing.T, ctx context.Context, srv Server, q string) interface{ Scan(...any) error } {
	t.Helper()
	return connect(t, srv).QueryRow(ctx, q)
}
