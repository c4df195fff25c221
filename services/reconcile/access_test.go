package reconcile_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/reconcile"
)

// The ACL table grants reconcile's principal exactly what reconcile uses.
func TestACLTableGrantsWhatItUses(t *testing.T) {
	topicstest.RequireGranted(t, reconcile.Access())
}
