// Package broker runs the embedded Kafka-protocol broker (kfake) used for
// development, tests and `make run`. Production uses a real Kafka cluster; the
// services cannot tell the difference because they speak the Kafka protocol
// to both over TCP.
//
// Like production, the embedded broker authenticates every client with
// SASL/SCRAM-SHA-512 and authorises it by the ACL table of package topics,
// so that the tests and `make run` exercise the code path production runs:
// the superuser (topics.Admin) creates the topics, one SCRAM user per
// principal and the ACLs at every start, through the same
// kafkatopics.Setup that `dmicctl kafka-setup` runs against a real cluster.
// Without authentication (WithoutAuth) it is a plain development broker.
package broker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
)

// Mechanism is the SASL mechanism of every principal of the embedded broker.
const Mechanism = kafkaconn.ScramSHA512

// Broker is a running embedded broker.
type Broker struct {
	cluster   *kfake.Cluster
	addr      string
	auth      bool
	passwords map[string]secret.Secret // the superuser's and every principal's
	clientTLS *tls.Config

	mu       sync.Mutex
	clusters map[string]kafkaconn.Cluster // by principal: one connection pool each
}

// Option configures the embedded broker.
type Option func(*config)

type config struct {
	port           int
	dataDir        string
	partitions     int
	syncWrites     bool
	noAuth         bool
	credentialsDir string
	serverTLS      *tls.Config
	clientTLS      *tls.Config
	noTopics       bool
}

// WithPort sets the TCP port to listen on (0 picks a free one).
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// WithDataDir persists topics, groups and offsets under dir so that a restart
// keeps what was written.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithDefaultPartitions sets the partition count of dmic's topics, created at
// start, and of auto-created topics.
func WithDefaultPartitions(n int) Option { return func(c *config) { c.partitions = n } }

// WithSyncWrites fsyncs every produced batch (slower, durable across a crash).
func WithSyncWrites() Option { return func(c *config) { c.syncWrites = true } }

// WithoutAuth runs the broker with no SASL and no ACLs: any client that
// reaches it may do anything, as anonymous. For a development broker that
// a client without credentials must reach (the benchmark's ClickHouse Kafka
// engine), never for anything holding real data.
func WithoutAuth() Option { return func(c *config) { c.noAuth = true } }

// WithCredentialsDir keeps the SCRAM passwords in dir, one file per
// principal (<principal>.password, mode 0600), generating those that are
// missing; the services read their own from there. Without it the
// passwords are generated in memory for the broker's lifetime (tests).
func WithCredentialsDir(dir string) Option { return func(c *config) { c.credentialsDir = dir } }

// WithTLS serves TLS with server, and has the clients of Admin and As
// verify it with client.
func WithTLS(server, client *tls.Config) Option {
	return func(c *config) { c.serverTLS, c.clientTLS = server, client }
}

// WithoutTopics skips creating dmic's topics at start (a test of creating
// them).
func WithoutTopics() Option { return func(c *config) { c.noTopics = true } }

