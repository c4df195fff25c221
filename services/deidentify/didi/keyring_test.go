package didi

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// testRing is a ring of k as the analytics key only.
func testRing(tb testing.TB, k Key) *KeyRing {
	tb.Helper()
	r, err := NewKeyRing(map[string]Key{DomainAnalytics: k})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// keyDir builds a key directory in a temporary folder. files maps
// "<domain>/<name>" to the file's content; every file gets mode 0600 and
// every folder 0700 unless changed afterwards.
func keyDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// secretOf is a 32-byte secret, distinct per fill byte, and its hex.
func secretOf(fill byte) []byte { return bytes.Repeat([]byte{fill}, 32) }
func hexKey(version string, fill byte) string {
	return version + ":" + hex.EncodeToString(secretOf(fill)) + "\n"
}

// encodings of a secret an error message must never contain.
func secretForms(secret []byte) []string {
	return []string{hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret),
		base64.RawURLEncoding.EncodeToString(secret), string(secret)}
}

func TestLoadKeyDir(t *testing.T) {
	dir := keyDir(t, map[string]string{
		"analytics/v1.key":        hexKey("v1", 1),
		"analytics/v2.key":        hexKey("v2", 2),
		"analytics/v10.key":       hexKey("v10", 3), // after v2: versions compare naturally
		"analytics/README":        "not a key, ignored",
		"analytics/.v9.key.swp":   "hidden, ignored",
		"national-return/nr1.key": "nr1:" + base64.StdEncoding.EncodeToString(secretOf(4)) + "\n",
		"other-domain/x.key":      hexKey("x", 5), // not a domain dmic knows: ignored
	})
	r, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Dir() != dir {
		t.Errorf("Dir = %q, want %q", r.Dir(), dir)
	}
	want := []KeyInfo{
		{DomainAnalytics, "v1", false, "analytics/v1.key"},
		{DomainAnalytics, "v2", false, "analytics/v2.key"},
		{DomainAnalytics, "v10", true, "analytics/v10.key"},
		{DomainNationalReturn, "nr1", true, "national-return/nr1.key"},
	}
	if got := r.Keys(); !slices.Equal(got, want) {
		t.Errorf("Keys =\n%v\nwant\n%v", got, want)
	}
	k, ok := r.Active(DomainAnalytics)
	if !ok || k.Version != "v10" || !bytes.Equal(k.Secret, secretOf(3)) {
		t.Errorf("active analytics key = %v, %v; want v10", k, ok)
	}
	if got := r.ActiveVersions(); got[DomainAnalytics] != "v10" || got[DomainNationalReturn] != "nr1" || len(got) != 2 {
		t.Errorf("ActiveVersions = %v", got)
	}
	if !slices.Equal(r.Domains(), Domains()) {
		t.Errorf("Domains = %v, want %v", r.Domains(), Domains())
	}
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%#v", r), fmt.Sprintf("%+v", r)} {
		for i := byte(1); i <= 4; i++ {
			for _, f := range secretForms(secretOf(i)) {
				if strings.Contains(s, f) {
					t.Errorf("printed ring %q holds a secret", s)
				}
			}
		}
	}
}

