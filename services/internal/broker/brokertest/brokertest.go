// Package brokertest starts the embedded broker (broker) for a test.
package brokertest

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
)

// New starts a broker on a free port for the duration of a test (and its
// subtests), and closes it when they finish. Like production it
// authenticates with SASL/SCRAM and authorises by the ACL table, and it has
// dmic's topics, unless opts say otherwise.
func New(t testing.TB, opts ...broker.Option) *broker.Broker {
	t.Helper()
	b, err := broker.Start(opts...)
	if err != nil {
		t.Fatalf("embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Admin is b as its superuser: for a test's own feeding and reading, which
// the ACL table is not about.
func Admin(t testing.TB, b *broker.Broker) kafkaconn.Cluster {
	t.Helper()
	c, err := b.Admin()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// As is b as principal (topics.ServicePrincipal("validate"), topics.Operator,
// ...): what the code under test connects as, so that its ACLs are tested too.
func As(t testing.TB, b *broker.Broker, principal string) kafkaconn.Cluster {
	t.Helper()
	c, err := b.As(principal)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
