package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procSample is what the kernel counts for a process, read at both ends of a
// run. These figures carry from one machine to another better than seconds
// do: a system call or a context switch costs more on one kernel than
// another, but the pipeline makes as many of them on each.
type procSample struct {
	UserS, SystemS float64
	// Voluntary and involuntary context switches, summed over the process's
	// threads alive at the time of reading (the kernel keeps them per thread;
	// Go rarely ends a thread, so the sum loses little).
	VoluntaryCS, InvoluntaryCS int64
	// Syscalls counts read-like and write-like system calls (syscr + syscw of
	// /proc/<pid>/io: read, write, sendmsg, recvmsg and their kin), for the
	// whole process. Other system calls (futex, epoll_wait) are not counted.
	Syscalls int64
}

func (a procSample) minus(b procSample) procSample {
	return procSample{UserS: a.UserS - b.UserS, SystemS: a.SystemS - b.SystemS,
		VoluntaryCS: a.VoluntaryCS - b.VoluntaryCS, InvoluntaryCS: a.InvoluntaryCS - b.InvoluntaryCS, Syscalls: a.Syscalls - b.Syscalls}
}

// sample reads pid's counters. A counter that cannot be read (io needs the
// same user) is left zero and named in the error, which the caller may keep
// as a warning: the CPU figures are still good.
func (r procReader) sample(pid int) (procSample, error) {
	var s procSample
	dir := filepath.Join(r.root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	u, sys, err := parseStatUserSystem(stat)
	if err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	s.UserS, s.SystemS = float64(u)/float64(r.ticks), float64(sys)/float64(r.ticks)
	var problems []string
	tasks, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, "task", t.Name(), "status"))
		if err != nil {
			continue // the thread ended
		}
		v, _ := parseStatusCount(b, "voluntary_ctxt_switches")
		n, _ := parseStatusCount(b, "nonvoluntary_ctxt_switches")
		s.VoluntaryCS += v
		s.InvoluntaryCS += n
	}
	if io, err := os.ReadFile(filepath.Join(dir, "io")); err != nil {
		problems = append(problems, err.Error())
	} else {
		rd, err1 := parseStatusCount(io, "syscr")
		wr, err2 := parseStatusCount(io, "syscw")
		if err1 != nil || err2 != nil {
			problems = append(problems, fmt.Sprintf("pid %d io: %v %v", pid, err1, err2))
		}
		s.Syscalls = rd + wr
	}
	if len(problems) > 0 {
		return s, fmt.Errorf("pid %d: %s", pid, strings.Join(problems, "; "))
	}
	return s, nil
}

// parseStatUserSystem returns utime and stime (clock ticks) of a
// /proc/<pid>/stat; see parseStatCPU.
func parseStatUserSystem(stat []byte) (user, system int64, err error) {
	total, err := parseStatCPU(stat)
	if err != nil {
		return 0, 0, err
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	user, err = strconv.ParseInt(fields[14-3], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("proc stat utime: %w", err)
	}
	return user, total - user, nil
}

// parseStatusCount returns the number of a "name:\t123" line (status, io).
func parseStatusCount(b []byte, name string) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == name {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s line", name)
}

func readSamples(r procReader, pids map[string]int) (map[string]procSample, []error) {
	out := map[string]procSample{}
	var errs []error
	for n, pid := range pids {
		if pid == 0 {
			continue
		}
		s, err := r.sample(pid)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
		if s.UserS+s.SystemS > 0 || err == nil {
			out[n] = s
		}
	}
	return out, errs
}
