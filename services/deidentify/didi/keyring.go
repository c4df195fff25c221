package didi

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Recipient domains. Each has its own keys, so a patient's pseudonym in one
// cannot be linked to their pseudonym in another without both keys.
const (
	// DomainAnalytics is the pseudonym of the de-identified topics and of
	// ClickHouse: what analysts link journeys by.
	DomainAnalytics = "analytics"
	// DomainNationalReturn is the pseudonym carried on the national return
	// flow (dmic.national-return) only.
	DomainNationalReturn = "national-return"
)

// AbsentNoDomainPseudonym is the pseudonym_absent_reason of a record re-keyed
// for a domain it holds no pseudonym of (made before the domain had a key):
// the record then leaves with no pseudonym rather than another domain's.
const AbsentNoDomainPseudonym = "no pseudonym for the domain"

// KeyFileSuffix ends the name of every key file in a key directory.
const KeyFileSuffix = ".key"

// Domains lists the recipient domains a key directory must hold, analytics
// first.
func Domains() []string { return []string{DomainAnalytics, DomainNationalReturn} }

// KeySource gives the key ring to pseudonymise with. A Deidentifier asks for
// it on every record, so a ring swapped in by a rotation applies from the
// next record on; implementations must make that call safe for concurrent
// use and cheap (an atomic load).
type KeySource interface {
	KeyRing() *KeyRing
}

// KeyInfo describes one key version, never its secret.
type KeyInfo struct {
	Domain  string
	Version string
	Active  bool
	// File is the key file's path relative to the key directory
	// ("analytics/v1.key"); "" for a ring built in memory.
	File string
}

// KeyRing holds every loaded key version of every domain and which version
// of each is active. It is immutable: WithKeyFile and WithActive return a new
// ring, so a ring can be shared between goroutines and swapped atomically.
type KeyRing struct {
	dir     string
	domains []domainKeys // in Domains() order, then any other by name
}

type domainKeys struct {
	name     string
	versions []versionKey // in version order (compareVersions)
	active   int          // index into versions
}

type versionKey struct {
	key  Key
	file string // relative to the key directory
}

// LoadKeyDir loads a key directory:
//
//	DIR/<domain>/<version>.key    one file per key version, "<version>:<secret>"
//
// for every domain of Domains(). Each file is read by LoadKey (so a short
// secret or a file readable by everyone is refused) and the version inside it
// must equal its file name. DIR and each domain folder must not be readable
// or writable by everyone (mode & 0o006). Every domain needs at least one key,
// and no two domains may share a secret (their pseudonyms would be linkable).
// Hidden entries, sub-folders and files not ending in ".key" are ignored, as
// are folders of domains not in Domains().
//
// The active version of each domain is the highest in version order (see
// CompareVersions) until the rotation log says otherwise (WithActive).
//
// Every problem is reported at once, naming the file or folder; no message
// ever contains a secret or a line of a key file.
func LoadKeyDir(dir string) (*KeyRing, error) {
	if dir == "" {
		return nil, errors.New("deid: no key directory given")
	}
	if err := checkKeyDir(dir, "key directory"); err != nil {
		return nil, err
	}
	r := &KeyRing{dir: dir}
	var errs []error
	for _, domain := range Domains() {
		dk, err := loadDomain(dir, domain)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.domains = append(r.domains, dk)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := r.checkDistinct(); err != nil {
		return nil, err
	}
	return r, nil
}

// checkKeyDir refuses a missing folder, a file, or a folder open to everyone.
func checkKeyDir(path, what string) error {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("deid: %s %s does not exist: %w", what, path, fs.ErrNotExist)
		}
		return fmt.Errorf("deid: %s %s: %w", what, path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("deid: %s %s is not a folder", what, path)
	}
	if p := st.Mode().Perm(); p&0o006 != 0 {
		return fmt.Errorf("deid: %s %s is readable or writable by everyone (mode %#o); chmod 700 it", what, path, p)
	}
	return nil
}

func loadDomain(dir, domain string) (domainKeys, error) {
	ddir := filepath.Join(dir, domain)
	if err := checkKeyDir(ddir, "key folder"); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return domainKeys{}, fmt.Errorf("deid: key directory %s has no folder %s/: every domain (%s) needs one with at least one key",
				dir, domain, strings.Join(Domains(), ", "))
		}
		return domainKeys{}, err
	}
	entries, err := os.ReadDir(ddir)
	if err != nil {
		return domainKeys{}, fmt.Errorf("deid: key folder %s: %w", ddir, err)
	}
	dk := domainKeys{name: domain}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, KeyFileSuffix) || e.IsDir() {
			continue
		}
		vk, err := loadVersionFile(dir, domain, strings.TrimSuffix(name, KeyFileSuffix))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dk.versions = append(dk.versions, vk)
	}
	if err := errors.Join(errs...); err != nil {
		return domainKeys{}, err
	}
	if len(dk.versions) == 0 {
		return domainKeys{}, fmt.Errorf("deid: key folder %s holds no key (<version>%s)", ddir, KeyFileSuffix)
	}
	slices.SortFunc(dk.versions, func(a, b versionKey) int { return CompareVersions(a.key.Version, b.key.Version) })
	dk.active = len(dk.versions) - 1
	return dk, nil
}

