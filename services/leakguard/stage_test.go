package leakguard_test

import (
	"bytes"
	"testing"

	"github.com/dmic-nhs/dmic/services/deid"
	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/pipeline"
	"github.com/dmic-nhs/dmic/services/refdata"
)

// realStage is the de-identify stage as the service builds it, with a test key.
func realStage(t *testing.T, ref *refdata.Reference) pipeline.Processor {
	t.Helper()
	return deidentify.New(deid.NewDeidentifier(deid.Key{Version: "test-1", Secret: bytes.Repeat([]byte{7}, 32)}, ref))
}