// Start starts a single-node broker listening on 127.0.0.1 and, unless
// WithoutAuth, makes its topics, users and ACLs.
func Start(opts ...Option) (*Broker, error) {
	cfg := config{partitions: topics.DefaultPartitions}
	for _, o := range opts {
		o(&cfg)
	}
	b := &Broker{auth: !cfg.noAuth, clientTLS: cfg.clientTLS, clusters: map[string]kafkaconn.Cluster{}}
	// A cluster id of its own, as a Kafka cluster has (kfake's default is
	// the same for every broker): what a client keeps about a topic's
	// offsets (reconcile's state store) then tells a broker whose data was
	// wiped from the one it was kept on. With a data directory, kfake keeps
	// the id it persisted and ignores this one.
	clusterID := make([]byte, 12)
	if _, err := rand.Read(clusterID); err != nil {
		return nil, fmt.Errorf("embedded broker: cluster id: %w", err)
	}
	kopts := []kfake.Opt{
		kfake.ClusterID("dmic-" + base64.RawURLEncoding.EncodeToString(clusterID)),
		kfake.NumBrokers(1),
		kfake.Ports(cfg.port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.partitions),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			// Loopback only: the development passwords sit in files on this
			// machine, and a broker without auth trusts whoever reaches it.
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort("127.0.0.1", port))
		}),
	}
	if cfg.serverTLS != nil {
		kopts = append(kopts, kfake.TLS(cfg.serverTLS))
	}
	if b.auth {
		var err error
		if b.passwords, err = passwords(cfg.credentialsDir); err != nil {
			return nil, err
		}
		if cfg.dataDir != "" {
			// kfake reloads the credentials it persisted and ignores the
			// superuser given below; the password files are the truth, and
			// Setup sets every other user's again.
			if err := os.Remove(filepath.Join(cfg.dataDir, "sasl.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("embedded broker: forget persisted credentials: %w", err)
			}
		}
		kopts = append(kopts, kfake.EnableSASL(), kfake.EnableACLs(),
			kfake.Superuser(Mechanism, topics.Admin, b.passwords[topics.Admin].Reveal()))
	}
	if cfg.dataDir != "" {
		kopts = append(kopts, kfake.DataDir(cfg.dataDir))
	}
	if cfg.syncWrites {
		kopts = append(kopts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on port %d: %w", cfg.port, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, fmt.Errorf("embedded broker has no listen address")
	}
	b.cluster, b.addr = c, addrs[0]
	if b.auth {
		if err := b.advertiseHandshakeV0(cfg.clientTLS); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := b.setup(cfg); err != nil {
		c.Close()
		return nil, err
	}
	return b, nil
}

// advertiseHandshakeV0 works round kfake's ApiVersions answer, which lists
// SaslHandshake (key 17) from version 1 only. librdkafka (kcat, and the
// Kafka engine of ClickHouse) takes a broker to support the handshake only
// if version 0 is listed, and refuses every SASL mechanism otherwise ("SASL
// Handshake not supported by broker"); a real Kafka broker lists 0 and 1.
// The broker answers ApiVersions (up to version 3, which librdkafka and
// kafka-go send) with kfake's own list, that one minimum lowered to 0; a
// client then sends version 1, the highest both know, which kfake serves.
func (b *Broker) advertiseHandshakeV0(clientTLS *tls.Config) error {
	conn, err := (&kafka.Dialer{Timeout: 10 * time.Second, TLS: clientTLS}).Dial("tcp", b.addr)
	if err != nil {
		return fmt.Errorf("embedded broker: ask its API versions: %w", err)
	}
	versions, err := conn.ApiVersions()
	conn.Close()
	if err != nil {
		return fmt.Errorf("embedded broker: ask its API versions: %w", err)
	}
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(versions))
	for _, v := range versions {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = v.ApiKey, v.MinVersion, v.MaxVersion
		if k.ApiKey == int16(kmsg.SASLHandshake) {
			k.MinVersion = 0
		}
		keys = append(keys, k)
	}
	b.cluster.ControlKey(int16(kmsg.ApiVersions), func(r kmsg.Request) (kmsg.Response, error, bool) {
		b.cluster.KeepControl()
		req, ok := r.(*kmsg.ApiVersionsRequest)
		if !ok || req.Version > 3 {
			return nil, nil, false // kfake's own answer
		}
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.ApiKeys = slices.Clone(keys)
		return resp, nil, true
	})
	return nil
}

// setup makes the topics (unless WithoutTopics) and, with auth, the users
// and ACLs, as the superuser. kfake seeds ACLs only into a new data
// directory, so they are applied through the protocol at every start, which
// also keeps a persisted broker in step with the table.
func (b *Broker) setup(cfg config) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := b.Admin()
	if err != nil {
		return err
	}
	if !b.auth {
		if cfg.noTopics {
			return nil
		}
		return kafkatopics.Ensure(ctx, admin, cfg.partitions)
	}
	users := map[string]secret.Secret{}
	for _, p := range topics.Principals() {
		users[p] = b.passwords[p]
	}
	if cfg.noTopics {
		if err := kafkatopics.SetPasswords(ctx, admin, Mechanism, users); err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		if err := kafkatopics.ApplyACLs(ctx, admin, topics.Principals(), topics.ACLs()); err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		return nil
	}
	if err := kafkatopics.Setup(ctx, admin, kafkatopics.SetupConfig{Partitions: cfg.partitions, Mechanism: Mechanism, Passwords: users}); err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	return nil
}

// PasswordFile is where WithCredentialsDir keeps principal's password.
func PasswordFile(dir, principal string) string { return filepath.Join(dir, principal+".password") }

