package chserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
)

// ForTest returns the address of a ClickHouse for a test: CLICKHOUSE_ADDR if a
// server answers there, otherwise a private server started on a free port in a
// temporary directory and stopped when the test (and its subtests) finish.
//
// When clickhouse-server is not installed it skips the test, except in CI (env
// CI set), where a missing server must fail loudly rather than turn the suite
// green by skipping.
func ForTest(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	defer cancel()
	if addr := os.Getenv("CLICKHOUSE_ADDR"); addr != "" {
		if answers(ctx, addr) {
			return addr
		}
		t.Logf("CLICKHOUSE_ADDR=%s does not answer; starting a private clickhouse-server", addr)
	}
	if _, _, err := findServer(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("skipping: %v", err)
		}
		t.Fatalf("CI is set and ClickHouse is needed: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("find a free port for clickhouse-server: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	addr, stop, err := Ensure(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t.TempDir(), logger)
	if err != nil {
		if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
			t.Skipf("skipping: %v", err)
		}
		t.Fatalf("start clickhouse-server for test: %v", err)
	}
	// Registered after TempDir, so it runs first: the server has exited before
	// its directory is removed.
	t.Cleanup(stop)
	return addr
}

// freePort asks the kernel for a free TCP port on loopback. Another process can
// take it before the server binds it; the start then fails with a clear error.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
