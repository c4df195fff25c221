package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
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

// revision is r as the stage reads it from dmic.assigned.
func revision(t *testing.T, r *dmicv1.DeidentifiedRecord) *match.Revision {
	t.Helper()
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	rv := &match.Revision{}
	if err := match.Read(b, rv); err != nil {
		t.Fatal(err)
	}
	return rv
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
				e.Apply(revision(t, r))
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

// env is a broker with dmic's topics, reached as reconcile's principal (so
// that its ACLs are tested too), and a sink writing to it as the runner's.
type env struct {
	t    *testing.T
	b    *broker.Broker
	kc   kafkaconn.Cluster
	sink kafkapipe.Sink
}

func newEnv(t *testing.T, opts ...broker.Option) *env {
	t.Helper()
	b := brokertest.New(t, opts...)
	kc := brokertest.As(t, b, Access().Principal)
	w := kafkapipe.NewWriter(kc)
	t.Cleanup(func() { w.Close() })
	return &env{t: t, b: b, kc: kc, sink: kafkapipe.Sink{W: w}}
}

// instance is one reconcile instance: its stage, over its own state
// directory, with its own metrics.
type instance struct {
	*Stage
	dir    string
	closed bool
}

func (e *env) open(dir string) *instance {
	e.t.Helper()
	s, err := NewStage(Config{Dir: dir, Changelog: kafkapipe.PartitionLog(e.kc), Metrics: prometheus.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	i := &instance{Stage: s, dir: dir}
	e.t.Cleanup(i.close)
	return i
}

func (i *instance) close() {
	if !i.closed {
		i.closed = true
		i.Close()
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// batch runs msgs through i as the runner does: prepare, process each,
// write every output, tell the stage what was written. It returns the
// outputs.
func (e *env) batch(i *instance, msgs ...pipeline.Message) []pipeline.Output {
	e.t.Helper()
	outs := e.process(i, msgs...)
	if err := e.sink.Write(ctx(e.t), outs); err != nil {
		e.t.Fatal(err)
	}
	if err := i.EndBatch(ctx(e.t), outs); err != nil {
		e.t.Fatal(err)
	}
	return outs
}

// process prepares and processes msgs, writing nothing.
func (e *env) process(i *instance, msgs ...pipeline.Message) []pipeline.Output {
	e.t.Helper()
	if err := i.BeginBatch(ctx(e.t), msgs); err != nil {
		e.t.Fatal(err)
	}
	var outs []pipeline.Output
	for _, m := range msgs {
		o, err := i.Process(ctx(e.t), m)
		if err != nil {
			e.t.Fatal(err)
		}
		outs = append(outs, o...)
	}
	return outs
}

// at is r as the runner hands it over, read from partition p of the input.
func at(t *testing.T, r *dmicv1.DeidentifiedRecord, p int) pipeline.Message {
	t.Helper()
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Message{Topic: topics.Assigned, Partition: p, Key: []byte(r.MatchKey), Value: b}
}

func msg(t *testing.T, r *dmicv1.DeidentifiedRecord) pipeline.Message { return at(t, r, 0) }

func outputsByTopic(outs []pipeline.Output) map[string]int {
	m := map[string]int{}
	for _, o := range outs {
		m[o.Topic]++
	}
	return m
}

// result is the last reconciliation result among outs.
func result(t *testing.T, outs []pipeline.Output) *dmicv1.ReconciliationResult {
	t.Helper()
	var res *dmicv1.ReconciliationResult
	for _, o := range outs {
		if o.Topic == topics.Reconciled {
			res = &dmicv1.ReconciliationResult{}
			if err := proto.Unmarshal(o.Value, res); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res == nil {
		t.Fatalf("no result among %v", outputsByTopic(outs))
	}
	return res
}

func wantResult(t *testing.T, what string, res *dmicv1.ReconciliationResult, status dmicv1.ReconciliationStatus, seq uint64) {
	t.Helper()
	if res.Status != status || res.Sequence != seq {
		t.Errorf("%s: status %v sequence %d, want %v %d", what, res.Status, res.Sequence, status, seq)
	}
}

// restored is how many changelog messages i read into its store.
func restored(i *instance) int {
	return int(testutil.ToFloat64(i.metrics.restored.WithLabelValues("behind")) + testutil.ToFloat64(i.metrics.restored.WithLabelValues("rebuild")))
}

const (
	matched      = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MATCHED
	mismatched   = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_MISMATCHED
	localOnly    = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_LOCAL_ONLY
	nationalOnly = dmicv1.ReconciliationStatus_RECONCILIATION_STATUS_NATIONAL_ONLY
)

func TestStateSurvivesRestartThroughChangelog(t *testing.T) {
	e := newEnv(t)
	s1 := e.open(t.TempDir())
	outs := e.batch(s1, msg(t, rec(local, 1, "HN12A", false)))
	got := outputsByTopic(outs)
	if got[topics.Reconciled] != 1 || got[topics.ReconcileState] != 1 || got[topics.NationalReturn] != 1 {
		t.Fatalf("outputs of a new local record = %v", got)
	}

	// A new instance with a new store restores the state from the
	// changelog, so the national copy matches.
	s2 := e.open(t.TempDir())
	outs = e.batch(s2, msg(t, rec(national, 5, "HN12A", false)))
	wantResult(t, "after restore", result(t, outs), matched, 2)
	if n := restored(s2); n != 1 {
		t.Errorf("restored %d changelog messages, want 1", n)
	}
	if outputsByTopic(outs)[topics.NationalReturn] != 0 {
		t.Error("a national record must not go to the national return")
	}

	// A replay of the first record (redelivery after a crash) re-emits the
	// result but writes no new state.
	outs = e.batch(s2, msg(t, rec(local, 1, "HN12A", false)))
	if got := outputsByTopic(outs); got[topics.ReconcileState] != 0 || got[topics.Reconciled] != 1 {
		t.Errorf("replay outputs = %v", got)
	}
	wantResult(t, "replay", result(t, outs), matched, 2)
}

// An instance restarted with its store reads nothing of the changelog that
// it wrote itself.
func TestRestartWithItsStoreReadsNothing(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	s := e.open(dir)
	e.batch(s, msg(t, rec(local, 1, "HN12A", false)))
	e.batch(s, msg(t, rec(local, 2, "HN12B", false)))
	s.close()

	s = e.open(dir)
	outs := e.batch(s, msg(t, rec(national, 5, "HN12B", false)))
	wantResult(t, "after restart", result(t, outs), matched, 3)
	if n := restored(s); n != 0 {
		t.Errorf("restored %d changelog messages, want 0: the store held them", n)
	}
	if c := testutil.ToFloat64(s.metrics.checks.WithLabelValues("current")); c != 1 {
		t.Errorf("current checks = %v, want 1", c)
	}
}

// A partition moves from one instance to another and back (rebalances):
// each reads what the other wrote before it processes anything, and only
// of the partitions it is given.
// A batch's entries are read from the store by the messages' Kafka keys
// (prefetch); a key is its own and no longer one (B1 is not B12), two
// copies in one batch fold in order, and a record whose Kafka key is not its
// match key still finds its entry.
func TestLookups(t *testing.T) {
	e := newEnv(t)
	s := e.open(t.TempDir())
	withKey := func(r *dmicv1.DeidentifiedRecord, key string) *dmicv1.DeidentifiedRecord {
		r.MatchKey = key
		return r
	}
	e.batch(s, msg(t, withKey(rec(local, 1, "HN12A", false), "apc|RXX|B12")))
	outs := e.batch(s, msg(t, rec(local, 1, "HN12A", false)), msg(t, rec(national, 5, "HN12B", false)),
		msg(t, withKey(rec(national, 5, "HN12A", false), "apc|RXX|B12")))
	var got []string
	for _, o := range outs {
		if o.Topic == topics.Reconciled {
			res := result(t, []pipeline.Output{o})
			got = append(got, fmt.Sprintf("%s %v %d", res.MatchKey, res.Status, res.Sequence))
		}
	}
	want := []string{"apc|RXX|B1 " + localOnly.String() + " 1", "apc|RXX|B1 " + mismatched.String() + " 2", "apc|RXX|B12 " + matched.String() + " 2"}
	if !slices.Equal(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
	m := msg(t, rec(local, 2, "HN12B", false))
	m.Key = []byte("another key")
	outs = e.batch(s, m)
	wantResult(t, "a record under another Kafka key", result(t, outs), matched, 3)
}

func TestPartitionMovesBetweenInstances(t *testing.T) {
	e := newEnv(t)
	a, b := e.open(t.TempDir()), e.open(t.TempDir())
	other := rec(local, 1, "HN12A", false)
	other.MatchKey = "apc|RXX|B2"
	e.batch(a, msg(t, rec(local, 1, "HN12A", false)), at(t, other, 3))

	// b is given partition 0 only: it reads partition 0's one message.
	outs := e.batch(b, msg(t, rec(national, 5, "HN12A", false)))
	wantResult(t, "b, national copy", result(t, outs), matched, 2)
	if n := restored(b); n != 1 {
		t.Errorf("b restored %d messages, want partition 0's 1 (not partition 3's)", n)
	}
	if _, held := b.parts[3]; held {
		t.Error("b opened partition 3, which it was never given")
	}

	// a is given partition 0 again: it reads b's snapshot first, so the local
	// revision meets the national copy (without it: local only, sequence 2).
	outs = e.batch(a, msg(t, rec(local, 2, "HN12B", false)))
	wantResult(t, "a, local revision", result(t, outs), mismatched, 3)
	if n := restored(a); n != 2 {
		t.Errorf("a restored %d messages, want 2 (its own, then b's)", n)
	}
}

// An instance that lost its partition without noticing (a zombie: paused
// past its session, its write late) writes a snapshot older than the
// state the new owner moved on to. Neither the new owner nor a later
// restore takes it: a snapshot wins by sequence, not by position.
func TestOverlappingWriterCannotMoveStateBack(t *testing.T) {
	e := newEnv(t)
	owner, zombie := e.open(t.TempDir()), e.open(t.TempDir())
	e.batch(owner, msg(t, rec(local, 1, "HN12A", false)))

	nat := msg(t, rec(national, 5, "HN12A", false))
	// The zombie prepared its batch before the owner went on...
	staleOuts := e.process(zombie, nat)
	// ...the owner processes the same message and the next...
	e.batch(owner, nat, msg(t, rec(local, 2, "HN12B", false)))
	// ...and the zombie's write lands last.
	if err := e.sink.Write(ctx(t), staleOuts); err != nil {
		t.Fatal(err)
	}
	if err := zombie.EndBatch(ctx(t), staleOuts); err != nil {
		t.Fatal(err)
	}
	wantResult(t, "zombie's result", result(t, staleOuts), matched, 2)

	// The owner reads the zombie's snapshot and keeps its own: the national
	// revision meets the local revision (with the zombie's state: local
	// copy 1, mismatched, sequence 3).
	outs := e.batch(owner, msg(t, rec(national, 6, "HN12B", false)))
	wantResult(t, "owner after the zombie's write", result(t, outs), matched, 4)

	// A new instance restores the owner's state: the last national revision
	// again is a replay (nothing to write), sequence 4.
	fresh := e.open(t.TempDir())
	outs = e.batch(fresh, msg(t, rec(national, 6, "HN12B", false)))
	if got := outputsByTopic(outs); got[topics.ReconcileState] != 0 {
		t.Errorf("restored state moved on at a replay (outputs %v): it is not the owner's", got)
	}
	wantResult(t, "restored", result(t, outs), matched, 4)
}

// A crash after the outputs were written but before the store took them:
// the restarted instance reads its own snapshot back from the changelog,
// and the redelivered message is a replay.
func TestCrashBetweenWriteAndStore(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	s := e.open(dir)
	m := msg(t, rec(local, 1, "HN12A", false))
	outs := e.process(s, m)
	if err := e.sink.Write(ctx(t), outs); err != nil {
		t.Fatal(err)
	}
	s.close() // no EndBatch, no commit

	s = e.open(dir)
	outs = e.batch(s, m)
	if got := outputsByTopic(outs); got[topics.ReconcileState] != 0 {
		t.Errorf("redelivery wrote state again: %v", got)
	}
	wantResult(t, "redelivery", result(t, outs), localOnly, 1)
	if n := restored(s); n != 1 {
		t.Errorf("restored %d, want its own 1", n)
	}
}

// A store kept from another broker (its data wiped, a state directory
// copied) is emptied and rebuilt from the changelog it is used with.
func TestStoreOfAnotherChangelogIsEmptied(t *testing.T) {
	dir := t.TempDir()
	e1 := newEnv(t)
	s := e1.open(dir)
	e1.batch(s, msg(t, rec(local, 1, "HN12A", false)))
	s.close()

	e2 := newEnv(t)
	s = e2.open(dir)
	outs := e2.batch(s, msg(t, rec(local, 1, "HN12A", false)))
	if got := outputsByTopic(outs); got[topics.ReconcileState] != 1 {
		t.Errorf("outputs %v: the record was taken for a replay of the other broker's", got)
	}
	wantResult(t, "on the new broker", result(t, outs), localOnly, 1)
}

// recreateChangelog deletes the changelog and makes it again with n
// partitions, as an administrator would.
func recreateChangelog(t *testing.T, e *env, n int) {
	t.Helper()
	admin := brokertest.Admin(t, e.b)
	c := admin.Client(10 * time.Second)
	resp, err := c.DeleteTopics(ctx(t), &kafka.DeleteTopicsRequest{Topics: []string{topics.ReconcileState}})
	if err != nil || resp.Errors[topics.ReconcileState] != nil {
		t.Fatalf("delete the changelog: %v %v", err, resp)
	}
	cr, err := c.CreateTopics(ctx(t), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topics.ReconcileState, NumPartitions: n, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}}}})
	if err != nil || cr.Errors[topics.ReconcileState] != nil {
		t.Fatalf("create the changelog: %v %v", err, cr)
	}
}

// A changelog shorter than the store's copy (deleted and made again) is
// the truth: the partition is rebuilt from it.
func TestShorterChangelogRebuildsThePartition(t *testing.T) {
	e := newEnv(t, broker.WithDefaultPartitions(2))
	s := e.open(t.TempDir())
	e.batch(s, msg(t, rec(local, 1, "HN12A", false)), msg(t, rec(national, 5, "HN12A", false)))
	recreateChangelog(t, e, 2)

	outs := e.batch(s, msg(t, rec(local, 1, "HN12A", false)))
	if got := outputsByTopic(outs); got[topics.ReconcileState] != 1 {
		t.Errorf("outputs %v: the store's copy of a changelog that is gone was kept", got)
	}
	wantResult(t, "rebuilt", result(t, outs), localOnly, 1)
	if c := testutil.ToFloat64(s.metrics.checks.WithLabelValues("rebuild")); c != 1 {
		t.Errorf("rebuild checks = %v, want 1", c)
	}
}

// The changelog needs a partition for each input partition: with fewer,
// the stage does not start a batch (and the runner's health says why).
func TestChangelogNeedsAPartitionPerInputPartition(t *testing.T) {
	e := newEnv(t, broker.WithDefaultPartitions(2))
	recreateChangelog(t, e, 1)
	s := e.open(t.TempDir())
	err := s.BeginBatch(ctx(t), []pipeline.Message{msg(t, rec(local, 1, "HN12A", false))})
	if err == nil || !strings.Contains(err.Error(), "has 1 partitions and the input") {
		t.Errorf("BeginBatch = %v, want the partition counts named", err)
	}
}

// A changelog written before the binary form holds JSON snapshots; they are
// read as before.
func TestJSONChangelogIsRead(t *testing.T) {
	e := newEnv(t)
	old := &match.Entry{}
	old.Apply(revision(t, rec(local, 1, "HN12A", false)))
	v, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	snap := pipeline.Output{Topic: topics.ReconcileState, Key: []byte("apc|RXX|B1"), Value: v}.ToPartition(0)
	if err := e.sink.Write(ctx(t), []pipeline.Output{snap}); err != nil {
		t.Fatal(err)
	}
	s := e.open(t.TempDir())
	outs := e.batch(s, msg(t, rec(national, 5, "HN12A", false)))
	wantResult(t, "after a JSON snapshot", result(t, outs), matched, 2)
}

func TestProcessRejectsUndecodableAndKeyless(t *testing.T) {
	e := newEnv(t)
	s := e.open(t.TempDir())
	if err := s.BeginBatch(ctx(t), []pipeline.Message{{Topic: topics.Assigned}}); err != nil {
		t.Fatal(err)
	}
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
	// A partition the batch did not prepare is a bug of the caller, said so.
	if _, err := s.Process(context.Background(), at(t, rec(local, 1, "HN12A", false), 4)); err == nil || !strings.Contains(err.Error(), "not prepared") {
		t.Errorf("unprepared partition: err = %v", err)
	}
}

func asRejection(err error, target **pipeline.Rejection) bool {
	r, ok := err.(*pipeline.Rejection)
	if ok {
		*target = r
	}
	return ok
}

// fullRecord is an assigned APC record with every field a real one has
// (about 1,000 bytes, as on dmic.assigned in the bench), so that what the
// benchmark decodes and re-encodes is what the pipeline does: rec's records
// are a tenth of the size.
func fullRecord(src dmicv1.Source, cdsID string) *dmicv1.DeidentifiedRecord {
	submitter := "RXX"
	if src == national {
		submitter = "X26"
	}
	return &dmicv1.DeidentifiedRecord{
		Header: &dmicv1.EnvelopeHeader{RecordKey: submitter + "|apc|" + cdsID, Dataset: dmicv1.Dataset_DATASET_APC, Source: src,
			SubmitterOrgCode: submitter, SubmissionId: "sub-0123456789abcdef01234567", ReceivedTime: timestamppb.New(time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)),
			SpecVersion: "2026.1", Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", RawPartition: 3, RawOffset: 123456, LineNumber: 812,
			Version: 1772400000000123456},
		MatchKey: "apc|RXX|" + cdsID,
		Activity: &dmicv1.DeidentifiedActivity{CdsUniqueIdentifier: cdsID, UpdateType: dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
			ApplicableDateTime: "2026-03-01T10:00:00", ProviderCode: "RXX", SiteCode: "RXX01", SubmittedCommissionerCode: "36L",
			AdministrativeCategoryCode: "01", OverseasVisitorStatusCode: "1", PseudoNhsNumber: strings.Repeat("a1", 32), PseudonymKeyVersion: "av1",
			NhsNumberStatusIndicatorCode: "01", AgeAtActivityYears: 67, AgeBand: "65-69", ActivityDate: "2026-03-01",
			Demographics: &dmicv1.Demographics{PersonGenderCode: "2", EthnicCategory: "A", GeneralMedicalPracticeCode: "H85030"},
			Residence: &dmicv1.Residence{Lsoa_2011: "E01000001", Lsoa_2021: "E01000001", Msoa_2011: "E02000001", Msoa_2021: "E02000001",
				LocalAuthority: "E09000001", SubIcb: "36L", Icb: "QWE", Country: "E92000001", PostcodeSector: "SW1A 1", ImdDecile: 7,
				HealthArea: "E38000245", Region: "E40000003"},
			Activity: &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{CdsType: "130", HospitalProviderSpellNumber: "SP" + cdsID,
				EpisodeNumber: "01", StartDateHospitalProviderSpell: "2026-02-27", AdmissionMethodCode: "21", SourceOfAdmissionCode: "19",
				StartDateEpisode: "2026-02-27", EndDateEpisode: "2026-03-01", DischargeDateHospitalProviderSpell: "2026-03-01",
				DischargeMethodCode: "1", DischargeDestinationCode: "19", PatientClassificationCode: "1", TreatmentFunctionCode: "300",
				PrimaryDiagnosisIcd: "J18.9", PrimaryProcedureOpcs: "X29.2", HrgCode: "DZ11K", SecondaryDiagnosesIcd: "I10,E11.9,N18.3",
				SecondaryProceduresOpcs: "Y53.2"}},
			PseudonymDomain:                 "analytics",
			DomainPseudonyms:                []*dmicv1.DomainPseudonym{{Domain: "national-return", Pseudonym: strings.Repeat("b2", 32), KeyVersion: "nv1"}},
			OverseasVisitorChargingCategory: "A", ServiceCode: "300", CommissionedServiceCategoryCode: "21", PointOfDeliveryCode: "NEL"},
		Assignment: &dmicv1.Assignment{CommissionerCode: "36L", AssignmentMethod: "Sub-ICB (Practice Mapped)", CommissionerType: "Sub-ICB",
			RuleId: "CAM-C-6", CamVersion: "2025/26", Step: "C-6", ReasonCode: "36L_C_6_1", Reason: "C-6 - Sub-ICB of the GP practice",
			ServiceCategory: "21", ReferenceVintages: []string{"epraccur=2026-02", "sub_icb=2025-07", "postcodes=2026-02"}, CamDate: "2026-03-01"},
	}
}

// BenchmarkStage is the stage's cost per record as the runner drives it, in
// batches of 1,000 over a growing state: each key gets its local copy, then
// (in a later batch) its national copy, each a full record (fullRecord). Prepare (one offsets request per
// batch), Process and the store's write are timed; the Kafka write of the
// outputs is not (it is the sink's).
func BenchmarkStage(b *testing.B) {
	bk := brokertest.New(b)
	kc := brokertest.As(b, bk, Access().Principal)
	w := kafkapipe.NewWriter(kc)
	defer w.Close()
	sink := kafkapipe.Sink{W: w}
	s, err := NewStage(Config{Dir: b.TempDir(), Changelog: kafkapipe.PartitionLog(kc)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batchSize = 1000
	msgs := make([]pipeline.Message, 0, batchSize)
	ctx := context.Background()
	next := func(i int) pipeline.Message {
		// Records i and i+batchSize are the two copies of one key.
		k := i/(2*batchSize)*batchSize + i%batchSize
		src := local
		if (i/batchSize)%2 == 1 {
			src = national
		}
		r := fullRecord(src, "B"+strconv.Itoa(k))
		v, _ := proto.Marshal(r)
		return pipeline.Message{Topic: topics.Assigned, Partition: k % 6, Key: []byte(r.MatchKey), Value: v}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		b.StopTimer()
		msgs = msgs[:0]
		for ; len(msgs) < batchSize && i < b.N; i++ {
			msgs = append(msgs, next(i))
		}
		b.StartTimer()
		if err := s.BeginBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		var outs []pipeline.Output
		for _, m := range msgs {
			o, err := s.Process(ctx, m)
			if err != nil {
				b.Fatal(err)
			}
			outs = append(outs, o...)
		}
		b.StopTimer()
		if err := sink.Write(ctx, outs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.EndBatch(ctx, outs); err != nil {
			b.Fatal(err)
		}
	}
}