// passwords are the superuser's and every principal's: read from dir, the
// missing ones generated there first; generated in memory when dir is "".
func passwords(dir string) (map[string]secret.Secret, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("embedded broker: credentials: %w", err)
		}
	}
	out := map[string]secret.Secret{}
	var errs []error
	for _, p := range append([]string{topics.Admin}, topics.Principals()...) {
		if dir == "" {
			v, err := newPassword()
			if err != nil {
				return nil, err
			}
			out[p] = secret.Of(v, "generated for "+p)
			continue
		}
		path := PasswordFile(dir, p)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			v, err := newPassword()
			if err != nil {
				return nil, err
			}
			// O_EXCL: never overwrite a password another process just wrote.
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				errs = append(errs, fmt.Errorf("embedded broker: write %s: %w", path, err))
				continue
			}
			if err == nil {
				_, werr := f.WriteString(v + "\n")
				if cerr := f.Close(); werr == nil {
					werr = cerr
				}
				if werr != nil {
					errs = append(errs, fmt.Errorf("embedded broker: write %s: %w", path, werr))
					continue
				}
			}
		}
		s, err := secret.FromFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("embedded broker: %w", err))
			continue
		}
		out[p] = s
	}
	return out, errors.Join(errs...)
}

// newPassword is 32 random bytes, as text.
func newPassword() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("embedded broker: generate a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// KcatConfigFile is where WriteKcatConfig puts the kcat configuration of the
// operators' principal: `kcat -b ADDR -F FILE -L`.
func KcatConfigFile(dir string) string { return filepath.Join(dir, topics.Operator+".kcat") }

// WriteKcatConfig writes the librdkafka properties kcat needs to connect to
// the broker at addr as the operators' principal (mode 0600), so that no
// password is typed on a command line.
func WriteKcatConfig(dir, addr string) error {
	pw, err := secret.FromFile(PasswordFile(dir, topics.Operator))
	if err != nil {
		return err
	}
	path := KcatConfigFile(dir)
	body := "# kcat -b " + addr + " -F " + path + " -L\n" +
		"security.protocol=SASL_PLAINTEXT\n" +
		"sasl.mechanisms=" + Mechanism + "\n" +
		"sasl.username=" + topics.Operator + "\n" +
		"sasl.password=" + pw.Reveal() + "\n"
	tmp := path + ".tmp"
	_ = os.Remove(tmp) // WriteFile keeps the mode of a file that exists
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return fmt.Errorf("kcat configuration: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("kcat configuration: %w", err)
	}
	return nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Port is the broker's TCP port.
func (b *Broker) Port() int {
	_, p, _ := net.SplitHostPort(b.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Auth reports whether the broker authenticates and authorises clients.
func (b *Broker) Auth() bool { return b.auth }

// Admin is the broker as its superuser (topics.Admin), which passes every
// ACL check: for creating topics, and for tests that feed and read topics
// of their own. Without auth, an anonymous client.
func (b *Broker) Admin() (kafkaconn.Cluster, error) { return b.As(topics.Admin) }

// As is the broker as principal (one of topics.Principals, or topics.Admin),
// authenticated with its password. Without auth, an anonymous client
// whatever the principal.
func (b *Broker) As(principal string) (kafkaconn.Cluster, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clusters[principal]; ok {
		return c, nil
	}
	var c kafkaconn.Cluster
	var err error
	switch {
	case !b.auth:
		c, err = kafkaconn.New([]string{b.addr}, kafkaconn.Auth{Mechanism: kafkaconn.None}, b.clientTLS)
	case principal != topics.Admin && !slices.Contains(topics.Principals(), principal):
		return kafkaconn.Cluster{}, fmt.Errorf("embedded broker: %q is not a principal of the ACL table (%v) nor %s", principal, topics.Principals(), topics.Admin)
	default:
		c, err = kafkaconn.New([]string{b.addr}, kafkaconn.Auth{Mechanism: Mechanism, User: principal, Password: b.passwords[principal]}, b.clientTLS)
	}
	if err != nil {
		return kafkaconn.Cluster{}, err
	}
	b.clusters[principal] = c
	return c, nil
}

// Close stops the broker, flushing persisted state.
func (b *Broker) Close() { b.cluster.Close() }
