package devstack

import (
	"net"
	"strconv"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/ports"
)

// A base whose ClickHouse port is taken is not free: each stack starts its
// own ClickHouse on the port table's ClickHouse port.
func TestFreePortBaseChecksClickHouse(t *testing.T) {
	base, err := FreePortBase(20000, 100)
	if err != nil {
		t.Skip(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports.For(base).ClickHouse)))
	if err != nil {
		t.Skip(err) // taken between the two calls
	}
	defer l.Close()
	got, err := FreePortBase(base, 100)
	if err != nil {
		t.Skip(err)
	}
	if got == base {
		t.Errorf("FreePortBase gave %d, whose ClickHouse port %d is taken", base, ports.For(base).ClickHouse)
	}
}
