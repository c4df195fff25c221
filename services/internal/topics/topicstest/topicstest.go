// Package topicstest starts an embedded broker with dmic's topics for tests
// of the components that produce to and consume from them.
package topicstest

import (
	"context"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
)

// Brokers starts a broker (kfake, over TCP) for the duration of the test,
// creates every dmic topic with the given partition count, and returns the
// broker list.
func Brokers(ctx context.Context, t testing.TB, partitions int) []string {
	t.Helper()
	b := brokertest.New(t)
	brokers := []string{b.Addr()}
	if err := kafkatopics.Ensure(ctx, brokers, partitions); err != nil {
		t.Fatal(err)
	}
	return brokers
}
