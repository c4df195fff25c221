package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// defaultClockTicks is USER_HZ on every Linux architecture Go supports; it is
// used when `getconf CLK_TCK` cannot be run.
const defaultClockTicks = 100

// clockTicks returns the kernel's clock ticks per second, the unit of utime
// and stime in /proc/<pid>/stat.
func clockTicks() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return defaultClockTicks
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		return defaultClockTicks
	}
	return n
}

// parseStatCPU returns utime+stime (in clock ticks) from the contents of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself contain spaces and parentheses, so fields are counted from the last
// ')'.
func parseStatCPU(stat []byte) (int64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("proc stat: no command name")
	}
	// After ") " come fields 3 (state), 4, ...; utime is field 14, stime 15.
	fields := strings.Fields(string(stat[end+1:]))
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want more than %d", len(fields), stime)
	}
	u, err := strconv.ParseInt(fields[utime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat utime: %w", err)
	}
	s, err := strconv.ParseInt(fields[stime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat stime: %w", err)
	}
	return u + s, nil
}

// parseStatusKB returns the value of a "Name:   1234 kB" line of
// /proc/<pid>/status, in kB.
func parseStatusKB(status []byte, name string) (int64, error) {
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, fmt.Errorf("proc status %s: no value", name)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc status %s: %w", name, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("proc status: no %s line", name)
}

// procReader reads CPU time and peak memory of processes from /proc.
type procReader struct {
	root  string // "/proc", or a fake tree in tests
	ticks int
}

func newProcReader() procReader { return procReader{root: "/proc", ticks: clockTicks()} }

// cpuSeconds is the user+system CPU time pid has used so far.
func (r procReader) cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join(r.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	t, err := parseStatCPU(b)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return float64(t) / float64(r.ticks), nil
}

// peakRSSMB is the process's peak resident set size (VmHWM) in MB (2^20 bytes).
func (r procReader) peakRSSMB(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join(r.root, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	kb, err := parseStatusKB(b, "VmHWM")
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return float64(kb) / 1024, nil
}

// findProcess returns the pid of a process whose command line contains every
// one of parts (0 if none). The private clickhouse-server is found this way:
// chserver does not expose its pid, but its --config-file lies under the
// bench's own var directory, so no other server can match.
func (r procReader) findProcess(parts ...string) (int, error) {
	entries, err := os.ReadDir(r.root)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", r.root, err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(r.root, e.Name(), "cmdline"))
		if err != nil {
			continue // exited, or not ours to read
		}
		line := string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
		match := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				match = false
				break
			}
		}
		if match {
			return pid, nil
		}
	}
	return 0, nil
}
