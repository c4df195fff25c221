// Package kafkaconn is the one home of how dmic reaches its Kafka cluster:
// the brokers, the SASL/SCRAM principal it authenticates as and TLS. Every
// Kafka client dmic makes (consumer-group readers, partition readers,
// writers, admin clients, raw connections) is built from a Cluster, so that
// no client can be made that skips authentication by forgetting a field.
//
// Production authenticates every service as its own principal with
// SCRAM-SHA-512 over TLS (docs/security.md, Kafka). Plaintext without SASL
// exists for a development broker only, and has to be asked for by name
// (mechanism "none").
package kafkaconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/dmic-nhs/dmic/services/internal/secret"
)

// The SASL mechanisms a Cluster can use.
const (
	// ScramSHA512 is the default: the password never crosses the wire, and
	// the broker keeps only a salted hash of it.
	ScramSHA512 = "SCRAM-SHA-512"
	ScramSHA256 = "SCRAM-SHA-256"
	// None is no SASL at all: anyone who reaches the broker is anonymous.
	// For a development broker that was started without authentication.
	None = "none"
)

// Mechanisms lists the accepted values of Auth.Mechanism.
func Mechanisms() []string { return []string{ScramSHA512, ScramSHA256, None} }

// Auth is whom a client authenticates as.
type Auth struct {
	// Mechanism is ScramSHA512, ScramSHA256 or None.
	Mechanism string
	// User is the SASL principal (e.g. dmic-validate); empty with None.
	User string
	// Password is the user's SCRAM password; zero with None.
	Password secret.Secret
}

// Cluster is a Kafka cluster as one principal sees it. The zero value is
// not usable: build one with New. A Cluster is cheap to copy; copies share
// one connection pool (Transport).
type Cluster struct {
	brokers   []string
	user      string
	mechanism string
	tls       *tls.Config
	sasl      sasl.Mechanism
	dialer    *kafka.Dialer
	transport *kafka.Transport
}

// New builds the connection settings for brokers, authenticating as auth,
// over TLS when tlsConfig is not nil.
func New(brokers []string, auth Auth, tlsConfig *tls.Config) (Cluster, error) {
	if len(brokers) == 0 {
		return Cluster{}, errors.New("kafka: no brokers")
	}
	c := Cluster{brokers: brokers, mechanism: auth.Mechanism, tls: tlsConfig}
	switch auth.Mechanism {
	case ScramSHA512, ScramSHA256:
		if auth.User == "" {
			return Cluster{}, fmt.Errorf("kafka: %s needs a user", auth.Mechanism)
		}
		if auth.Password.IsZero() {
			return Cluster{}, fmt.Errorf("kafka: %s needs a password for %s", auth.Mechanism, auth.User)
		}
		algo := scram.SHA512
		if auth.Mechanism == ScramSHA256 {
			algo = scram.SHA256
		}
		m, err := scram.Mechanism(algo, auth.User, auth.Password.Reveal())
		if err != nil {
			return Cluster{}, fmt.Errorf("kafka: %s for %s: %w", auth.Mechanism, auth.User, err)
		}
		c.user, c.sasl = auth.User, m
	case None:
		if auth.User != "" || !auth.Password.IsZero() {
			return Cluster{}, fmt.Errorf("kafka: a user or password was given with mechanism %q, which sends none", None)
		}
	default:
		return Cluster{}, fmt.Errorf("kafka: SASL mechanism %q is not one of %s", auth.Mechanism, strings.Join(Mechanisms(), ", "))
	}
	c.dialer = &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: tlsConfig, SASLMechanism: c.sasl}
	c.transport = &kafka.Transport{TLS: tlsConfig, SASL: c.sasl}
	return c, nil
}

// Insecure is a Cluster of a development broker without authentication or
// TLS (mechanism None). Nothing shipped calls it: a service gets None only
// from its configuration, where it is spelt out.
func Insecure(brokers []string) (Cluster, error) {
	return New(brokers, Auth{Mechanism: None}, nil)
}

// Brokers are the bootstrap brokers.
func (c Cluster) Brokers() []string { return c.brokers }

// User is the SASL principal ("" without SASL).
func (c Cluster) User() string { return c.user }

// Mechanism is the SASL mechanism (None without SASL).
func (c Cluster) Mechanism() string { return c.mechanism }

// TLS reports whether connections use TLS.
func (c Cluster) TLS() bool { return c.tls != nil }

// String describes the cluster for a log line: brokers, principal,
// mechanism and TLS, never a secret.
func (c Cluster) String() string {
	var b strings.Builder
	b.WriteString(strings.Join(c.brokers, ","))
	if c.sasl != nil {
		b.WriteString(" as " + c.user + " (" + c.mechanism)
	} else {
		b.WriteString(" (no SASL")
	}
	if c.tls != nil {
		b.WriteString(", TLS)")
	} else {
		b.WriteString(", plaintext)")
	}
	return b.String()
}

// Dialer is the dialer of every connection a kafka.Reader or kafka.Conn
// makes: it negotiates TLS and SASL. Shared; do not modify it.
func (c Cluster) Dialer() *kafka.Dialer { return c.dialer }

// Transport is the connection pool of writers and admin clients, which
// negotiates TLS and SASL. Shared by every copy of c; do not modify it.
func (c Cluster) Transport() *kafka.Transport { return c.transport }

// Addr is the brokers as kafka-go addresses them.
func (c Cluster) Addr() net.Addr { return kafka.TCP(c.brokers...) }

// Client is an admin and metadata client whose requests time out after
// timeout.
func (c Cluster) Client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: c.Addr(), Timeout: timeout, Transport: c.transport}
}

// NewReader is kafka.NewReader with cfg's brokers and dialer set to c's.
func (c Cluster) NewReader(cfg kafka.ReaderConfig) *kafka.Reader {
	cfg.Brokers = c.brokers
	cfg.Dialer = c.dialer
	return kafka.NewReader(cfg)
}

// Dial connects to the first broker that answers.
func (c Cluster) Dial(ctx context.Context) (*kafka.Conn, error) {
	var errs []error
	for _, b := range c.brokers {
		conn, err := c.dialer.DialContext(ctx, "tcp", b)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("dial %s: %w", b, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// DialController connects to the cluster's controller, which creates and
// deletes topics.
func (c Cluster) DialController(ctx context.Context) (*kafka.Conn, error) {
	conn, err := c.Dial(ctx)
	if err != nil {
		return nil, err
	}
	ctrl, err := conn.Controller()
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("find the controller: %w", err)
	}
	cc, err := c.dialer.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return nil, fmt.Errorf("dial the controller: %w", err)
	}
	return cc, nil
}

// DialLeader connects to the leader of a topic's partition.
func (c Cluster) DialLeader(ctx context.Context, topic string, partition int) (*kafka.Conn, error) {
	var errs []error
	for _, b := range c.brokers {
		conn, err := c.dialer.DialLeader(ctx, "tcp", b, topic, partition)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("leader of %s/%d via %s: %w", topic, partition, b, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
