package bench

import (
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
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

// gitCommit is the commit of the binaries under measurement (binDir), not
// of the harness: bench -bin may point at another checkout's build (a
// "before" build in a worktree, run from the "after" checkout). It is the
// VCS revision stamped in binDir's ingest; a build without one (Go stamps
// none in some git worktrees) is placed by the checkout binDir sits in, and
// failing that by the harness's own build and the working directory.
func gitCommit(ctx context.Context, binDir string) (commit string, dirty bool) {
	if bi, err := buildinfo.ReadFile(filepath.Join(binDir, "ingest")); err == nil {
		if commit, dirty = service.RevisionOf(bi); commit != "" {
			return commit, dirty
		}
	}
	for _, dir := range []string{filepath.Dir(filepath.Clean(binDir)), ""} {
		if commit, dirty = checkoutCommit(ctx, dir); commit != "" {
			return commit, dirty
		}
		if dir == "" {
			break
		}
	}
	if commit, dirty = service.BuildRevision(); commit != "" {
		return commit, dirty
	}
	return "unknown", false
}

// checkoutCommit is HEAD of the git checkout dir is in ("": the working
// directory) and whether tracked files differ from it; "" outside one.
func checkoutCommit(ctx context.Context, dir string) (commit string, dirty bool) {
	git := func(args ...string) ([]byte, error) {
		if dir != "" {
			args = append([]string{"-C", dir}, args...)
		}
		return exec.CommandContext(ctx, "git", args...).Output()
	}
	out, err := git("rev-parse", "HEAD")
	if err != nil {
		return "", false
	}
	commit = strings.TrimSpace(string(out))
	if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil {
		dirty = len(strings.TrimSpace(string(st))) > 0
	}
	return commit, dirty
}
