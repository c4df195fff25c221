package validate

import (
	"fmt"
	"os"

	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/validate/spec"
)

// ValidatorConfig is what a validator is built from. The service, the
// providers' offline checker (dmic validate) and the benchmark's compute
// floor all build theirs with NewValidator, so that all three judge a record
// by the same rules.
type ValidatorConfig struct {
	// ReferenceDir is the folder of reference data whose GP practices
	// (epraccur.csv) back rule ORG-006 and whose NHS England service codes
	// by year (cam_service_codes_2024-25_2025-26.csv) back rule CODE-031,
	// and whose HRG4+ list (hrg4_codes_2020-21_to_2025-26.csv) rule CLIN-008;
	// "" leaves all three unchecked.
	ReferenceDir string
	// SpecFiles are specification documents to add to the built-in ones, as
	// if loaded at Clock's now (the offline checker's --spec).
	SpecFiles []string
	// Clock decides which specification version is in effect; nil is the
	// wall clock.
	Clock clock.Clock
}

// NewValidator builds the validator cfg describes.
func NewValidator(cfg ValidatorConfig) (*spec.Validator, error) {
	reg, err := spec.BuiltIn()
	if err != nil {
		return nil, fmt.Errorf("built-in specifications: %w", err)
	}
	for _, path := range cfg.SpecFiles {
		doc, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("specification file: %w", err)
		}
		if reg, _, _, err = reg.With(doc, spec.OriginLoaded, cfg.Clock.Now()); err != nil {
			return nil, fmt.Errorf("specification file %s: %w", path, err)
		}
	}
	opts := []spec.Option{spec.WithClock(cfg.Clock)}
	if cfg.ReferenceDir != "" {
		ref, err := refdata.LoadDir(cfg.ReferenceDir)
		if err != nil {
			return nil, fmt.Errorf("reference data: %w", err)
		}
		opts = append(opts, spec.WithPractices(ref), spec.WithServiceCodes(ref), spec.WithHRGs(ref))
	}
	return spec.New(reg, opts...), nil
}
