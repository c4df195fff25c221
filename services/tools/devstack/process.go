// Package devstack runs the whole pipeline on one machine as separate
// processes: the embedded broker, ClickHouse (started if none answers), every
// service, and the sample generator. `make run` and the end-to-end test use it.
package devstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is one supervised child process. It is restarted when it exits
// unexpectedly (e.g. after kill -9), with a short backoff.
type Process struct {
	Name string
	Path string
	Args []string
	Env  []string
	// Restart re-runs the process when it exits while the stack is up.
	Restart bool

	out *prefixWriter

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
	starts  int
}

// Pid is the current process id, 0 if not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Starts is how many times the process was started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

func (p *Process) start() error {
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	// Own process group: Ctrl-C in the terminal reaches the supervisor only,
	// which then stops children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.starts++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		close(exited)
		p.mu.Lock()
		stopped := p.stopped
		p.mu.Unlock()
		if stopped || (!p.Restart && err == nil) {
			return
		}
		fmt.Fprintf(p.out, "exited unexpectedly (%v)\n", err)
		if p.Restart {
			time.Sleep(time.Second)
			p.mu.Lock()
			stopped = p.stopped
			p.mu.Unlock()
			if !stopped {
				fmt.Fprintf(p.out, "restarting\n")
				if err := p.start(); err != nil {
					fmt.Fprintf(p.out, "restart failed: %v\n", err)
				}
			}
		}
	}()
	return nil
}

// stop sends SIGTERM and waits up to grace, then kills.
func (p *Process) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopped = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Wait blocks until the current run of the process exits or ctx ends.
func (p *Process) Wait(ctx context.Context) error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ExitCode of the last run (valid after Wait).
func (p *Process) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// prefixWriter writes each line of a child's output with its name in front.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func newPrefixWriter(mu *sync.Mutex, w io.Writer, name string, width int) *prefixWriter {
	return &prefixWriter{mu: mu, w: w, prefix: fmt.Sprintf("%-*s | ", width, name)}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := indexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
