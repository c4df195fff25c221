package chserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
)

// StartPrivate starts a private clickhouse-server on a free port on loopback,
// with its configuration, data and logs under dataDir, as Ensure does, and
// returns its address and the stop that ends it. Tests use it (through
// chservertest) so that each gets a server of its own.
func StartPrivate(ctx context.Context, dataDir string, logger *slog.Logger) (addr string, stop func(), err error) {
	port, err := freePort()
	if err != nil {
		return "", func() {}, fmt.Errorf("find a free port for clickhouse-server: %w", err)
	}
	return Ensure(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dataDir, logger)
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
