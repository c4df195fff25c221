package chserver

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestRenderConfig(t *testing.T) {
	cfg := renderConfig("/tmp/a&b", 19001)
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
	if parsed.HTTPPort != nil || parsed.Interport != nil {
		t.Errorf("HTTP and interserver ports must be disabled, got %v %v", parsed.HTTPPort, parsed.Interport)
	}
	if len(parsed.ListenHost) != 1 || parsed.ListenHost[0] != "127.0.0.1" {
		t.Errorf("listen_host = %v, want [127.0.0.1]", parsed.ListenHost)
	}
	for name, got := range map[string]string{"path": parsed.Path, "users_config": parsed.Users, "log": parsed.Log} {
		if !strings.HasPrefix(got, "/tmp/a&b/") {
			t.Errorf("%s = %q, want it under the private directory", name, got)
		}
	}
	var users struct {
		XMLName xml.Name `xml:"yandex"`
		Default struct {
			Password *string `xml:"password"`
			Profile  string  `xml:"profile"`
		} `xml:"users>default"`
	}
	if err := xml.Unmarshal([]byte(usersXML), &users); err != nil {
		t.Fatalf("users.xml is not XML: %v", err)
	}
	if users.Default.Password == nil || *users.Default.Password != "" || users.Default.Profile != "default" {
		t.Errorf("users.xml must define user default with an empty password and profile default: %+v", users.Default)
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
	_, stop, err := Ensure(ctx, "192.0.2.1:9000", t.TempDir(), nil)
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
	_, stop, err := Ensure(ctx, l.Addr().String(), t.TempDir(), nil)
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

	got, stop, err := Ensure(ctx, addr, dir, nil)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Cleanup(stop)
	if got != addr {
		t.Fatalf("Ensure returned %q, want %q", got, addr)
	}
	execSQL(t, ctx, addr, "CREATE DATABASE IF NOT EXISTS chserver_probe")
	for _, f := range []string{"config.xml", "users.xml", "data", "log/clickhouse-server.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("expected %s in the private directory: %v", f, err)
		}
	}

	// A second caller finds the running server and must not own it.
	again, stop2, err := Ensure(ctx, addr, t.TempDir(), nil)
	if err != nil || again != addr {
		t.Fatalf("second Ensure: %q, %v", again, err)
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

	// Restart on the same directory: the data is still there.
	_, stop3, err := Ensure(ctx, addr, dir, nil)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(stop3)
	var n uint64
	if err := query(t, ctx, addr, "SELECT count() FROM system.databases WHERE name = 'chserver_probe'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("database created before the restart: count %d, err %v", n, err)
	}
	stop3()
}

func connect(t *testing.T, addr string) clickhouse.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func execSQL(t *testing.T, ctx context.Context, addr, q string) {
	t.Helper()
	if err := connect(t, addr).Exec(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func query(t *testing.T, ctx context.Context, addr, q string) interface{ Scan(...any) error } {
	t.Helper()
	return connect(t, addr).QueryRow(ctx, q)
}
