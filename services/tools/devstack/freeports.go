package devstack

import (
	"fmt"
	"net"
	"strconv"

	"github.com/dmic-nhs/dmic/services/internal/ports"
)

// FreePortBase returns the first of start, start+step, start+2×step, ... (20
// tries) whose every port is free on 127.0.0.1 now. Tests use it instead of a
// fixed base, so that two test runs (two checkouts, two CI jobs) on one
// machine do not meet on a port; a port taken between this check and the
// stack's start still fails the stack, with the port named.
func FreePortBase(start, step int) (int, error) {
	for base := start; base < start+20*step; base += step {
		if allFree(ports.For(base).All()) {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no port base from %d in steps of %d has every port free", start, step)
}

func allFree(ps []int) bool {
	for _, p := range ps {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
