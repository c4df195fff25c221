package devstack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// ConsumerStages are the services that consume in a consumer group, and so
// can run as several instances (Config.Instances). Ingest is a door: its
// callers choose an instance.
var ConsumerStages = []string{"validate", "deidentify", "assign", "reconcile", "load"}

// Instance is the i-th instance of a service (1: the first, Procs[name]);
// nil if there is none.
func (s *Stack) Instance(name string, i int) *Process {
	if i == 1 {
		return s.Procs[name]
	}
	return s.Procs[InstanceName(name, i)]
}

// InstanceName is the process name of the i-th instance (i > 1) of a
// service: "reconcile-2".
func InstanceName(name string, i int) string { return name + "-" + strconv.Itoa(i) }

// Flag is the value given to -name on p's command line, "" if none.
func (p *Process) Flag(name string) string {
	for i, a := range p.Args {
		if a == "-"+name && i+1 < len(p.Args) {
			return p.Args[i+1]
		}
	}
	return ""
}

// startInstances starts instances 2..n of every consumer stage, each with
// the first instance's command line but its own listen addresses (every
// localhost:port the first was given, other than the broker's and
// ClickHouse's) and, for reconcile, its own state directory. It returns
// once each answers /healthz.
func (s *Stack) startInstances(ctx context.Context, n int) error {
	var started [][]string // per instance, its new addresses
	for i := 2; i <= n; i++ {
		for _, name := range ConsumerStages {
			args := slices.Clone(s.Procs[name].Args)
			var addrs []string
			for j, a := range args {
				switch {
				case j > 0 && args[j-1] == "-state-dir":
					args[j] = a + "-" + strconv.Itoa(i)
				case listenAddr.MatchString(a) && a != s.Brokers && a != s.CH.Addr:
					port, err := freePort()
					if err != nil {
						return fmt.Errorf("instance %d of %s: %w", i, name, err)
					}
					args[j] = net.JoinHostPort("localhost", strconv.Itoa(port))
					addrs = append(addrs, args[j])
				}
			}
			p := &Process{Name: InstanceName(name, i), Path: filepath.Join(s.cfg.BinDir, name), Args: args, Restart: true,
				out: s.writer(InstanceName(name, i))}
			if err := p.start(); err != nil {
				return err
			}
			s.Procs[p.Name] = p
			s.order = append(s.order, p)
			started = append(started, addrs)
		}
	}
	for _, addrs := range started {
		if err := waitAnyHealthz(ctx, addrs, 90*time.Second); err != nil {
			return fmt.Errorf("an added instance (%v) did not come up: %w", addrs, err)
		}
	}
	return nil
}

// listenAddr is a listen address the stack gives a service.
var listenAddr = regexp.MustCompile(`^localhost:\d+$`)

// waitAnyHealthz waits until /healthz answers 200 on one of addrs: an
// instance serves it on one of its addresses, gRPC on another.
func waitAnyHealthz(ctx context.Context, addrs []string, d time.Duration) error {
	deadline := time.Now().Add(d)
	client := &http.Client{Timeout: time.Second}
	for {
		var last error
		for _, a := range addrs {
			resp, err := client.Get("http://" + a + "/healthz")
			if err != nil {
				last = err
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s/healthz: %s", a, resp.Status)
		}
		if time.Now().After(deadline) {
			return last
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
