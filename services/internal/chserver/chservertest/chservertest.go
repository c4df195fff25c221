// Package chservertest gives a test a ClickHouse server to talk to: the one at
// CLICKHOUSE_ADDR if it answers, else a private one of its own (chserver).
package chservertest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/chserver"
)

// Addr returns the address of a ClickHouse for a test: CLICKHOUSE_ADDR if a
// server answers there, otherwise a private server started on a free port in a
// temporary directory and stopped when the test (and its subtests) finish.
//
// When clickhouse-server is not installed it skips the test, except in CI (env
// CI set), where a missing server must fail loudly rather than turn the suite
// green by skipping.
func Addr(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*chserver.StartTimeout)
	defer cancel()
	if addr := os.Getenv("CLICKHOUSE_ADDR"); addr != "" {
		if chserver.Answers(ctx, addr) {
			return addr
		}
		t.Logf("CLICKHOUSE_ADDR=%s does not answer; starting a private clickhouse-server", addr)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	addr, stop, err := chserver.StartPrivate(ctx, t.TempDir(), logger)
	if err != nil {
		if errors.Is(err, chserver.ErrNotInstalled) {
			if os.Getenv("CI") == "" {
				t.Skipf("skipping: %v", err)
			}
			t.Fatalf("CI is set and ClickHouse is needed: %v", err)
		}
		t.Fatalf("start clickhouse-server for test: %v", err)
	}
	// Registered after TempDir, so it runs first: the server has exited before
	// its directory is removed.
	t.Cleanup(stop)
	return addr
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
