package service

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultMemoryLimit is -memory-limit's default: what a service may allocate,
// the Go runtime's memory and any store it keeps outside the Go heap. With the
// binary's own pages (about 26 to 35 MB resident) a service then stays under
// the 150 MB of issue 15 at any number of records, as long as what is live at
// once (a batch and its outputs) stays well below it; docs/performance.md
// (Memory) has each service's figures.
const DefaultMemoryLimit = 96 << 20

// DefaultMaxBatchBytes ends a stage's batch at 16 MiB of input. A batch and
// its outputs, decoded and encoded, are most of what a stage keeps live, a
// few times its input bytes; at this size they stay well inside
// DefaultMemoryLimit. The stages' batches of 10,000 messages of about 1 KB
// rarely reach it: it holds when messages are large.
const DefaultMaxBatchBytes = 16 << 20

// memoryLimitEnv is the Go runtime's own setting: when set, it is the limit,
// and -memory-limit and reservations are ignored.
const memoryLimitEnv = "GOMEMLIMIT"

// ByteSize is a flag value of bytes, written as GOMEMLIMIT is: a number with
// an optional unit B, KiB, MiB, GiB or TiB (96MiB), or 0 for none.
type ByteSize int64

// String implements flag.Value.
func (b ByteSize) String() string {
	for _, u := range byteUnits {
		if b != 0 && b%ByteSize(u.n) == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(num, u.name); ok {
			num, mult = rest, u.n
			break
		}
	}
	if rest, ok := strings.CutSuffix(num, "B"); ok && mult == 1 {
		num = rest
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("%q is not a size in bytes (a number with an optional unit B, KiB, MiB, GiB, TiB, such as 96MiB)", s)
	}
	*b = ByteSize(n * mult)
	return nil
}

var byteUnits = []struct {
	name string
	n    int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// memory is the process's one soft memory limit: the budget -memory-limit
// gives it, less what the service keeps outside the Go heap (Reserve), is
// the Go runtime's limit. Under it the collector runs only when the heap
// nears the limit, so garbage no longer grows to five times what is live
// (GOGC=400), and still rarely while what is live is small.
type memory struct {
	budget   int64
	reserved int64
	// fromEnv: GOMEMLIMIT is set, and the runtime has already applied it.
	fromEnv bool
}

// applyMemoryLimit sets the Go runtime's limit to budget (0: no limit),
// unless GOMEMLIMIT is set.
func applyMemoryLimit(budget ByteSize) *memory {
	m := &memory{budget: int64(budget), fromEnv: os.Getenv(memoryLimitEnv) != ""}
	m.apply()
	return m
}

func (m *memory) apply() {
	if m.fromEnv || m.budget == 0 {
		return
	}
	debug.SetMemoryLimit(m.budget - m.reserved)
}

// goLimit is the Go runtime's limit now (math.MaxInt64: none).
func (m *memory) goLimit() int64 { return debug.SetMemoryLimit(-1) }

// minGoMemory is the least Go memory a reservation may leave the runtime:
// below it a service does little but collect garbage.
const minGoMemory = 32 << 20

// ReserveMemory takes n bytes of the service's memory budget for what it
// keeps outside the Go heap (reconcile's state store: its cache and
// memtables), lowering the Go runtime's soft limit by as much, so that the
// process as a whole stays within -memory-limit. With GOMEMLIMIT set, or no
// limit, it changes nothing: GOMEMLIMIT is the runtime's limit as given.
func (d *Daemon) ReserveMemory(what string, n int64) error {
	m := d.memory
	if m == nil || m.fromEnv || m.budget == 0 {
		return nil
	}
	if m.budget-m.reserved-n < minGoMemory {
		return fmt.Errorf("-memory-limit %s: %s needs %s outside the Go heap, which leaves the Go runtime less than %s",
			ByteSize(m.budget), what, ByteSize(n), ByteSize(minGoMemory))
	}
	m.reserved += n
	m.apply()
	d.Log.Info("memory reserved outside the Go heap", "for", what, "bytes", n, "go_memory_limit", m.goLimit())
	return nil
}
