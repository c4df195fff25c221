package assign_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/assign"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
)

// The ACL table grants assign's principal exactly what assign uses.
func TestACLTableGrantsWhatItUses(t *testing.T) {
	topicstest.RequireGranted(t, assign.Access())
}
