package devpki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// DataCentre is the ODS code the development stack gives its own
// organisation (the data centre: its services, operators, key custodians
// and analysts). A made-up code of the right form.
const DataCentre = "0DC"

// NationalOrg is the national exchange's organisation (SUS, NHS England).
const NationalOrg = "X26"

// Validity of what Ensure issues, and how close to its end a certificate is
// issued again.
const (
	AuthorityValidity = 5 * 365 * 24 * time.Hour
	LeafValidity      = 365 * 24 * time.Hour
	RenewBefore       = 30 * 24 * time.Hour
)

// Subject is one certificate of a development PKI: its files are
// <File>.crt and <File>.key.
type Subject struct {
	File string
	Name string
	Role identity.Role
	Org  string
	// Server: the certificate also serves TLS, on localhost.
	Server bool
}

// The file names of the people's and exchanges' certificates.
const (
	OperatorFile     = "operator"
	KeyCustodianFile = "key-custodian"
	AnalystFile      = "analyst"
	NationalFile     = "national"
)

// ServiceFile is the file name of a service's certificate.
func ServiceFile(service string) string { return "service-" + service }

// ProviderFile is the file name of a provider's certificate.
func ProviderFile(org string) string { return "provider-" + org }

// Subjects are the certificates of a development stack: each service (a
// server certificate that is also a client one), the operator, the key
// custodian, an analyst, the national exchange, and each provider in
// providers.
func Subjects(services, providers []string) []Subject {
	var out []Subject
	for _, s := range services {
		out = append(out, Subject{File: ServiceFile(s), Name: s, Role: identity.Service, Org: DataCentre, Server: true})
	}
	out = append(out,
		Subject{File: OperatorFile, Name: "development operator", Role: identity.Operator, Org: DataCentre},
		Subject{File: KeyCustodianFile, Name: "development key custodian", Role: identity.KeyCustodian, Org: DataCentre},
		Subject{File: AnalystFile, Name: "development analyst", Role: identity.Analyst, Org: DataCentre},
		Subject{File: NationalFile, Name: "national exchange (sample)", Role: identity.National, Org: NationalOrg},
	)
	for _, p := range providers {
		out = append(out, Subject{File: ProviderFile(p), Name: p + " submission system (sample)", Role: identity.Provider, Org: p})
	}
	return out
}

// Dir is a development PKI on disk: ca.crt and ca.key, and <file>.crt and
// <file>.key per subject. Keys are mode 0600 in a 0700 folder.
type Dir struct{ Path string }

// CA is the authority's certificate: what every server and client trusts.
func (d Dir) CA() string { return filepath.Join(d.Path, "ca.crt") }

// Cert is a subject's certificate file.
func (d Dir) Cert(file string) string { return filepath.Join(d.Path, file+".crt") }

// Key is a subject's key file.
func (d Dir) Key(file string) string { return filepath.Join(d.Path, file+".key") }

