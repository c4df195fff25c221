// Package broker runs the embedded Kafka-protocol broker (kfake) used for
// development, tests and `make run`. Production uses a real Kafka cluster; the
// services cannot tell the difference because they speak the Kafka protocol
// to both over TCP.
package broker

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Option configures the embedded broker.
type Option func(*config)

type config struct {
	port       int
	dataDir    string
	partitions int
	syncWrites bool
}

// WithPort sets the TCP port to listen on (0 picks a free one).
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// WithDataDir persists topics, groups and offsets under dir so that a restart
// keeps what was written.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithDefaultPartitions sets the partition count of auto-created topics.
func WithDefaultPartitions(n int) Option { return func(c *config) { c.partitions = n } }

// WithSyncWrites fsyncs every produced batch (slower, durable across a crash).
func WithSyncWrites() Option { return func(c *config) { c.syncWrites = true } }

// Start starts a single-node broker listening on 127.0.0.1.
func Start(opts ...Option) (*Broker, error) {
	cfg := config{partitions: 6}
	for _, o := range opts {
		o(&cfg)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.partitions),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			// kfake listens on all interfaces by default; the dev broker has no
			// authentication, so keep it on loopback.
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort("127.0.0.1", port))
		}),
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
	return &Broker{cluster: c, addr: addrs[0]}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Port is the broker's TCP port.
func (b *Broker) Port() int {
	_, p, _ := net.SplitHostPort(b.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Close stops the broker, flushing persisted state.
func (b *Broker) Close() { b.cluster.Close() }
