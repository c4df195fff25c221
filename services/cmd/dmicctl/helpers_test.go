package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// serveGRPC serves what register adds on a TCP port until the test ends, and
// returns its address.
func serveGRPC(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	srv := grpc.NewServer()
	register(srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

// command is a dmicctl command over the services' gRPC APIs (spec, key).
type command func(ctx context.Context, args []string, svcs []endpoint, stdout, stderr io.Writer, timeout time.Duration) int

// runner runs cmd with args and answers its exit status, output and errors.
func runner(ctx context.Context, cmd command, svcs []endpoint) func(args ...string) (int, string, string) {
	return func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cmd(ctx, args, svcs, &out, &errb, 10*time.Second)
		return code, out.String(), errb.String()
	}
}
