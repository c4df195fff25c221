package chserver

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// StartPrivate starts a private clickhouse-server on a free port on loopback,
// with its configuration, data, logs and password files under o.DataDir, as
// Ensure does, and returns it and the stop that ends it. Tests use it (through
// chservertest) so that each gets a server of its own.
// o.Addr is ignored; o.Secrets too (the server is always started here).
func StartPrivate(ctx context.Context, o Options) (srv Server, stop func(), err error) {
	port, err := freePort()
	if err != nil {
		return Server{}, func() {}, fmt.Errorf("find a free port for clickhouse-server: %w", err)
	}
	o.Addr, o.Secrets = net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), ""
	return Ensure(ctx, o)
}

// FreePort asks the kernel for a free TCP port on loopback (for a started
// server's HTTP port, say). Another process can take it before it is used.
func FreePort() (int, error) { return freePort() }

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
