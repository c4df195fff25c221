// Package devpki issues development certificates with Go's crypto/x509: a
// certificate authority and, signed by it, a certificate per identity (each
// sample trust, the national exchange, an operator, a key custodian, an
// analyst, each service). `make run` keeps them under var/pki (Ensure); the
// tests issue their own in memory (devpki/devpkitest). Not shipped: a real
// deployment gets its certificates from its own authority
// (docs/security.md, "Issuing certificates").
package devpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// Authority is a certificate authority that issues certificates.
type Authority struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// NewAuthority makes a self-signed authority named name, valid from a day
// before now (clocks differ) for validity.
func NewAuthority(name string, now time.Time, validity time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("authority key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"dmic development"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("authority certificate: %w", err)
	}
	return authority(der, key)
}

func authority(der []byte, key crypto.Signer) (*Authority, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// KeyPEM is the authority's private key, PEM (PKCS #8).
func (a *Authority) KeyPEM() ([]byte, error) { return keyPEM(a.key) }

// LoadAuthority reads an authority from its certificate and key PEM.
func LoadAuthority(certPEM, keyPEMBytes []byte) (*Authority, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEMBytes)
	if err != nil {
		return nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("authority key cannot sign")
	}
	a, err := authority(pair.Certificate[0], signer)
	if err != nil {
		return nil, err
	}
	if !a.Cert.IsCA {
		return nil, errors.New("not a certificate authority")
	}
	return a, nil
}

// Pool is a pool holding the authority alone, for a TLS configuration.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// Request describes a certificate to issue.
type Request struct {
	// Name is the subject common name: the holder.
	Name string
	// URIs are URI subject alternative names, such as identity.URI(role, org).
	// Raw strings, so that a test can issue a malformed one.
	URIs []string
	// DNSNames and IPs are where a server answers.
	DNSNames []string
	IPs      []net.IP
	// Server and Client allow server and client authentication.
	Server, Client bool
	NotBefore      time.Time
	NotAfter       time.Time
}

// Leaf is an issued certificate and its key.
type Leaf struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
	// TLS is the pair for a tls.Config, with the authority's certificate
	// after the leaf.
	TLS tls.Certificate
}

// Issue signs a certificate for req.
func (a *Authority) Issue(req Request) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("key of %s: %w", req.Name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: req.Name},
		NotBefore:    req.NotBefore,
		NotAfter:     req.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     req.DNSNames,
		IPAddresses:  req.IPs,
	}
	for _, u := range req.URIs {
		parsed, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("URI %q of %s: %w", u, req.Name, err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	if req.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.key)
	if err != nil {
		return nil, fmt.Errorf("certificate of %s: %w", req.Name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(append(append([]byte{}, certPEM...), a.CertPEM...), kp)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, CertPEM: certPEM, KeyPEM: kp, TLS: pair}, nil
}

// IssueFor issues a client certificate (and a server one, when server) for
// an identity, valid from an hour before now for validity.
func (a *Authority) IssueFor(role identity.Role, org, name string, server bool, now time.Time, validity time.Duration) (*Leaf, error) {
	req := Request{Name: name, URIs: []string{identity.URI(role, org)}, Client: true, Server: server,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity)}
	if server {
		// localhost, and the service's own name: its host name in the
		// compose stack (docker-compose.yml).
		req.DNSNames = []string{"localhost", name}
		req.IPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	return a.Issue(req)
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newSerial is a random 128-bit serial number, as RFC 5280 allows (at most
// 20 octets, positive).
func newSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // crypto/rand never fails (Go 1.24+)
	return n.Add(n, big.NewInt(1))
}
