package chserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/secret"
)

// passwordBytes is the entropy of a generated password: 192 bits, written as
// 48 hex digits, which need no quoting in XML, a DSN or a shell.
const passwordBytes = 24

// ensureSecrets makes sure dir holds a password file for every dmic user,
// generating the missing ones (mode 0600, in a 0700 folder), and returns each
// user's password hash for the users config. A password, once made, is kept:
// the services, the client configs and whoever copied it keep working across
// restarts.
func ensureSecrets(dir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("clickhouse secrets folder: %w", err)
	}
	// MkdirAll leaves an existing folder's mode alone.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("clickhouse secrets folder: %w", err)
	}
	hashes := map[string]string{}
	for _, user := range chaccess.Names() {
		path := filepath.Join(dir, user)
		if err := generatePassword(path); err != nil {
			return nil, err
		}
		s, err := secret.FromFile(path)
		if err != nil {
			return nil, fmt.Errorf("password of clickhouse user %s: %w", user, err)
		}
		hashes[user] = chaccess.HashPassword(s.Reveal())
	}
	return hashes, nil
}

// generatePassword writes a new random password to path unless a file is
// there already. O_EXCL: two processes starting at once cannot overwrite each
// other's password.
func generatePassword(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clickhouse password file: %w", err)
	}
	b := make([]byte, passwordBytes)
	if _, err := rand.Read(b); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("generate a clickhouse password: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(b) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write clickhouse password file %s: %w", path, err)
	}
	return nil
}

// WriteClientConfig writes a clickhouse-client configuration (mode 0600) that
// logs in to the server at addr as user with the password in passwordFile:
// `clickhouse-client --config-file PATH` then needs no password on its
// command line, where every user of the machine could read it.
// clickhouse-client 18.16 and current releases read host, port, user and
// password from it.
func WriteClientConfig(path, addr, user, passwordFile string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("clickhouse client config: address %q: %w", addr, err)
	}
	pw, err := secret.FromFile(passwordFile)
	if err != nil {
		return fmt.Errorf("clickhouse client config for %s: %w", user, err)
	}
	var b bytes.Buffer
	// No double hyphen in the comment: it would end the XML comment early.
	b.WriteString("<?xml version=\"1.0\"?>\n<!-- A clickhouse-client configuration written by dmic. It holds a password: keep it mode 0600. -->\n<config>\n")
	for _, kv := range [][2]string{{"host", host}, {"port", port}, {"user", user}, {"password", pw.Reveal()}} {
		fmt.Fprintf(&b, "    <%s>%s</%s>\n", kv[0], xmlText(kv[1]), kv[0])
	}
	b.WriteString("</config>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("clickhouse client config: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("clickhouse client config: %w", err)
	}
	// WriteFile keeps the mode of a file that exists.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("clickhouse client config: %w", err)
	}
	return nil
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
