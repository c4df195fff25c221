package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/dmic-nhs/dmic/services/internal/secret"
)

// PasswordEnv is the environment variable that may hold the SASL password
// when no -kafka-sasl-password-file is given. There is no flag for the
// password itself: a command line is readable by every user of the machine.
const PasswordEnv = "DMIC_KAFKA_SASL_PASSWORD"

// Config is how a process authenticates to Kafka, as flags. The brokers are
// given apart (each command has its own -brokers).
type Config struct {
	// Mechanism is ScramSHA512 (default), ScramSHA256, or None (development
	// only: plaintext, no authentication).
	Mechanism string
	// User is the SASL principal. RegisterFlags keeps the value already set
	// as the default, so each command presets its own principal.
	User string
	// PasswordFile holds the password (mode 0600); when empty it comes from
	// the environment variable PasswordEnv.
	PasswordFile string
	// TLS turns TLS on, verifying the brokers against the system's roots
	// unless TLSCA names a CA file.
	TLS bool
	// TLSCA is a PEM file of the CA certificates that sign the brokers'
	// certificates; setting it turns TLS on.
	TLSCA string
	// TLSServerName overrides the name the brokers' certificates are checked
	// against (default: the host of the broker address).
	TLSServerName string
}

// RegisterFlags adds the flags. c.User, if set, is the default principal.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Mechanism, "kafka-sasl-mechanism", ScramSHA512,
		"SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256, or none (plaintext without authentication: a development broker only, never production).")
	fs.StringVar(&c.User, "kafka-sasl-user", c.User, "SASL principal this process authenticates as (docs/security.md, Kafka).")
	fs.StringVar(&c.PasswordFile, "kafka-sasl-password-file", "",
		"File holding the SASL password (mode 0600); empty: the environment variable "+PasswordEnv+". Never on a command line.")
	fs.BoolVar(&c.TLS, "kafka-tls", false, "Connect to the brokers over TLS, verified against the system's roots (or -kafka-tls-ca).")
	fs.StringVar(&c.TLSCA, "kafka-tls-ca", "", "PEM file of the CA certificates of the brokers; implies -kafka-tls.")
	fs.StringVar(&c.TLSServerName, "kafka-tls-server-name", "", "Name the brokers' certificates must carry (default: the host of each broker address).")
}

// Validate reports every problem at once, reading the password and the CA
// file to be sure they can be used.
func (c *Config) Validate() error {
	var errs []error
	if !slices.Contains(Mechanisms(), c.Mechanism) {
		errs = append(errs, fmt.Errorf("-kafka-sasl-mechanism: %q is not one of %s", c.Mechanism, strings.Join(Mechanisms(), ", ")))
	}
	if c.Mechanism != None {
		if c.User == "" {
			errs = append(errs, errors.New("-kafka-sasl-user: required with SASL"))
		}
		if _, err := c.password(); err != nil {
			errs = append(errs, err)
		}
	} else if c.PasswordFile != "" {
		errs = append(errs, fmt.Errorf("-kafka-sasl-password-file: given with -kafka-sasl-mechanism %s, which sends no password", None))
	}
	if _, err := c.tlsConfig(); err != nil {
		errs = append(errs, err)
	}
	if c.TLSServerName != "" && !c.TLS && c.TLSCA == "" {
		errs = append(errs, errors.New("-kafka-tls-server-name: given without -kafka-tls or -kafka-tls-ca"))
	}
	return errors.Join(errs...)
}

// Cluster builds the connection settings for brokers.
func (c *Config) Cluster(brokers []string) (Cluster, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return Cluster{}, err
	}
	auth := Auth{Mechanism: c.Mechanism}
	if c.Mechanism != None {
		pw, err := c.password()
		if err != nil {
			return Cluster{}, err
		}
		auth.User, auth.Password = c.User, pw
	}
	return New(brokers, auth, tc)
}

func (c *Config) password() (secret.Secret, error) {
	pw, err := secret.Load(c.PasswordFile, PasswordEnv)
	if err != nil {
		if errors.Is(err, secret.ErrNone) {
			return secret.Secret{}, fmt.Errorf("-kafka-sasl-password-file: required with SASL (or the environment variable %s)", PasswordEnv)
		}
		return secret.Secret{}, fmt.Errorf("-kafka-sasl-password-file: %w", err)
	}
	return pw, nil
}

// tlsConfig is nil when TLS is off.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS && c.TLSCA == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("-kafka-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-kafka-tls-ca: %s holds no PEM certificate", c.TLSCA)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
