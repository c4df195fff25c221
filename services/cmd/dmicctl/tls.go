package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// who is whom dmicctl presents itself as, per kind of call: an operator for
// status, pause, resume, skips, replays and specifications; a key custodian
// for the key service (docs/security.md). With -tls-cert both are that one
// certificate; from a development PKI (-pki) each is its own.
type who struct {
	operator, custodian *tls.Config
}

// dial connects to addr presenting the operator's certificate, or the key
// custodian's.
func (w who) dial(addr string, custodian bool) (*grpc.ClientConn, error) {
	cfg := w.operator
	if custodian {
		cfg = w.custodian
	}
	if cfg == nil {
		return nil, errors.New("no client certificate (-tls-cert and -tls-key, or -pki)")
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
}

// tlsFlags are dmicctl's TLS flags. Key contents never go on a command line:
// the flags name files.
type tlsFlags struct {
	cert, key, ca, pki string
}

// devPKI is where `make run` keeps its development certificates
// (tools/devpki), relative to the repository, where dmicctl is run from.
const devPKI = "var/pki"

func registerTLS(fs *flag.FlagSet) *tlsFlags {
	f := &tlsFlags{}
	fs.StringVar(&f.cert, "tls-cert", os.Getenv("DMICCTL_TLS_CERT"), "Your client certificate, PEM (default from DMICCTL_TLS_CERT): an operator's, or a key custodian's for `key`.")
	fs.StringVar(&f.key, "tls-key", os.Getenv("DMICCTL_TLS_KEY"), "Its private key, PEM, mode 0600 (default from DMICCTL_TLS_KEY).")
	fs.StringVar(&f.ca, "tls-ca", os.Getenv("DMICCTL_TLS_CA"), "The authority of the services' certificates, PEM (default from DMICCTL_TLS_CA; else the -pki one; else the system's).")
	pki := os.Getenv("DMICCTL_PKI")
	if pki == "" {
		if fi, err := os.Stat(devPKI); err == nil && fi.IsDir() {
			pki = devPKI
		}
	}
	fs.StringVar(&f.pki, "pki", pki, "A development PKI folder as `make run` writes it (ca.crt, operator.crt/.key, key-custodian.crt/.key): used when -tls-cert is not given (default from DMICCTL_PKI, else "+devPKI+" when it exists).")
	return f
}

// load reads the certificates; every problem at once.
func (f *tlsFlags) load() (who, error) {
	var errs []error
	var roots *x509.CertPool
	ca := f.ca
	if ca == "" && f.pki != "" {
		ca = filepath.Join(f.pki, "ca.crt")
	}
	if ca != "" {
		var err error
		if roots, err = identity.LoadRoots(ca); err != nil {
			errs = append(errs, fmt.Errorf("-tls-ca: %w", err))
		}
	}
	pair := func(cert, key, what string) *tls.Config {
		kp, err := identity.LoadKeyPair(cert, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return nil
		}
		return identity.ClientConfig(kp, roots)
	}
	var w who
	switch {
	case (f.cert == "") != (f.key == ""):
		errs = append(errs, errors.New("-tls-cert and -tls-key: give both"))
	case f.cert != "":
		w.operator = pair(f.cert, f.key, "-tls-cert, -tls-key")
		w.custodian = w.operator
	case f.pki != "":
		w.operator = pair(filepath.Join(f.pki, "operator.crt"), filepath.Join(f.pki, "operator.key"), "-pki operator")
		// A key custodian's certificate only where the folder holds one.
		if _, err := os.Stat(filepath.Join(f.pki, "key-custodian.crt")); err == nil {
			w.custodian = pair(filepath.Join(f.pki, "key-custodian.crt"), filepath.Join(f.pki, "key-custodian.key"), "-pki key custodian")
		}
	default:
		errs = append(errs, errors.New("no client certificate: give -tls-cert and -tls-key (and -tls-ca), or -pki DIR (make run writes one to "+devPKI+"); docs/security.md"))
	}
	return w, errors.Join(errs...)
}
