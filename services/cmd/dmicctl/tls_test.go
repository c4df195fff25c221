package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/tools/devpki"
)

// dmicctl finds its certificates in a development PKI as make run writes
// it, or in the files named; a problem with either is said, all at once.
func TestTLSFlags(t *testing.T) {
	dir := devpki.Dir{Path: filepath.Join(t.TempDir(), "pki")}
	if _, err := dir.Ensure(time.Now(), devpki.Subjects([]string{"validate"}, []string{"RCF"})); err != nil {
		t.Fatal(err)
	}
	w, err := (&tlsFlags{pki: dir.Path}).load()
	if err != nil || w.operator == nil || w.custodian == nil || w.operator == w.custodian {
		t.Errorf("from the development PKI: %+v, %v; want the operator's and the key custodian's certificates", w, err)
	}
	w, err = (&tlsFlags{cert: dir.Cert(devpki.OperatorFile), key: dir.Key(devpki.OperatorFile), ca: dir.CA()}).load()
	if err != nil || w.operator == nil || w.custodian != w.operator {
		t.Errorf("from -tls-cert: %+v, %v; want that certificate for every call", w, err)
	}
	for _, tc := range []struct {
		flags tlsFlags
		want  []string
	}{
		{tlsFlags{}, []string{"no client certificate"}},
		{tlsFlags{cert: dir.Cert(devpki.OperatorFile)}, []string{"give both"}},
		{tlsFlags{cert: dir.Cert(devpki.OperatorFile), key: dir.Key(devpki.NationalFile), ca: dir.Key(devpki.NationalFile)},
			[]string{"-tls-ca: certificate authorities", "-tls-cert, -tls-key: certificate", "does not match"}},
	} {
		_, err := tc.flags.load()
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v, want it to say %q", tc.flags, err, w)
			}
		}
	}
}
