package leakguard_test

import (
	"bytes"
	"testing"

	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
)

// realStage is the de-identify stage as the service builds it, with a test key.
func realStage(t *testing.T, ref *refdata.Reference) pipeline.Processor {
	t.Helper()
	ring, err := didi.NewKeyRing(map[string]didi.Key{
		didi.DomainAnalytics:      {Version: "test-1", Secret: bytes.Repeat([]byte{7}, 32)},
		didi.DomainNationalReturn: {Version: "test-1", Secret: bytes.Repeat([]byte{8}, 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return deidentify.New(didi.NewDeidentifier(ring, ref))
}
