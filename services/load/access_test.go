package load_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/load"
)

// The ACL table grants load's principal exactly what load uses.
func TestACLTableGrantsWhatItUses(t *testing.T) {
	topicstest.RequireGranted(t, load.Access())
}