// Every refusal names the file or folder and never quotes a secret.
func TestLoadKeyDirRefuses(t *testing.T) {
	good := map[string]string{
		"analytics/v1.key":       hexKey("v1", 1),
		"national-return/v1.key": hexKey("v1", 2),
	}
	with := func(change map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for k, v := range change {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	short := "v1:" + hex.EncodeToString(secretOf(9)[:31]) + "\n"
	tests := []struct {
		name  string
		files map[string]string
		setup func(t *testing.T, dir string)
		want  []string // each in the error
	}{
		{"missing directory", good, func(t *testing.T, dir string) { must(t, os.RemoveAll(dir)) },
			[]string{"does not exist"}},
		{"directory is a file", good, func(t *testing.T, dir string) {
			must(t, os.RemoveAll(dir))
			must(t, os.WriteFile(dir, []byte("x"), 0o600))
		}, []string{"is not a folder"}},
		{"world-readable directory", good, func(t *testing.T, dir string) { must(t, os.Chmod(dir, 0o755)) },
			[]string{"readable or writable by everyone", "0755", "chmod 700"}},
		{"world-writable directory", good, func(t *testing.T, dir string) { must(t, os.Chmod(dir, 0o702)) },
			[]string{"readable or writable by everyone"}},
		{"world-readable domain folder", good, func(t *testing.T, dir string) { must(t, os.Chmod(filepath.Join(dir, "national-return"), 0o705)) },
			[]string{"national-return", "readable or writable by everyone"}},
		{"missing domain", with(map[string]string{"national-return/v1.key": ""}), func(t *testing.T, dir string) {
			must(t, os.RemoveAll(filepath.Join(dir, "national-return")))
		}, []string{"no folder national-return/"}},
		{"domain without a key", with(map[string]string{"national-return/v1.key": "", "national-return/notes.txt": "x"}), nil,
			[]string{"national-return", "holds no key"}},
		{"short secret", with(map[string]string{"analytics/v1.key": short}), nil,
			[]string{"analytics/v1.key", "at least 32"}},
		{"world-readable key file", good, func(t *testing.T, dir string) { must(t, os.Chmod(filepath.Join(dir, "analytics", "v1.key"), 0o644)) },
			[]string{"analytics/v1.key", "readable by everyone"}},
		{"version differs from the file name", with(map[string]string{"analytics/v2.key": hexKey("v1", 3)}), nil,
			[]string{"analytics/v2.key", `holds version "v1"`, "must equal the file name"}},
		{"file name is not a version", with(map[string]string{"analytics/v 3.key": hexKey("v1", 3)}), nil,
			[]string{"analytics/v 3.key", "<version>.key"}},
		{"two domains share a secret", with(map[string]string{"national-return/v1.key": hexKey("v1", 1)}), nil,
			[]string{"analytics/v1.key", "national-return/v1.key", "same secret"}},
		{"every problem at once", with(map[string]string{"analytics/v1.key": short, "national-return/v1.key": ""}), nil,
			[]string{"analytics/v1.key", "at least 32", "no folder national-return/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := keyDir(t, tt.files)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			r, err := LoadKeyDir(dir)
			if err == nil {
				t.Fatalf("LoadKeyDir = %v, want an error", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, fill := range []byte{1, 2, 3, 9} {
				for _, f := range secretForms(secretOf(fill)) {
					if strings.Contains(err.Error(), f) {
						t.Errorf("error %q contains a secret", err)
					}
				}
			}
			if strings.Contains(err.Error(), hex.EncodeToString(secretOf(9)[:31])) {
				t.Errorf("error %q contains the short secret", err)
			}
		})
	}
	t.Run("no directory given", func(t *testing.T) {
		if _, err := LoadKeyDir(""); err == nil {
			t.Error("LoadKeyDir(\"\") succeeded")
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeyRingWithKeyFileAndActive(t *testing.T) {
	dir := keyDir(t, map[string]string{
		"analytics/v1.key":       hexKey("v1", 1),
		"national-return/v1.key": hexKey("v1", 2),
	})
	r, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.KeyFile(DomainAnalytics, "v2")
	if err != nil || p != filepath.Join(dir, "analytics", "v2.key") {
		t.Fatalf("KeyFile = %q, %v", p, err)
	}
	if _, err := r.WithKeyFile(DomainAnalytics, "v2"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WithKeyFile of a missing file: err = %v, want fs.ErrNotExist", err)
	}
	if err := GenerateKeyFile(p, "v2"); err != nil {
		t.Fatal(err)
	}
	r2, err := r.WithKeyFile(DomainAnalytics, "v2")
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.ActiveVersions()[DomainAnalytics]; got != "v1" {
		t.Errorf("after WithKeyFile the active version is %q, want still v1", got)
	}
	r3, err := r2.WithActive(DomainAnalytics, "v2")
	if err != nil {
		t.Fatal(err)
	}
	if got := r3.ActiveVersions(); got[DomainAnalytics] != "v2" || got[DomainNationalReturn] != "v1" {
		t.Errorf("after WithActive: %v", got)
	}
	// The rings are values: the older ones are unchanged.
	if r.HasVersion(DomainAnalytics, "v2") || r2.ActiveVersions()[DomainAnalytics] != "v1" {
		t.Error("WithKeyFile or WithActive changed the ring they were called on")
	}
	if _, err := r3.WithActive(DomainAnalytics, "v3"); err == nil {
		t.Error("WithActive of a version not loaded succeeded")
	}
	if _, err := r3.WithActive("commissioner-x", "v1"); err == nil {
		t.Error("WithActive of an unknown domain succeeded")
	}
	if _, err := r.KeyFile("../analytics", "v1"); err == nil {
		t.Error("KeyFile accepted a domain that is not the ring's")
	}
	if _, err := r.KeyFile(DomainAnalytics, "a/b"); err == nil {
		t.Error("KeyFile accepted a version with a slash")
	}
}

func TestNewKeyRing(t *testing.T) {
	r, err := NewKeyRing(map[string]Key{DomainNationalReturn: testKey("n1", 2), DomainAnalytics: testKey("a1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Domains(), []string{DomainAnalytics, DomainNationalReturn}) {
		t.Errorf("Domains = %v, want analytics first", r.Domains())
	}
	for _, tt := range []struct {
		name string
		keys map[string]Key
		want string
	}{
		{"no analytics", map[string]Key{DomainNationalReturn: testKey("n1", 2)}, "no key for domain analytics"},
		{"short", map[string]Key{DomainAnalytics: {Version: "a1", Secret: []byte("short")}}, "at least 32"},
		{"shared secret", map[string]Key{DomainAnalytics: testKey("a1", 1), DomainNationalReturn: testKey("n1", 1)}, "same secret"},
	} {
		if _, err := NewKeyRing(tt.keys); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	sorted := []string{"0", "1", "2", "10", "a", "dev-1", "dev-2", "dev-10", "icb-2026-04", "icb-2026-10", "v1", "v01.1", "v1.2", "v1.10", "v2"}
	for i, a := range sorted {
		for j, b := range sorted {
			got := CompareVersions(a, b)
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if (got < 0) != (want < 0) || (got > 0) != (want > 0) {
				t.Errorf("CompareVersions(%q, %q) = %d, want sign %d", a, b, got, want)
			}
		}
	}
	if CompareVersions("v01", "v1") == 0 {
		t.Error("v01 and v1 compare equal: the order must be total")
	}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// bothDomains is a ring with an analytics and a national-return key.
func bothDomains(t testing.TB, av, nv string) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(map[string]Key{DomainAnalytics: testKey(av, 1), DomainNationalReturn: testKey(nv, 2)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func nationalReturn(t *testing.T, a *dmicv1.DeidentifiedActivity) *dmicv1.DomainPseudonym {
	t.Helper()
	var found *dmicv1.DomainPseudonym
	for _, p := range a.GetDomainPseudonyms() {
		if p.GetDomain() == DomainNationalReturn {
			if found != nil {
				t.Errorf("two national-return pseudonyms: %v", a.GetDomainPseudonyms())
			}
			found = p
		}
	}
	return found
}

// The same NHS number in an APC, an outpatient and an emergency care record
// gets one pseudonym per domain, different across domains.
func TestPseudonymsConsistentWithinDomainDistinctAcross(t *testing.T) {
	d := NewDeidentifier(bothDomains(t, "a1", "n1"), sampleRef(t))
	records := map[dmicv1.Dataset]*dmicv1.CommissioningRecord{}
	records[dmicv1.Dataset_DATASET_APC] = apcRecord()
	op := apcRecord()
	op.Activity = &dmicv1.CommissioningRecord_Outpatient{Outpatient: &dmicv1.OutpatientAttendance{AppointmentDate: "2025-06-01"}}
	records[dmicv1.Dataset_DATASET_OUTPATIENT] = op
	ec := apcRecord()
	ec.Activity = &dmicv1.CommissioningRecord_EmergencyCare{EmergencyCare: &dmicv1.EmergencyCareAttendance{EcArrivalDate: "2026-01-01"}}
	records[dmicv1.Dataset_DATASET_EMERGENCY_CARE] = ec

	analytics, national := map[string]bool{}, map[string]bool{}
	for ds, r := range records {
		a, err := d.Deidentify(ds, r)
		if err != nil {
			t.Fatal(err)
		}
		if a.GetPseudonymDomain() != DomainAnalytics || a.GetPseudonymKeyVersion() != "a1" || !hex64.MatchString(a.GetPseudoNhsNumber()) {
			t.Errorf("%v: analytics pseudonym %q (domain %q, version %q), want 64 hex under a1", ds, a.GetPseudoNhsNumber(), a.GetPseudonymDomain(), a.GetPseudonymKeyVersion())
		}
		if len(a.GetDomainPseudonyms()) != 1 {
			t.Errorf("%v: domain pseudonyms %v, want one (national-return)", ds, a.GetDomainPseudonyms())
		}
		nr := nationalReturn(t, a)
		if nr == nil || nr.GetKeyVersion() != "n1" || !hex64.MatchString(nr.GetPseudonym()) {
			t.Fatalf("%v: national-return pseudonym %v, want 64 hex under n1", ds, nr)
		}
		analytics[a.GetPseudoNhsNumber()] = true
		national[nr.GetPseudonym()] = true
		if a.GetPseudoNhsNumber() == nr.GetPseudonym() {
			t.Errorf("%v: the analytics and national-return pseudonyms are equal", ds)
		}
	}
	if len(analytics) != 1 || len(national) != 1 {
		t.Errorf("pseudonyms across data sets: analytics %v, national-return %v; want one each", analytics, national)
	}

	other := apcRecord()
	other.Patient.NhsNumber = "4010232137" // another valid number
	a, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, other)
	if err != nil {
		t.Fatal(err)
	}
	if analytics[a.GetPseudoNhsNumber()] || a.GetPseudoNhsNumber() == "" {
		t.Errorf("another NHS number got pseudonym %q", a.GetPseudoNhsNumber())
	}
	if nr := nationalReturn(t, a); nr == nil || national[nr.GetPseudonym()] {
		t.Errorf("another NHS number got national-return pseudonym %v", nr)
	}

	for _, tt := range []struct{ nhs, reason string }{{"", AbsentMissing}, {"   ", AbsentMissing}, {"9434765918", AbsentInvalid}, {"94347659", AbsentInvalid}} {
		r := apcRecord()
		r.Patient.NhsNumber = tt.nhs
		a, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r)
		if err != nil {
			t.Fatal(err)
		}
		if a.GetPseudoNhsNumber() != "" || a.GetPseudonymKeyVersion() != "" || len(a.GetDomainPseudonyms()) != 0 || a.GetPseudonymAbsentReason() != tt.reason {
			t.Errorf("NHS number %q: pseudonym %q version %q domain pseudonyms %v reason %q; want none in any domain, reason %q",
				tt.nhs, a.GetPseudoNhsNumber(), a.GetPseudonymKeyVersion(), a.GetDomainPseudonyms(), a.GetPseudonymAbsentReason(), tt.reason)
		}
	}
}

// swappable is a KeySource whose ring a test replaces, the way the key
// service does on a rotation.
type swappable struct{ p atomic.Pointer[KeyRing] }

func (s *swappable) KeyRing() *KeyRing { return s.p.Load() }

// A Deidentifier picks up a new ring on its next record, and swapping the
// ring while another goroutine de-identifies is race-free (run with -race).
func TestDeidentifierFollowsKeySource(t *testing.T) {
	var src swappable
	v1 := bothDomains(t, "a1", "n1")
	src.p.Store(v1)
	d := NewDeidentifier(&src, nil)
	first, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, apcRecord())
	if err != nil {
		t.Fatal(err)
	}
	v2, err := NewKeyRing(map[string]Key{DomainAnalytics: testKey("a2", 3), DomainNationalReturn: testKey("n1", 2)})
	if err != nil {
		t.Fatal(err)
	}
	src.p.Store(v2)
	second, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, apcRecord())
	if err != nil {
		t.Fatal(err)
	}
	if second.GetPseudonymKeyVersion() != "a2" || second.GetPseudoNhsNumber() == first.GetPseudoNhsNumber() {
		t.Errorf("after the swap: version %q, pseudonym changed %v; want a2 and a new pseudonym",
			second.GetPseudonymKeyVersion(), second.GetPseudoNhsNumber() != first.GetPseudoNhsNumber())
	}
	if nationalReturn(t, second).GetPseudonym() != nationalReturn(t, first).GetPseudonym() {
		t.Error("the national-return pseudonym changed although its key did not")
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				src.p.Store(v1)
			} else {
				src.p.Store(v2)
			}
		}
	}()
	for range 2000 {
		a, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, apcRecord())
		if err != nil {
			t.Fatal(err)
		}
		switch a.GetPseudonymKeyVersion() {
		case "a1":
			if a.GetPseudoNhsNumber() != first.GetPseudoNhsNumber() {
				t.Fatal("a1 pseudonym differs from the first one")
			}
		case "a2":
			if a.GetPseudoNhsNumber() != second.GetPseudoNhsNumber() {
				t.Fatal("a2 pseudonym differs from the second one")
			}
		default:
			t.Fatalf("key version %q", a.GetPseudonymKeyVersion())
		}
	}
	close(stop)
	wg.Wait()
}

// BenchmarkDeidentifyTwoDomains is BenchmarkDeidentify with the service's
// two domains: one more keyed hash and DomainPseudonym per record.
func BenchmarkDeidentifyTwoDomains(b *testing.B) {
	d := NewDeidentifier(bothDomains(b, "a1", "n1"), sampleRef(b))
	r := apcRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Deidentify(dmicv1.Dataset_DATASET_APC, r); err != nil {
			b.Fatal(err)
		}
	}
}
