package validate_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
	"github.com/dmic-nhs/dmic/services/validate"
)

// The ACL table grants validate's principal exactly what validate uses.
func TestACLTableGrantsWhatItUses(t *testing.T) {
	topicstest.RequireGranted(t, validate.Access())
}
