package brokertest_test

import (
	"net"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
)

// The broker answers while its test runs and is closed when the test ends, so
// that no test leaves a listener behind.
func TestNewLivesAsLongAsItsTest(t *testing.T) {
	var addr string
	t.Run("owner", func(t *testing.T) {
		addr = brokertest.New(t).Addr()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("the broker does not accept connections while its test runs: %v", err)
		}
		c.Close()
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("the broker at %s still accepts connections after its test ended", addr)
	}
}
