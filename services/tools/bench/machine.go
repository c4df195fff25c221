package bench

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/dmic-nhs/dmic/services/internal/service"
)

// describeMachine reports the machine, the Go toolchain that built the
// harness and the ClickHouse server of the run.
func describeMachine(ctx context.Context, conn driver.Conn) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := parseStatusKB(b, "MemTotal"); err == nil {
			m.MemoryMB = kb / 1024
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if conn != nil {
		var v string
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err == nil {
			m.ClickHouseVersion = v
		}
	}
	return m
}

// gitCommit is the revision the harness was built from (stamped by
// `go build -buildvcs=true`), else the HEAD of the repository in the working
// directory; dirty reports uncommitted changes.
func gitCommit(ctx context.Context) (commit string, dirty bool) {
	if commit, dirty = service.BuildRevision(); commit != "" {
		return commit, dirty
	}
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	commit = strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		dirty = len(strings.TrimSpace(string(st))) > 0
	}
	return commit, dirty
}
