package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/secret"
)

// LoadRoots reads the PEM certificates of the authorities to trust.
func LoadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certificate authorities: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("certificate authorities %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// KeyPair is a certificate and its private key, read from files, and read
// again when either file changes (checked at each TLS handshake, so that a
// renewed certificate is used from the next connection on, without a
// restart). The key file is read as a secret: mode 0600 or 0400 (0640, 0440
// for a group), never readable by everyone (package secret).
type KeyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	certMod time.Time
	keyMod  time.Time
	pair    *tls.Certificate
}

// LoadKeyPair reads the pair; an error if it cannot be used.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	if _, err := k.current(); err != nil {
		return nil, err
	}
	return k, nil
}

// current is the pair, read again if a file changed since it was read. A
// pair that no longer loads (a renewal half written) keeps the last good one.
func (k *KeyPair) current() (*tls.Certificate, error) {
	cs, cerr := os.Stat(k.certFile)
	ks, kerr := os.Stat(k.keyFile)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := errors.Join(cerr, kerr); err != nil {
		if k.pair != nil {
			return k.pair, nil
		}
		return nil, fmt.Errorf("certificate and key: %w", err)
	}
	if k.pair != nil && cs.ModTime().Equal(k.certMod) && ks.ModTime().Equal(k.keyMod) {
		return k.pair, nil
	}
	pair, err := readPair(k.certFile, k.keyFile)
	if err != nil {
		if k.pair != nil {
			return k.pair, nil
		}
		return nil, err
	}
	k.pair, k.certMod, k.keyMod = pair, cs.ModTime(), ks.ModTime()
	return pair, nil
}

func readPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	key, err := secret.FromFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, []byte(key.Reveal()))
	if err != nil {
		// The error of X509KeyPair names no key material.
		return nil, fmt.Errorf("certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &pair, nil
}

// Certificate is the pair's certificate, parsed.
func (k *KeyPair) Certificate() (*x509.Certificate, error) {
	p, err := k.current()
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(p.Certificate[0])
}

func (k *KeyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return k.current() }

func (k *KeyPair) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.current()
}

// ServerConfig is the TLS configuration of a dmic server: its own
// certificate (pair), TLS 1.2 or later, and a request for the client's
// certificate, naming the authorities it trusts (clientCAs) so that a client
// holding several picks the right one. The handshake asks for a certificate
// but does not judge it: the authenticator (Certificates) verifies it on
// every call, against the same authorities, so that a refusal is made in one
// place with its reason, and a caller with a bearer token instead reaches it
// too.
func ServerConfig(pair *KeyPair, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: pair.getCertificate,
		ClientAuth:     tls.RequestClientCert,
		ClientCAs:      clientCAs,
	}
}

// ClientConfig is the TLS configuration of a client of dmic: it trusts
// roots for the server's certificate and presents pair (nil: none).
func ClientConfig(pair *KeyPair, roots *x509.CertPool) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if pair != nil {
		c.GetClientCertificate = pair.getClientCertificate
	}
	return c
}
