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
	ring, err := deid.NewKeyRing(map[string]deid.Key{
		deid.DomainAnalytics:      {Version: "test-1", Secret: bytes.Repeat([]byte{7}, 32)},
		deid.DomainNationalReturn: {Version: "test-1", Secret: bytes.Repeat([]byte{8}, 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return deidentify.New(deid.NewDeidentifier(ring, ref))
}
