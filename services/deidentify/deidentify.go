// Package deidentify is the de-identify stage: validated records (with
// identifiers) in, de-identified records keyed by match key out. It is the
// last place any patient-identifiable value is read, and the only holder of
// the pseudonymisation key.
package deidentify

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Stage de-identifies records. One goroutine at a time (the Deidentifier
// reuses its HMAC state).
type Stage struct {
	d  *didi.Deidentifier
	in dmicv1.ValidatedRecord
}

// New builds the stage.
func New(d *didi.Deidentifier) *Stage { return &Stage{d: d} }

// Process implements pipeline.Processor.
func (s *Stage) Process(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	in := &s.in
	proto.Reset(in)
	if err := proto.Unmarshal(m.Value, in); err != nil {
		return nil, pipeline.Reject("STAGE-DECODE", "", "validated record is not a dmic.v1.ValidatedRecord")
	}
	hdr := in.GetHeader()
	act, err := s.d.Deidentify(hdr.GetDataset(), in.GetRecord())
	var idErr *didi.IdentifierError
	if errors.As(err, &idErr) {
		rej := pipeline.Reject("DEID-002", idErr.Field, idErr.Error())
		rej.Header, rej.RecordID, rej.Provider = hdr, in.GetRecord().GetCdsUniqueIdentifier(), in.GetRecord().GetProviderCode()
		if idErr.Field == "cds_unique_identifier" {
			// The record id is the identifier's carrier: the dead letter,
			// its log line and the rejections table name the record by its
			// source offset instead.
			if hdr != nil {
				rej.Header = proto.CloneOf(hdr)
				rej.Header.RecordKey = ""
			}
			rej.RecordID = ""
		}
		return nil, rej
	}
	if err != nil {
		rej := pipeline.Reject("DEID-001", "", fmt.Sprintf("record could not be de-identified: %v", err))
		rej.Header, rej.RecordID, rej.Provider = hdr, in.GetRecord().GetCdsUniqueIdentifier(), in.GetRecord().GetProviderCode()
		return nil, rej
	}
	out := &dmicv1.DeidentifiedRecord{
		Header:   hdr,
		Activity: act,
		MatchKey: didi.MatchKey(hdr.GetDataset(), act.GetProviderCode(), act.GetCdsUniqueIdentifier()),
		Warnings: in.GetWarnings(),
	}
	v, err := proto.Marshal(out)
	if err != nil {
		return nil, err
	}
	// Re-key by match key: a local record and its national counterpart meet in
	// one partition from here on.
	return []pipeline.Output{{Topic: topics.Deidentified, Key: []byte(out.MatchKey), Value: v}}, nil
}
