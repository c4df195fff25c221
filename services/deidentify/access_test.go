package deidentify_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
)

// The ACL table grants deidentify's principal exactly what deidentify uses.
func TestACLTableGrantsWhatItUses(t *testing.T) {
	topicstest.RequireGranted(t, deidentify.Access())
}
