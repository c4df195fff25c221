// Package assign is the commissioner assignment stage: it applies the
// Commissioner Assignment Method to de-identified records.
package assign

import (
	"context"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// assignmentField is DeidentifiedRecord.assignment's field number
// (proto/dmic/v1/envelope.proto).
const assignmentField protowire.Number = 4

// Stage assigns commissioners.
type Stage struct {
	a *cam.Assigner
	// work recycles a Result and an encoding buffer per record in flight.
	work sync.Pool
}

type work struct {
	r   cam.Result
	buf []byte
}

// New builds the stage.
func New(a *cam.Assigner) *Stage { return &Stage{a: a} }

// Process implements pipeline.Processor.
//
// The assigned record is the de-identified record as it came, with its
// assignment field appended: protobuf reads a message's fields in any order,
// so the bytes already received need no re-encoding, and only the
// assignment is written. A record that already carries an assignment (a
// replay of an assigned record) is re-encoded whole instead, because
// appending would merge the two.
func (s *Stage) Process(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	rec := &dmicv1.DeidentifiedRecord{}
	if err := proto.Unmarshal(m.Value, rec); err != nil {
		return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.v1.DeidentifiedRecord")
	}
	wk, _ := s.work.Get().(*work)
	if wk == nil {
		wk = new(work)
	}
	defer s.work.Put(wk)
	s.a.Decide(rec.GetActivity(), nil, &wk.r)
	if rec.Assignment != nil {
		rec.Assignment = s.a.Proto(&wk.r)
		v, err := proto.Marshal(rec)
		if err != nil {
			return nil, err
		}
		return []pipeline.Output{{Topic: topics.Assigned, Key: m.Key, Value: v}}, nil
	}
	enc, err := s.a.AppendProto(wk.buf[:0], &wk.r)
	wk.buf = enc
	if err != nil {
		return nil, err
	}
	n := len(m.Value)
	v := make([]byte, n, n+protowire.SizeTag(assignmentField)+protowire.SizeBytes(len(enc)))
	copy(v, m.Value)
	v = protowire.AppendTag(v, assignmentField, protowire.BytesType)
	v = protowire.AppendBytes(v, enc)
	return []pipeline.Output{{Topic: topics.Assigned, Key: m.Key, Value: v}}, nil
}
