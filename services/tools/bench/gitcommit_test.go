package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The commit recorded is that of the binaries under measurement: -bin may
// point at a "before" build in another checkout while the harness runs from
// the "after" one (two results of 2026-12-02 carried the wrong commit that
// way). A build without a VCS stamp is placed by the checkout it sits in.
func TestGitCommitIsTheBinariesCheckout(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	ctx := context.Background()
	repo := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(repo, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "f")
	run("commit", "-q", "-m", "c")
	head := run("rev-parse", "HEAD")
	bin := filepath.Join(repo, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// Not a Go binary: no build info, so the checkout decides.
	if err := os.WriteFile(filepath.Join(bin, "ingest"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, dirty := gitCommit(ctx, bin); got != head || dirty {
		t.Errorf("gitCommit(%s) = %s, %v; want the checkout's %s, clean", bin, got, dirty, head)
	}
	if err := os.WriteFile(filepath.Join(repo, "f"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, dirty := gitCommit(ctx, bin); got != head || !dirty {
		t.Errorf("gitCommit(%s) after a change = %s, %v; want %s, dirty", bin, got, dirty, head)
	}
}
