// Package assign is the commissioner assignment stage: it applies the
// Commissioner Assignment Method to de-identified records.
package assign

import (
	"context"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Stage assigns commissioners.
type Stage struct {
	a *cam.Assigner
}

// New builds the stage.
func New(a *cam.Assigner) *Stage { return &Stage{a: a} }

// Process implements pipeline.Processor.
func (s *Stage) Process(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	rec := &dmicv1.DeidentifiedRecord{}
	if err := proto.Unmarshal(m.Value, rec); err != nil {
		return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.v1.DeidentifiedRecord")
	}
	rec.Assignment = s.a.Assign(rec.GetActivity())
	v, err := proto.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return []pipeline.Output{{Topic: topics.Assigned, Key: m.Key, Value: v}}, nil
}
