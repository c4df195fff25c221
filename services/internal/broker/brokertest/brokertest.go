// Package brokertest starts the embedded broker (broker) for a test.
package brokertest

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/broker"
)

// New starts a broker on a free port for the duration of a test (and its
// subtests), and closes it when they finish.
func New(t testing.TB, opts ...broker.Option) *broker.Broker {
	t.Helper()
	b, err := broker.Start(opts...)
	if err != nil {
		t.Fatalf("embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}
