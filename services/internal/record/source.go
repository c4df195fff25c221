package record

import (
	"fmt"
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// SourceName is "provider" or "national"; "" for an unspecified or unknown source.
func SourceName(s dmicv1.Source) string {
	switch s {
	case dmicv1.Source_SOURCE_PROVIDER:
		return "provider"
	case dmicv1.Source_SOURCE_NATIONAL:
		return "national"
	}
	return ""
}

// ParseSource accepts "provider", "local", "national" or "sus", in any case;
// an empty source is the provider.
func ParseSource(s string) (dmicv1.Source, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "provider", "local", "":
		return dmicv1.Source_SOURCE_PROVIDER, nil
	case "national", "sus":
		return dmicv1.Source_SOURCE_NATIONAL, nil
	}
	return 0, fmt.Errorf("source %q is not provider or national", s)
}