// loadVersionFile loads DIR/<domain>/<version>.key and checks that the
// version inside is the file's.
func loadVersionFile(dir, domain, version string) (versionKey, error) {
	rel := filepath.Join(domain, version+KeyFileSuffix)
	path := filepath.Join(dir, rel)
	if !versionRE.MatchString(version) {
		return versionKey{}, fmt.Errorf("deid: key file %s: the name must be <version>%s, the version 1-32 characters of A-Z a-z 0-9 . _ -", path, KeyFileSuffix)
	}
	k, err := LoadKey(path)
	if err != nil {
		return versionKey{}, err
	}
	if k.Version != version {
		return versionKey{}, fmt.Errorf("deid: key file %s holds version %q: the version in the file must equal the file name", path, k.Version)
	}
	return versionKey{key: k, file: rel}, nil
}

// NewKeyRing builds a ring in memory with one active key per domain, for
// tests and the benchmark; the service loads a directory. The analytics
// domain is required (it is what every record carries); secrets must be at
// least MinSecretBytes and differ between domains.
func NewKeyRing(keys map[string]Key) (*KeyRing, error) {
	if _, ok := keys[DomainAnalytics]; !ok {
		return nil, fmt.Errorf("deid: key ring: no key for domain %s", DomainAnalytics)
	}
	r := &KeyRing{}
	var errs []error
	for domain, k := range keys {
		switch {
		case !versionRE.MatchString(domain):
			errs = append(errs, fmt.Errorf("deid: key ring: domain %q: must be 1-32 characters of A-Z a-z 0-9 . _ -", domain))
		case !versionRE.MatchString(k.Version):
			errs = append(errs, fmt.Errorf("deid: key ring: domain %s: key version must be 1-32 characters of A-Z a-z 0-9 . _ -", domain))
		case len(k.Secret) < MinSecretBytes:
			errs = append(errs, fmt.Errorf("deid: key ring: domain %s: secret is %d bytes, want at least %d", domain, len(k.Secret), MinSecretBytes))
		default:
			r.domains = append(r.domains, domainKeys{name: domain, versions: []versionKey{{key: k}}})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(r.domains, func(a, b domainKeys) int { return cmp.Compare(domainRank(a.name), domainRank(b.name)) })
	if err := r.checkDistinct(); err != nil {
		return nil, err
	}
	return r, nil
}

// domainRank orders Domains() first, in their order, then others by name.
func domainRank(name string) string {
	if i := slices.Index(Domains(), name); i >= 0 {
		return string(rune('0' + i))
	}
	return "~" + name
}

// checkDistinct refuses two domains that share a secret: their pseudonyms
// would be the same, which is exactly what separate domains must prevent.
func (r *KeyRing) checkDistinct() error {
	var errs []error
	for i, a := range r.domains {
		for _, b := range r.domains[i+1:] {
			for _, va := range a.versions {
				for _, vb := range b.versions {
					if bytes.Equal(va.key.Secret, vb.key.Secret) {
						errs = append(errs, fmt.Errorf("deid: %s and %s have the same secret: every domain needs its own key, else its pseudonyms can be linked to the other's",
							r.describe(a.name, va), r.describe(b.name, vb)))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (r *KeyRing) describe(domain string, v versionKey) string {
	if v.file != "" {
		return "key file " + filepath.Join(r.dir, v.file)
	}
	return "key " + domain + "/" + v.key.Version
}

// KeyRing returns r itself: a fixed ring is a KeySource that never rotates.
func (r *KeyRing) KeyRing() *KeyRing { return r }

// Dir is the key directory the ring was loaded from ("" when built in memory).
func (r *KeyRing) Dir() string { return r.dir }

// Domains lists the ring's domains, analytics first.
func (r *KeyRing) Domains() []string {
	out := make([]string, len(r.domains))
	for i, d := range r.domains {
		out[i] = d.name
	}
	return out
}

func (r *KeyRing) domain(name string) (int, bool) {
	for i := range r.domains {
		if r.domains[i].name == name {
			return i, true
		}
	}
	return 0, false
}

// HasDomain reports whether the ring has keys for domain.
func (r *KeyRing) HasDomain(domain string) bool {
	_, ok := r.domain(domain)
	return ok
}

// Active returns the active key of a domain.
func (r *KeyRing) Active(domain string) (Key, bool) {
	i, ok := r.domain(domain)
	if !ok {
		return Key{}, false
	}
	d := &r.domains[i]
	return d.versions[d.active].key, true
}

// ActiveVersions maps each domain to its active key version.
func (r *KeyRing) ActiveVersions() map[string]string {
	out := make(map[string]string, len(r.domains))
	for _, d := range r.domains {
		out[d.name] = d.versions[d.active].key.Version
	}
	return out
}

// HasVersion reports whether a version of a domain is loaded.
func (r *KeyRing) HasVersion(domain, version string) bool {
	i, ok := r.domain(domain)
	if !ok {
		return false
	}
	return slices.ContainsFunc(r.domains[i].versions, func(v versionKey) bool { return v.key.Version == version })
}

// Keys lists every loaded version of every domain, domains in ring order and
// versions in version order.
func (r *KeyRing) Keys() []KeyInfo {
	var out []KeyInfo
	for _, d := range r.domains {
		for i, v := range d.versions {
			out = append(out, KeyInfo{Domain: d.name, Version: v.key.Version, Active: i == d.active, File: v.file})
		}
	}
	return out
}

// KeyFile is the path of a version's key file in the ring's directory. It
// refuses a domain the ring does not have and a malformed version, so the
// path never leaves the directory.
func (r *KeyRing) KeyFile(domain, version string) (string, error) {
	if r.dir == "" {
		return "", errors.New("deid: the key ring was not loaded from a directory")
	}
	if !r.HasDomain(domain) {
		return "", fmt.Errorf("deid: no domain %q (domains: %s)", domain, strings.Join(r.Domains(), ", "))
	}
	if !versionRE.MatchString(version) {
		return "", errors.New("deid: key version must be 1-32 characters of A-Z a-z 0-9 . _ -")
	}
	return filepath.Join(r.dir, domain, version+KeyFileSuffix), nil
}

// WithKeyFile returns a ring that also holds the key file of a version, read
// and checked as LoadKeyDir does (the active versions do not change). A
// version already loaded returns r unchanged.
func (r *KeyRing) WithKeyFile(domain, version string) (*KeyRing, error) {
	if _, err := r.KeyFile(domain, version); err != nil {
		return nil, err
	}
	if r.HasVersion(domain, version) {
		return r, nil
	}
	if err := checkKeyDir(r.dir, "key directory"); err != nil {
		return nil, err
	}
	if err := checkKeyDir(filepath.Join(r.dir, domain), "key folder"); err != nil {
		return nil, err
	}
	vk, err := loadVersionFile(r.dir, domain, version)
	if err != nil {
		return nil, err
	}
	next := r.clone()
	i, _ := next.domain(domain)
	d := &next.domains[i]
	activeVersion := d.versions[d.active].key.Version
	d.versions = append(d.versions, vk)
	slices.SortFunc(d.versions, func(a, b versionKey) int { return CompareVersions(a.key.Version, b.key.Version) })
	d.active = slices.IndexFunc(d.versions, func(v versionKey) bool { return v.key.Version == activeVersion })
	if err := next.checkDistinct(); err != nil {
		return nil, err
	}
	return next, nil
}

// WithActive returns a ring in which version is the active key of domain.
// The version must be loaded (WithKeyFile).
func (r *KeyRing) WithActive(domain, version string) (*KeyRing, error) {
	i, ok := r.domain(domain)
	if !ok {
		return nil, fmt.Errorf("deid: no domain %q (domains: %s)", domain, strings.Join(r.Domains(), ", "))
	}
	j := slices.IndexFunc(r.domains[i].versions, func(v versionKey) bool { return v.key.Version == version })
	if j < 0 {
		return nil, fmt.Errorf("deid: domain %s has no key version %q loaded", domain, version)
	}
	if r.domains[i].active == j {
		return r, nil
	}
	next := r.clone()
	next.domains[i].active = j
	return next, nil
}

// clone copies the ring's structure; keys (immutable) are shared.
func (r *KeyRing) clone() *KeyRing {
	next := &KeyRing{dir: r.dir, domains: slices.Clone(r.domains)}
	for i := range next.domains {
		next.domains[i].versions = slices.Clone(next.domains[i].versions)
	}
	return next
}

// String lists domains and versions, never a secret.
func (r *KeyRing) String() string {
	var b strings.Builder
	b.WriteString("deid.KeyRing{")
	for i, d := range r.domains {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: active %q of %d", d.name, d.versions[d.active].key.Version, len(d.versions))
	}
	b.WriteString("}")
	return b.String()
}

// GoString implements fmt.GoStringer for %#v.
func (r *KeyRing) GoString() string { return r.String() }

// CompareVersions orders key versions "naturally": runs of digits compare as
// numbers and everything else as text, so dev-2 < dev-10 and 2026-04 <
// 2026-10. Versions that differ only in leading zeros (v01, v1) are ordered
// as text, so the order is total.
func CompareVersions(a, b string) int {
	x, y := a, b
	for x != "" && y != "" {
		rx, ry := leadingRun(x), leadingRun(y)
		var c int
		if isDigit(rx[0]) && isDigit(ry[0]) {
			nx, ny := strings.TrimLeft(rx, "0"), strings.TrimLeft(ry, "0")
			if c = cmp.Compare(len(nx), len(ny)); c == 0 {
				c = strings.Compare(nx, ny)
			}
		} else {
			c = strings.Compare(rx, ry)
		}
		if c != 0 {
			return c
		}
		x, y = x[len(rx):], y[len(ry):]
	}
	if c := cmp.Compare(len(x), len(y)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// leadingRun is the leading run of digits, or of non-digits, of a non-empty s.
func leadingRun(s string) string {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
