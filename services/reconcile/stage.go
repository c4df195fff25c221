// Package reconcile is the reconcile stage: it matches local provider
// records with their national (SUS) counterparts by match key, keeps the
// state of each key in memory and in its changelog, and writes the results
// and the national return. The matching rules are package match.
//
// The match key is made at de-identification (deid.MatchKey: data set,
// provider and CDS unique identifier), and the de-identified topics are keyed
// by it, so both copies of one activity reach the same partition and the same
// reconcile instance.
package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/reconcile/match"
)

// Stage reconciles assigned records. Its state lives in memory and, durably,
// in the changelog topic (topics.ReconcileState), written in the same batch as
// its results and before the input offsets are committed: a restart rebuilds
// the state from the changelog and a replayed input is recognised by version.
//
// Not supported yet: several reconcile instances. Restore reads every
// partition of the changelog, which is right for one instance; with several,
// state would have to be loaded per assigned partition on each rebalance.
type Stage struct {
	state map[string]*match.Entry
}

// NewStage builds an empty stage; call Restore before consuming.
func NewStage() *Stage { return &Stage{state: map[string]*match.Entry{}} }

// Len is the number of match keys held.
func (s *Stage) Len() int { return len(s.state) }

// Process implements pipeline.Processor.
func (s *Stage) Process(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	rec := &dmicv1.DeidentifiedRecord{}
	if err := proto.Unmarshal(m.Value, rec); err != nil {
		return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.v1.DeidentifiedRecord")
	}
	mk := rec.GetMatchKey()
	if mk == "" {
		rej := pipeline.Reject("REC-001", "match_key", "record has no match key")
		rej.Header = rec.GetHeader()
		return nil, rej
	}
	e := s.state[mk]
	if e == nil {
		e = &match.Entry{}
		s.state[mk] = e
	}
	outcome := e.Apply(rec)
	if outcome == match.Stale {
		return nil, nil
	}
	res, err := proto.Marshal(e.Result(mk))
	if err != nil {
		return nil, err
	}
	outs := []pipeline.Output{{Topic: topics.Reconciled, Key: []byte(mk), Value: res}}
	if outcome == match.Changed {
		snap, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		outs = append(outs, pipeline.Output{Topic: topics.ReconcileState, Key: []byte(mk), Value: snap})
	}
	// Local activity, reconciled, goes back to the national exchange, with
	// the national return's pseudonym only. rec is not used after this.
	if rec.GetHeader().GetSource() == dmicv1.Source_SOURCE_PROVIDER {
		v, err := nationalReturn(rec)
		if err != nil {
			return nil, err
		}
		outs = append(outs, pipeline.Output{Topic: topics.NationalReturn, Key: []byte(mk), Value: v})
	}
	return outs, nil
}

// Restore reads the whole changelog topic into memory, last value per key.
func (s *Stage) Restore(ctx context.Context, readAll pipeline.ReadAll, log *slog.Logger) error {
	start := time.Now()
	n, err := readAll(ctx, topics.ReconcileState, func(m pipeline.Message) error {
		e := &match.Entry{}
		if err := json.Unmarshal(m.Value, e); err != nil {
			return fmt.Errorf("partition %d offset %d: bad state: %w", m.Partition, m.Offset, err)
		}
		s.state[string(m.Key)] = e
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	log.Info("reconcile state restored", "changelog_messages", n, "match_keys", len(s.state), "took", time.Since(start))
	return nil
}
