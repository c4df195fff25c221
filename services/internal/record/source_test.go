package record_test

import (
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

func TestSource(t *testing.T) {
	for in, want := range map[string]dmicv1.Source{
		"provider": dmicv1.Source_SOURCE_PROVIDER, " Local ": dmicv1.Source_SOURCE_PROVIDER, "": dmicv1.Source_SOURCE_PROVIDER,
		"national": dmicv1.Source_SOURCE_NATIONAL, "SUS": dmicv1.Source_SOURCE_NATIONAL,
	} {
		got, err := record.ParseSource(in)
		if err != nil || got != want {
			t.Errorf("ParseSource(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := record.ParseSource("nationl"); err == nil {
		t.Error("ParseSource accepted an unknown source")
	}
	for s, want := range map[dmicv1.Source]string{
		dmicv1.Source_SOURCE_PROVIDER: "provider", dmicv1.Source_SOURCE_NATIONAL: "national", dmicv1.Source_SOURCE_UNSPECIFIED: "",
	} {
		if got := record.SourceName(s); got != want {
			t.Errorf("SourceName(%v) = %q, want %q", s, got, want)
		}
		if back, err := record.ParseSource(want); want != "" && (err != nil || back != s) {
			t.Errorf("ParseSource(SourceName(%v)) = %v, %v", s, back, err)
		}
	}
}