// Ensure makes sure the folder holds an authority and a current certificate
// for each subject, as of now: it issues what is missing, what expires within
// RenewBefore, what another authority signed and what names another
// identity, and keeps the rest, so that a restarted stack keeps its
// certificates. It returns the files it wrote.
func (d Dir) Ensure(now time.Time, subjects []Subject) ([]string, error) {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return nil, fmt.Errorf("development PKI: %w", err)
	}
	var wrote []string
	ca, err := d.authority(now)
	if err != nil {
		return nil, err
	}
	if ca == nil {
		if ca, err = NewAuthority("dmic development CA", now, AuthorityValidity); err != nil {
			return nil, err
		}
		kp, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		if err := writeFile(d.Key("ca"), kp, 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(d.CA(), ca.CertPEM, 0o644); err != nil {
			return nil, err
		}
		wrote = append(wrote, d.CA())
	}
	for _, s := range subjects {
		if d.current(ca, s, now) {
			continue
		}
		leaf, err := ca.IssueFor(s.Role, s.Org, s.Name, s.Server, now, LeafValidity)
		if err != nil {
			return nil, err
		}
		if err := writeFile(d.Key(s.File), leaf.KeyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(d.Cert(s.File), leaf.CertPEM, 0o644); err != nil {
			return nil, err
		}
		wrote = append(wrote, d.Cert(s.File))
	}
	return wrote, nil
}

// authority is the folder's authority, nil if there is none or it is near
// its end (then every certificate is issued again).
func (d Dir) authority(now time.Time) (*Authority, error) {
	certPEM, err := os.ReadFile(d.CA())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(d.Key("ca"))
	if err != nil {
		return nil, nil
	}
	a, err := LoadAuthority(certPEM, keyPEM)
	if err != nil || now.Add(RenewBefore).After(a.Cert.NotAfter) {
		return nil, nil
	}
	return a, nil
}

// current reports whether the subject's files hold a certificate of ca for
// its identity, valid for a while yet, and its key.
func (d Dir) current(ca *Authority, s Subject, now time.Time) bool {
	certPEM, err := os.ReadFile(d.Cert(s.File))
	if err != nil {
		return false
	}
	if _, err := os.Stat(d.Key(s.File)); err != nil {
		return false
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil || now.Add(RenewBefore).After(c.NotAfter) || !bytes.Equal(c.RawIssuer, ca.Cert.RawSubject) {
		return false
	}
	if err := c.CheckSignatureFrom(ca.Cert); err != nil {
		return false
	}
	if s.Server && !slices.Contains(c.DNSNames, "localhost") {
		return false
	}
	id, err := identity.FromCertificate(c)
	return err == nil && id.Role == s.Role && id.Org == s.Org
}

// writeFile writes atomically (a temporary file renamed), with mode.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("development PKI: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile keeps the mode of a file that existed
		return fmt.Errorf("development PKI: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("development PKI: %w", err)
	}
	return nil
}

// TLS is a client's TLS configuration presenting the subject's certificate
// (file "": none) and trusting the folder's authority.
func (d Dir) TLS(file string) (*tls.Config, error) {
	roots, err := identity.LoadRoots(d.CA())
	if err != nil {
		return nil, err
	}
	if file == "" {
		return identity.ClientConfig(nil, roots), nil
	}
	kp, err := identity.LoadKeyPair(d.Cert(file), d.Key(file))
	if err != nil {
		return nil, err
	}
	return identity.ClientConfig(kp, roots), nil
}

// HTTPClient is an HTTP client presenting the subject's certificate (file
// "": none), keeping up to conns idle connections to a host.
func (d Dir) HTTPClient(file string, conns int) (*http.Client, error) {
	cfg, err := d.TLS(file)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	tr.MaxIdleConnsPerHost = max(conns, 2)
	return &http.Client{Transport: tr}, nil
}

// DialOption makes a gRPC client present the subject's certificate.
func (d Dir) DialOption(file string) (grpc.DialOption, error) {
	cfg, err := d.TLS(file)
	if err != nil {
		return nil, err
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg)), nil
}

// SubmitterFile is the certificate a submission of submitter is sent with:
// the national exchange's for national copies, the provider's own else (a
// provider may send only its own records, so a tool that sends for several
// needs the certificate of each).
func SubmitterFile(submitter string, national bool) string {
	if national {
		return NationalFile
	}
	return ProviderFile(submitter)
}

// Submitters are HTTP clients of ingest, one per certificate, made when
// first needed.
type Submitters struct {
	dir   Dir
	conns int
	mu    sync.Mutex
	by    map[string]*http.Client
}

// NewSubmitters makes clients from the certificates in dir.
func NewSubmitters(dir Dir, conns int) *Submitters {
	return &Submitters{dir: dir, conns: conns, by: map[string]*http.Client{}}
}

// For is the client that sends submitter's submissions.
func (s *Submitters) For(submitter string, national bool) (*http.Client, error) {
	file := SubmitterFile(submitter, national)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.by[file]; ok {
		return c, nil
	}
	c, err := s.dir.HTTPClient(file, s.conns)
	if err != nil {
		return nil, fmt.Errorf("certificate of %s: %w", file, err)
	}
	s.by[file] = c
	return c, nil
}
