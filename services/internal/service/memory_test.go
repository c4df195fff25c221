package service

import (
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"96MiB": 96 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "2TiB": 2 << 40,
		"1000": 1000, "1000B": 1000, " 7MiB ": 7 << 20, "0": 0,
	} {
		var b ByteSize
		if err := b.Set(in); err != nil || b != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "1.5GiB", "96MB", "96M", "lots", "99999999999TiB"} {
		var b ByteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, b)
		}
	}
	for b, want := range map[ByteSize]string{96 << 20: "96MiB", 1000: "1000", 0: "0", 3 << 30: "3GiB", 1<<20 + 1: "1048577"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
	}
}

// The flag's default is the one limit every service gets; GOMEMLIMIT, the
// runtime's own setting, wins over it.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	var c Config
	if err := ParseFlags(newFlagSet(&c), nil); err != nil {
		t.Fatal(err)
	}
	if c.MemoryLimit != DefaultMemoryLimit {
		t.Fatalf("-memory-limit defaults to %s, want %s", c.MemoryLimit, ByteSize(DefaultMemoryLimit))
	}

	t.Setenv("GOMEMLIMIT", "")
	d := &Daemon{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d.memory = applyMemoryLimit(c.MemoryLimit)
	if got := debug.SetMemoryLimit(-1); got != DefaultMemoryLimit {
		t.Errorf("Go memory limit %d, want %d", got, DefaultMemoryLimit)
	}
	// A store outside the Go heap takes its share of the budget.
	if err := d.ReserveMemory("a store", 24<<20); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != DefaultMemoryLimit-24<<20 {
		t.Errorf("after reserving 24 MiB: Go memory limit %d, want %d", got, DefaultMemoryLimit-24<<20)
	}
	err := d.ReserveMemory("a large store", 64<<20)
	if err == nil || !strings.Contains(err.Error(), "a large store needs 64MiB") {
		t.Errorf("reserving more than the budget leaves: %v, want an error naming what and how much", err)
	}
	if got := debug.SetMemoryLimit(-1); got != DefaultMemoryLimit-24<<20 {
		t.Errorf("a refused reservation changed the limit to %d", got)
	}

	// 0: no limit.
	debug.SetMemoryLimit(before)
	d.memory = applyMemoryLimit(0)
	if err := d.ReserveMemory("a store", 24<<20); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("-memory-limit 0 set the limit to %d", got)
	}

	// GOMEMLIMIT is the limit as given: neither the flag nor a reservation
	// moves it.
	t.Setenv("GOMEMLIMIT", "200MiB")
	debug.SetMemoryLimit(200 << 20) // as the runtime did at start
	d.memory = applyMemoryLimit(c.MemoryLimit)
	if err := d.ReserveMemory("a store", 24<<20); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 200<<20 {
		t.Errorf("with GOMEMLIMIT=200MiB the limit is %d", got)
	}
}

// A batch bounded by more bytes than the whole memory budget is refused.
func TestMaxBatchBytesWithinMemoryLimit(t *testing.T) {
	c := validConfig(t)
	c.MemoryLimit, c.MaxBatchBytes = 64<<20, 64<<20
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "-max-batch-bytes 64MiB") {
		t.Errorf("Validate = %v, want -max-batch-bytes refused", err)
	}
	c.MaxBatchBytes = 16 << 20
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}
