package ingest_test

import (
	"testing"

	"github.com/dmic-nhs/dmic/services/ingest"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
)

// The ACL table grants ingest's principal exactly what ingest uses.
func TestACLTableGrantsWhatItUses(t *testing.T) {
	topicstest.RequireGranted(t, ingest.Access())
}
