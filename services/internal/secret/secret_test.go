package secret_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/secret"
)

func TestSecretNeverPrints(t *testing.T) {
	s := secret.Of("hunter2", "test")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "password", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s), s.String(), logs.String()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %q", out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok", "s3cret\n", 0o600)
	s, err := secret.FromFile(ok)
	if err != nil || s.Reveal() != "s3cret" || s.Source() != "file "+ok {
		t.Fatalf("FromFile = %q %q %v", s.Reveal(), s.Source(), err)
	}
	if _, err := secret.FromFile(write("open", "x", 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable file: %v", err)
	}
	if _, err := secret.FromFile(write("empty", "\n", 0o600)); err == nil {
		t.Error("empty file accepted")
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("DMIC_TEST_SECRET", "from-env")
	s, err := secret.Load("", "DMIC_TEST_SECRET")
	if err != nil || s.Reveal() != "from-env" || s.Source() != "environment DMIC_TEST_SECRET" {
		t.Fatalf("Load from env = %q %q %v", s.Reveal(), s.Source(), err)
	}
	if _, err := secret.Load("", "DMIC_TEST_SECRET_UNSET"); !errors.Is(err, secret.ErrNone) {
		t.Errorf("Load with nothing set: %v, want ErrNone", err)
	}
}
