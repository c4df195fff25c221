package reconcile

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/reconcile/match"
)

func rec(src dmicv1.Source, version uint64, hrg string, del bool) *dmicv1.DeidentifiedRecord {
	ut := dmicv1.UpdateType_UPDATE_TYPE_REPLACE
	if del {
		ut = dmicv1.UpdateType_UPDATE_TYPE_DELETE
	}
	key := "RXX|apc|B1"
	if src == dmicv1.Source_SOURCE_NATIONAL {
		key = "X26|apc|B1"
	}
	return &dmicv1.DeidentifiedRecord{
		Header:   &dmicv1.EnvelopeHeader{RecordKey: key, Source: src, Dataset: dmicv1.Dataset_DATASET_APC, Version: version},
		MatchKey: "apc|RXX|B1",
		Activity: &dmicv1.DeidentifiedActivity{ProviderCode: "RXX", ActivityDate: "2026-03-01", UpdateType: ut, PseudoNhsNumber: "ab",
			Activity: &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{HrgCode: hrg, TreatmentFunctionCode: "100"}}},
		Assignment: &dmicv1.Assignment{CommissionerCode: "36L"},
	}
}

// keyed sets a record's pseudonym and its key version.
func keyed(r *dmicv1.DeidentifiedRecord, pseudonym, version string) *dmicv1.DeidentifiedRecord {
	r.Activity.PseudoNhsNumber, r.Activity.PseudonymKeyVersion = pseudonym, version
	return r
}

const (
	local    = dmicv1.Source_SOURCE_PROVIDER
	national = dmicv1.Source_SOURCE_NATIONAL
)

func TestEntryStatuses(t *testing.T) {
	tests := []struct {
		name    string
		recs    []*dmicv1.DeidentifiedRecord
		want    dmicv1.ReconciliationStatus
		differs []string
		seq     uint64
	}{
		{"local only", []*dmicv1.DeidentifiedRecord{rec(local, 1, "HN12A", false)}, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_LOCAL_ONLY, nil, 1},
		{"national only", []*dmicv1.DeidentifiedRecord{rec(national, 1, "HN12A", false)}, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_NATIONAL_ONLY, nil, 1},
		{"matched", []*dmicv1.DeidentifiedRecord{rec(local, 1, "HN12A", false), rec(national, 5, "HN12A", false)}, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED, nil, 2},
		{"mismatched hrg", []*dmicv1.DeidentifiedRecord{rec(national, 5, "HN12B", false), rec(local, 1, "HN12A", false)}, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MISMATCHED, []string{"hrg_code"}, 2},
		{"revision fixes mismatch", []*dmicv1.DeidentifiedRecord{rec(local, 1, "HN12A", false), rec(national, 5, "HN12B", false), rec(local, 2, "HN12B", false)}, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED, nil, 3},
		{"stale revision ignored", []*dmicv1.DeidentifiedRecord{rec(local, 2, "HN12A", false), rec(national, 5, "HN12A", false), rec(local, 1, "HN12B", false)}, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED, nil, 2},
		{"replay changes nothing", []*dmicv1.DeidentifiedRecord{rec(local, 1, "HN12A", false), rec(local, 1, "HN12A", false)}, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_LOCAL_ONLY, nil, 1},
		{"pseudonyms under two key versions are not compared", []*dmicv1.DeidentifiedRecord{
			keyed(rec(local, 1, "HN12A", false), "cd", "v2"), keyed(rec(national, 5, "HN12A", false), "ab", "v1")},
			dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED, nil, 2},
		{"pseudonyms under one key version are", []*dmicv1.DeidentifiedRecord{
			keyed(rec(local, 1, "HN12A", false), "cd", "v1"), keyed(rec(national, 5, "HN12A", false), "ab", "v1")},
			dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MISMATCHED, []string{"pseudo_nhs_number"}, 2},
		{"a pseudonym on one side only differs", []*dmicv1.DeidentifiedRecord{
			keyed(rec(local, 1, "HN12A", false), "", ""), keyed(rec(national, 5, "HN12A", false), "ab", "v1")},
			dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MISMATCHED, []string{"pseudo_nhs_number"}, 2},
		{"local deleted", []*dmicv1.DeidentifiedRecord{rec(local, 1, "HN12A", false), rec(national, 5, "HN12A", false), rec(local, 2, "", true)}, dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_NATIONAL_ONLY, nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &match.Entry{}
			for _, r := range tt.recs {
				e.Apply(r)
			}
			res := e.Result("apc|RXX|B1")
			if res.Status != tt.want {
				t.Errorf("status = %v, want %v", res.Status, tt.want)
			}
			if !slices.Equal(res.DifferingFields, tt.differs) {
				t.Errorf("differing = %v, want %v", res.DifferingFields, tt.differs)
			}
			if res.Sequence != tt.seq {
				t.Errorf("sequence = %d, want %d", res.Sequence, tt.seq)
			}
		})
	}
}

