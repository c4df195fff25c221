package didi

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// MinSecretBytes is the shortest secret accepted: 256 bits, the HMAC-SHA256
// block of security the pseudonyms are meant to have.
const MinSecretBytes = 32

// Key is one pseudonymisation key of one recipient domain. Version travels
// with every pseudonym made with it, so a rotated key is recognisable.
type Key struct {
	Version string
	Secret  []byte
}

// String, GoString and LogValue never show the secret, so a key printed by
// mistake (fmt, %#v, slog) cannot leak it.
func (k Key) String() string {
	return fmt.Sprintf("deid.Key{Version: %q, Secret: [REDACTED %d bytes]}", k.Version, len(k.Secret))
}

// GoString implements fmt.GoStringer for %#v.
func (k Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("version", k.Version), slog.Int("secret_bytes", len(k.Secret)))
}

var versionRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// LoadKey reads a key. With a path, the file's first line must be
// "<version>:<secret>", the secret in hex or base64; the file must not be
// readable by everyone (mode & 0o004). Secrets shorter than 32 bytes are
// refused. Error messages never contain the secret or the line.
func LoadKey(path string) (Key, error) {
	if path == "" {
		// Keys come only from key files in a key directory (LoadKeyDir).
		return Key{}, errors.New("deid: no key file given")
	}
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("deid: open key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("deid: key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return Key{}, fmt.Errorf("deid: key file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return Key{}, fmt.Errorf("deid: key file %s is readable by everyone (mode %#o); chmod 600 it", path, st.Mode().Perm())
	}
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return Key{}, fmt.Errorf("deid: read key file %s: %w", path, err)
	}
	k, err := parseKey(line)
	if err != nil {
		return Key{}, fmt.Errorf("deid: key file %s: %w", path, err)
	}
	return k, nil
}

// parseKey parses "<version>:<secret>". Hex is tried first: a secret of
// only hex digits is read as hex, anything else as standard or URL-safe
// base64, padded or not.
func parseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	version, enc, ok := strings.Cut(s, ":")
	if !ok {
		return Key{}, errors.New(`not in the form "<version>:<secret>"`)
	}
	if !versionRE.MatchString(version) {
		return Key{}, errors.New("key version must be 1-32 characters of A-Z a-z 0-9 . _ -")
	}
	secret, err := decodeSecret(strings.TrimSpace(enc))
	if err != nil {
		return Key{}, err
	}
	if len(secret) < MinSecretBytes {
		return Key{}, fmt.Errorf("secret is %d bytes, want at least %d", len(secret), MinSecretBytes)
	}
	return Key{Version: version, Secret: secret}, nil
}

func decodeSecret(enc string) ([]byte, error) {
	if enc == "" {
		return nil, errors.New("secret is empty")
	}
	if b, err := hex.DecodeString(enc); err == nil {
		return b, nil
	}
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := e.DecodeString(enc); err == nil {
			return b, nil
		}
	}
	// The decoders' errors quote an offset into the secret; say less.
	return nil, errors.New("secret is neither hex nor base64")
}

// GenerateKeyFile writes a new key file with 32 random bytes, hex-encoded,
// mode 0600, creating its directory (mode 0700) if needed. It refuses to overwrite an existing file (the error wraps
// fs.ErrExist), because replacing a key silently changes every pseudonym.
func GenerateKeyFile(path, version string) error {
	if !versionRE.MatchString(version) {
		return errors.New("deid: key version must be 1-32 characters of A-Z a-z 0-9 . _ -")
	}
	secret := make([]byte, MinSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("deid: generate key: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(version)
	buf.WriteByte(':')
	buf.WriteString(hex.EncodeToString(secret))
	buf.WriteByte('\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("deid: key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("deid: create key file: %w", err)
	}
	// The umask can only remove bits, but be explicit: a key is never shared.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("deid: chmod key file: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("deid: write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("deid: write key file: %w", err)
	}
	return nil
}
