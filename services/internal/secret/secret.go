// Package secret holds credentials (passwords, SCRAM secrets, private keys'
// passphrases) read from a file or the environment. A command line is never a
// source: it is visible to every user of the machine (ps, /proc/<pid>/cmdline)
// and lands in shell histories and supervisors' logs. A Secret prints, logs
// and formats as [REDACTED]; only Reveal gives its value, at the one place
// that hands it to a library.
package secret

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret is a credential and where it came from.
type Secret struct {
	value  string
	source string
}

const redacted = "[REDACTED]"

// String hides the value.
func (s Secret) String() string { return redacted }

// GoString hides the value from %#v.
func (s Secret) GoString() string { return "secret.Secret{" + redacted + ", from " + s.source + "}" }

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format hides the value from every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// Reveal is the value, for the library call that needs it. Do not log it.
func (s Secret) Reveal() string { return s.value }

// Source says where the secret came from ("file /run/secrets/x", "environment
// DMIC_X"), which may be logged.
func (s Secret) Source() string { return s.source }

// IsZero reports whether no secret was loaded.
func (s Secret) IsZero() bool { return s.source == "" }

// ErrNone is returned by Load when neither source is set.
var ErrNone = errors.New("no secret given")

// FromFile reads a secret from path; one trailing newline (as editors and
// `echo` leave) is dropped. An empty file is an error. A file that other
// users may read is refused: a secret's file is mode 0600 or 0400 (0640 and
// 0440 are allowed for a group such as a container's secrets group).
func FromFile(path string) (Secret, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Secret{}, fmt.Errorf("secret file: %w", err)
	}
	if fi.Mode().Perm()&0o037 != 0 {
		return Secret{}, fmt.Errorf("secret file %s: mode %04o lets other users read or anyone write it; make it 0600 (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Secret{}, fmt.Errorf("secret file: %w", err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return Secret{}, fmt.Errorf("secret file %s: empty", path)
	}
	return Secret{value: v, source: "file " + path}, nil
}

// FromEnv reads a secret from the environment variable name.
func FromEnv(name string) (Secret, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return Secret{}, fmt.Errorf("environment variable %s: %w", name, ErrNone)
	}
	return Secret{value: v, source: "environment " + name}, nil
}

// Load reads the secret from file when file is set, else from the
// environment variable env; ErrNone (wrapped) when neither is set.
func Load(file, env string) (Secret, error) {
	if file != "" {
		return FromFile(file)
	}
	if env != "" {
		if _, ok := os.LookupEnv(env); ok {
			return FromEnv(env)
		}
	}
	return Secret{}, fmt.Errorf("neither a file nor %s: %w", env, ErrNone)
}

// Of wraps a value produced in memory (a generated development password) as
// a Secret, with a source to log.
func Of(value, source string) Secret { return Secret{value: value, source: source} }