func msg(t *testing.T, r *dmicv1.DeidentifiedRecord) pipeline.Message {
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Message{Topic: topics.Assigned, Key: []byte(r.MatchKey), Value: b}
}

func outputsByTopic(outs []pipeline.Output) map[string]int {
	m := map[string]int{}
	for _, o := range outs {
		m[o.Topic]++
	}
	return m
}

func TestStateSurvivesRestartThroughChangelog(t *testing.T) {
	// As reconcile's principal: it may write its outputs and read its
	// changelog back.
	kc := brokertest.As(t, brokertest.New(t), Access().Principal)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	sink := kafkapipe.Sink{W: w}

	s1 := NewStage()
	outs, err := s1.Process(ctx, msg(t, rec(local, 1, "HN12A", false)))
	if err != nil {
		t.Fatal(err)
	}
	got := outputsByTopic(outs)
	if got[topics.Reconciled] != 1 || got[topics.ReconcileState] != 1 || got[topics.NationalReturn] != 1 {
		t.Fatalf("outputs of a new local record = %v", got)
	}
	if err := sink.Write(ctx, outs); err != nil {
		t.Fatal(err)
	}

	// A new instance restores the state, so the national copy matches.
	s2 := NewStage()
	if err := s2.Restore(ctx, kafkapipe.AllReader(kc), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if s2.Len() != 1 {
		t.Fatalf("restored %d keys, want 1", s2.Len())
	}
	outs, err = s2.Process(ctx, msg(t, rec(national, 5, "HN12A", false)))
	if err != nil {
		t.Fatal(err)
	}
	var res dmicv1.ReconciliationResult
	for _, o := range outs {
		if o.Topic == topics.Reconciled {
			_ = proto.Unmarshal(o.Value, &res)
		}
		if o.Topic == topics.NationalReturn {
			t.Error("a national record must not go to the national return")
		}
	}
	if res.Status != dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED || res.Sequence != 2 {
		t.Errorf("after restore: status %v sequence %d, want matched 2", res.Status, res.Sequence)
	}

	// A replay of the first record (redelivery after a crash) re-emits the
	// result but writes no new state.
	outs, _ = s2.Process(ctx, msg(t, rec(local, 1, "HN12A", false)))
	if got := outputsByTopic(outs); got[topics.ReconcileState] != 0 || got[topics.Reconciled] != 1 {
		t.Errorf("replay outputs = %v", got)
	}
}

func TestProcessRejectsUndecodableAndKeyless(t *testing.T) {
	s := NewStage()
	if _, err := s.Process(context.Background(), pipeline.Message{Value: []byte{0xff, 0x01}}); err == nil {
		t.Error("garbage accepted")
	}
	r := rec(local, 1, "HN12A", false)
	r.MatchKey = ""
	_, err := s.Process(context.Background(), msg(t, r))
	var rej *pipeline.Rejection
	if err == nil || !asRejection(err, &rej) || rej.Failures[0].RuleId != "REC-001" {
		t.Errorf("keyless record: err = %v", err)
	}
}

func asRejection(err error, target **pipeline.Rejection) bool {
	r, ok := err.(*pipeline.Rejection)
	if ok {
		*target = r
	}
	return ok
}

func BenchmarkProcess(b *testing.B) {
	s := NewStage()
	recs := make([]pipeline.Message, 1000)
	for i := range recs {
		r := rec(local, uint64(i+1), "HN12A", false)
		r.MatchKey = "apc|RXX|B" + strconv.Itoa(i)
		v, _ := proto.Marshal(r)
		recs[i] = pipeline.Message{Topic: topics.Assigned, Value: v}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Process(ctx, recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
}
