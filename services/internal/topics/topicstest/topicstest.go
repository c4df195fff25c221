// Package topicstest starts an embedded broker with dmic's topics for tests
// of the components that produce to and consume from them, and checks a
// service's use of Kafka against the ACL table.
package topicstest

import (
	"slices"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Broker starts a broker (kfake, over TCP, with SASL and the ACL table) for
// the duration of the test, with every dmic topic at the given partition
// count. brokertest.Admin and brokertest.As connect to it.
func Broker(t testing.TB, partitions int) *broker.Broker {
	t.Helper()
	return brokertest.New(t, broker.WithDefaultPartitions(partitions))
}

// RequireGranted fails the test unless the ACL table (topics.Grants) has a
// row for the service's principal that is exactly what the service
// declares it uses: a topic it uses and may not would be refused at run
// time, and a grant it does not use is access nobody needs.
func RequireGranted(t testing.TB, uses topics.Access) {
	t.Helper()
	g, ok := topics.GrantOf(uses.Principal)
	if !ok {
		t.Fatalf("the ACL table (topics.Grants) has no row for %s", uses.Principal)
	}
	if g.Group != uses.Group {
		t.Errorf("%s: the table grants group %q, the service consumes in %q", uses.Principal, g.Group, uses.Group)
	}
	if g.DescribeGroups != uses.DescribeGroups {
		t.Errorf("%s: the table's DescribeGroups is %v, the service's %v", uses.Principal, g.DescribeGroups, uses.DescribeGroups)
	}
	for _, l := range []struct {
		what        string
		table, uses []string
	}{
		{"reads", g.Read(), uses.Read()},
		{"writes", g.Write(), uses.Write()},
		{"inputs", sorted(g.Inputs), sorted(uses.Inputs)},
	} {
		for _, tp := range l.uses {
			if !slices.Contains(l.table, tp) {
				t.Errorf("%s %s %s, which the ACL table does not grant", uses.Principal, l.what, tp)
			}
		}
		for _, tp := range l.table {
			if !slices.Contains(l.uses, tp) {
				t.Errorf("the ACL table lets %s %s %s, which it does not use", uses.Principal, l.what, tp)
			}
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
