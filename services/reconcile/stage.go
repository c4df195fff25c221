// Package reconcile is the reconcile stage: it matches local provider
// records with their national (SUS) counterparts by match key, keeps the
// state of each key in an embedded store on disk and in its changelog, and
// writes the results and the national return. The matching rules are
// package match.
//
// The match key is made at de-identification (deid.MatchKey: data set,
// provider and CDS unique identifier), and the de-identified topics are keyed
// by it, so both copies of one activity reach the same partition and the same
// reconcile instance.
package reconcile

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/reconcile/match"
)

// Stage reconciles assigned records. Several instances share the work as
// one consumer group, each holding the state of the partitions it consumes
// (docs/reconciliation.md, State):
//
//   - Partition p of the changelog (topics.ReconcileState) holds the state of
//     the match keys of input partition p: every snapshot is written to the
//     partition of the message that changed it (pipeline.Output.ToPartition).
//   - The store (an embedded Pebble database in Config.Dir) is a cache of the
//     changelog, never ahead of it: it takes what the sink acknowledged
//     writing to the changelog (EndBatch) and what it reads from it, and
//     records with each partition's entries the changelog offset below which
//     it holds everything (Applied) and how many messages it wrote itself
//     since (Mine).
//   - Before each batch (BeginBatch), one request asks the end offset of the
//     changelog partitions in the batch. An end beyond Applied + Mine means
//     another writer (another instance that held the partition, a zombie, a
//     retried write) added to it: the gap is read before anything is
//     processed. A partition seen for the first time since start is opened
//     the same way, so a restart with its store reads only what it missed,
//     and an instance restores only the partitions it is given. Then the
//     entries of the batch's keys are read from the store in key order
//     (prefetch), not one lookup per record.
//   - A snapshot read from the changelog replaces the stored entry only if its
//     sequence is higher, so writers that overlap (an instance that lost a
//     partition and has not noticed yet) cannot move a key's state back.
//
// A Stage is used by one goroutine (the runner's).
type Stage struct {
	db      *pebble.DB
	log     *slog.Logger
	plog    pipeline.PartitionLog
	metrics *metrics

	// checked: the store was found to be of the changelog on the broker.
	checked bool
	// parts are the changelog partitions opened since start.
	parts map[int]*partition
	// pending are the entries changed in the batch being processed, by
	// match key: the store takes them at EndBatch, once the changelog has.
	pending map[string]*pendingEntry
	// loaded are the entries of the batch's keys as the store held them
	// when the batch began (prefetch), by match key.
	loaded       map[string]*pendingEntry
	prefetchBuf  []byte
	prefetchKeys [][2]int
	keyBuf       []byte
	// rev is the record being processed, as matching reads it.
	rev match.Revision
	// mem holds what Process's outputs are made of.
	mem batchMemory
}

// partition is what the stage knows of one changelog partition: the
// in-memory copy of its partitionMeta.
type partition struct {
	id   int
	meta partitionMeta
}

type pendingEntry struct {
	partition int
	entry     *match.Entry
	// isNew: the key was not in the store; counted once written.
	isNew bool
}

// Config is where a Stage keeps its state and how it reads its changelog.
type Config struct {
	// Dir is the state directory: one per instance (Pebble locks it).
	Dir string
	// Changelog reads the changelog partition by partition (the service's
	// main passes kafkapipe.PartitionLog).
	Changelog pipeline.PartitionLog
	Log       *slog.Logger
	// Metrics are registered here if set.
	Metrics prometheus.Registerer
}

// NewStage opens the store in cfg.Dir. Its partitions are brought up to
// date with the changelog as the runner hands it their messages
// (BeginBatch). Close it when done.
func NewStage(cfg Config) (*Stage, error) {
	if cfg.Dir == "" {
		return nil, errors.New("reconcile: no state directory")
	}
	if cfg.Changelog == nil {
		return nil, errors.New("reconcile: no changelog reader")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := openStore(cfg.Dir, log)
	if err != nil {
		return nil, err
	}
	s := &Stage{db: db, log: log, plog: cfg.Changelog, parts: map[int]*partition{}, pending: map[string]*pendingEntry{}, loaded: map[string]*pendingEntry{},
		metrics: newMetrics(db)}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(s.metrics.collectors()...)
	}
	return s, nil
}

// Close closes the store: what it holds stays for the next start.
func (s *Stage) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close the state store: %w", err)
	}
	return nil
}

var (
	_ pipeline.Processor    = (*Stage)(nil)
	_ pipeline.BatchStarter = (*Stage)(nil)
	_ pipeline.BatchEnder   = (*Stage)(nil)
)

// Process implements pipeline.Processor. The message's partition must have
// been prepared by BeginBatch.
func (s *Stage) Process(_ context.Context, m pipeline.Message) ([]pipeline.Output, error) {
	// Only what matching needs is read from the record (match.Read); the
	// national return is the record's own bytes, re-keyed.
	rv := &s.rev
	if err := match.Read(m.Value, rv); err != nil {
		return nil, pipeline.Reject("STAGE-DECODE", "", "message is not a dmic.v1.DeidentifiedRecord")
	}
	mk := rv.MatchKey
	if mk == "" {
		rej := pipeline.Reject("REC-001", "match_key", "record has no match key")
		// The dead letter names the record: decode its header (rare).
		rec := &dmicv1.DeidentifiedRecord{}
		if proto.Unmarshal(m.Value, rec) == nil {
			rej.Header = rec.GetHeader()
		}
		return nil, rej
	}
	p := s.parts[m.Partition]
	if p == nil {
		// A bug of the caller: the runner prepares every partition of a batch.
		return nil, fmt.Errorf("partition %d of %s was not prepared (BeginBatch) before its message was processed", m.Partition, m.Topic)
	}
	pe, err := s.lookup(p.id, mk)
	if err != nil {
		return nil, err
	}
	outcome := pe.entry.Apply(rv)
	if outcome == match.Stale {
		return nil, nil
	}
	// The outputs' bytes and slices come from the batch's chunks: an
	// allocation per output was most of what reconcile allocated after
	// decoding was cut.
	res, err := s.mem.append(0, func(b []byte) ([]byte, error) {
		return proto.MarshalOptions{}.MarshalAppend(b, pe.entry.Result(mk))
	})
	if err != nil {
		return nil, err
	}
	key, _ := s.mem.append(len(mk), func(b []byte) ([]byte, error) { return append(b, mk...), nil }) // shared by the outputs: the sink only reads it
	outs := s.mem.outputs()
	outs = append(outs, pipeline.Output{Topic: topics.Reconciled, Key: key, Value: res})
	if outcome == match.Changed {
		s.pending[mk] = pe
		v, _ := s.mem.append(0, func(b []byte) ([]byte, error) { return pe.entry.AppendBinary(b), nil })
		snap := pipeline.Output{Topic: topics.ReconcileState, Key: key, Value: v}
		outs = append(outs, snap.ToPartition(p.id))
	}
	// Local activity, reconciled, goes back to the national exchange, with
	// the national return's pseudonym only.
	if rv.Source == dmicv1.Source_SOURCE_PROVIDER {
		v, err := s.mem.append(len(m.Value), func(b []byte) ([]byte, error) { return nationalReturn(b, m.Value) })
		if err != nil {
			return nil, err
		}
		outs = append(outs, pipeline.Output{Topic: topics.NationalReturn, Key: key, Value: v})
	}
	return outs, nil
}

// outputsPerRecord is the most outputs Process makes of one record: its
// result, its snapshot and its national return.
const outputsPerRecord = 3

// batchMemory hands out the bytes and the output slices of Process's
// outputs from large chunks, rather than an allocation each. A chunk's
// bytes are never handed out twice: once full it is left to the outputs
// that hold parts of it (the runner's, until the batch is committed) and
// collected with them, so nothing depends on when the runner lets go.
type batchMemory struct {
	free  []byte            // the current chunk's unused bytes (len 0)
	slots []pipeline.Output // the current chunk's unused outputs
}

const (
	byteChunk   = 256 << 10
	outputChunk = 1024 * outputsPerRecord
)

// append calls fn with free space of at least room bytes (an estimate:
// fn may append more, and then allocates) and returns what it appended,
// with no spare capacity, so that it cannot be appended to in place.
func (a *batchMemory) append(room int, fn func([]byte) ([]byte, error)) ([]byte, error) {
	if cap(a.free) < max(room, 1024) {
		a.free = make([]byte, 0, max(byteChunk, room))
	}
	v, err := fn(a.free)
	if err != nil {
		return nil, err
	}
	n := len(v)
	if cap(v) == cap(a.free) { // written in place: take it from the chunk
		a.free = a.free[n:n]
	}
	return v[:n:n], nil
}

// outputs is an empty slice with room for one record's outputs.
func (a *batchMemory) outputs() []pipeline.Output {
	if len(a.slots) < outputsPerRecord {
		a.slots = make([]pipeline.Output, outputChunk)
	}
	o := a.slots[:0:outputsPerRecord]
	a.slots = a.slots[outputsPerRecord:]
	return o
}

// lookup is the entry of mk in partition p: changed earlier in this batch,
// else as the store held it (read by prefetch, else now), else new.
func (s *Stage) lookup(p int, mk string) (*pendingEntry, error) {
	if pe := s.pending[mk]; pe != nil {
		return pe, nil
	}
	if pe := s.loaded[mk]; pe != nil && pe.partition == p {
		return pe, nil
	}
	// Not among the batch's Kafka keys.
	s.keyBuf = appendEntryKey(s.keyBuf[:0], p, []byte(mk))
	v, closer, err := s.db.Get(s.keyBuf)
	if errors.Is(err, pebble.ErrNotFound) {
		return &pendingEntry{partition: p, entry: &match.Entry{}, isNew: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state store: read %q: %w", mk, err)
	}
	defer closer.Close()
	e := &match.Entry{}
	if err := e.UnmarshalBinary(v); err != nil {
		return nil, fmt.Errorf("state store: %q: %w", mk, err)
	}
	return &pendingEntry{partition: p, entry: e}, nil
}

// BeginBatch implements pipeline.BatchStarter: it brings the state of every
// partition of the batch up to date with the changelog, with one request for
// their end offsets (and one more for the partitions seen for the first
// time), and reads only where the changelog moved on without this instance.
func (s *Stage) BeginBatch(ctx context.Context, batch []pipeline.Message) error {
	clear(s.pending)
	if !s.checked {
		if err := s.checkChangelog(ctx); err != nil {
			return err
		}
		s.checked = true
	}
	var ids, opening []int
	for _, m := range batch {
		if !slices.Contains(ids, m.Partition) {
			ids = append(ids, m.Partition)
			if s.parts[m.Partition] == nil {
				opening = append(opening, m.Partition)
			}
		}
	}
	if len(opening) > 0 {
		if err := s.open(ctx, opening); err != nil {
			return err
		}
	}
	ends, err := s.plog.EndOffsets(ctx, topics.ReconcileState, ids)
	if err != nil {
		return fmt.Errorf("changelog end offsets: %w", err)
	}
	for _, id := range ids {
		if err := s.catchUp(ctx, s.parts[id], ends[id]); err != nil {
			return err
		}
	}
	return s.prefetch(batch)
}

// prefetch reads from the store the entries of the batch's match keys,
// taken from the messages' Kafka keys (dmic.assigned is keyed by match key),
// into s.loaded, in key order through one iterator.
//
// Why: a Get per record, in the order records come, set up the iterators of
// every memtable and table it looked in each time: the largest part of
// reconcile's CPU after decoding. Seeking the keys of a batch in order lets
// each seek go on from the last: records arrive roughly in the order
// providers number their activities, so a batch's keys lie close together
// (BenchmarkStage: 0.63 s of lookups -> 0.24 s; keys spread at random over
// the store cost the same either way). A prefix seek asks the bloom filters
// first, so a new key, the common case, costs no data block.
//
// A record whose match key is not its Kafka key (no producer of dmic's does
// that) is looked up on its own (lookup). Nothing writes to the store while
// the batch is processed, so what is read here is what a Get would read.
func (s *Stage) prefetch(batch []pipeline.Message) error {
	clear(s.loaded)
	buf, keys := s.prefetchBuf[:0], s.prefetchKeys[:0]
	for _, m := range batch {
		start := len(buf)
		buf = appendEntryKey(buf, m.Partition, m.Key)
		keys = append(keys, [2]int{start, len(buf)})
	}
	s.prefetchBuf, s.prefetchKeys = buf, keys
	key := func(k [2]int) []byte { return buf[k[0]:k[1]:k[1]] }
	slices.SortFunc(keys, func(a, b [2]int) int { return bytes.Compare(key(a), key(b)) })
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	var prev []byte
	for _, k := range keys {
		k := key(k)
		if bytes.Equal(k, prev) {
			continue
		}
		prev = k
		p, mk := int(binary.BigEndian.Uint16(k[1:3])), string(k[3:])
		pe := &pendingEntry{partition: p, entry: &match.Entry{}, isNew: true}
		if it.SeekPrefixGE(k) && bytes.Equal(it.Key(), k) {
			v, err := it.ValueAndErr()
			if err == nil {
				err = pe.entry.UnmarshalBinary(v)
			}
			if err != nil {
				return errors.Join(fmt.Errorf("state store: %q: %w", mk, err), it.Close())
			}
			pe.isNew = false
		}
		s.loaded[mk] = pe
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	return nil
}

// checkChangelog makes sure the store is of the changelog on the broker, and
// that the changelog has a partition for every input partition. A store of
// another changelog (another cluster: a broker's data wiped; another
// partition count; another store format) is emptied, to be rebuilt.
func (s *Stage) checkChangelog(ctx context.Context) error {
	cl, err := s.plog.Describe(ctx, topics.ReconcileState)
	if err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	in, err := s.plog.Describe(ctx, topics.Assigned)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if cl.Partitions < in.Partitions || cl.Partitions > maxStorePartitions {
		return fmt.Errorf("the changelog %s has %d partitions and the input %s %d: the changelog needs one per input partition (docs/reconciliation.md, State)",
			topics.ReconcileState, cl.Partitions, topics.Assigned, in.Partitions)
	}
	want := storeInfo{Format: storeFormat, Changelog: topics.ReconcileState, Cluster: cl.Cluster, Partitions: cl.Partitions}
	var have storeInfo
	found, err := getJSON(s.db, []byte(infoKey), &have)
	if err != nil {
		return err
	}
	if found && have == want {
		return nil
	}
	if found {
		s.log.Warn("the state store is of another changelog; emptying it, to rebuild it from this one",
			"store_changelog", have.Changelog, "store_cluster", have.Cluster, "store_partitions", have.Partitions, "store_format", have.Format,
			"changelog", want.Changelog, "cluster", want.Cluster, "partitions", want.Partitions, "format", want.Format)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte{0}, []byte{0xff}, nil); err != nil {
		return err
	}
	if err := setJSON(b, []byte(infoKey), want); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state store: reset: %w", err)
	}
	clear(s.parts)
	s.metrics.keys.Reset()
	return nil
}

// open loads what the store holds of partitions seen for the first time
// since start. A partition the store has nothing of starts at the
// changelog's first offset; one whose stored offset is below it (messages
// the store never saw were deleted) is emptied and rebuilt.
func (s *Stage) open(ctx context.Context, ids []int) error {
	starts, err := s.plog.StartOffsets(ctx, topics.ReconcileState, ids)
	if err != nil {
		return fmt.Errorf("changelog start offsets: %w", err)
	}
	for _, id := range ids {
		p := &partition{id: id}
		found, err := getJSON(s.db, metaKey(id), &p.meta)
		if err != nil {
			return err
		}
		start := starts[id]
		switch {
		case !found:
			p.meta = partitionMeta{Applied: start}
		case p.meta.Applied < start:
			s.log.Warn("changelog messages the store never read were deleted; rebuilding the partition",
				"partition", id, "store_applied", p.meta.Applied, "changelog_start", start)
			if err := s.wipe(p, start); err != nil {
				return err
			}
		}
		s.parts[id] = p
		s.metrics.keys.WithLabelValues(fmt.Sprint(id)).Set(float64(p.meta.Keys))
	}
	return nil
}

// catchUp brings partition p up to end, the changelog partition's end
// offset now (docs/reconciliation.md, State).
func (s *Stage) catchUp(ctx context.Context, p *partition, end int64) error {
	want := p.meta.Applied + p.meta.Mine
	switch {
	case end == want:
		// Everything since Applied is this instance's own, already held.
		p.meta.Applied, p.meta.Mine = end, 0
		s.metrics.checks.WithLabelValues("current").Inc()
		return nil
	case end > want:
		s.metrics.checks.WithLabelValues("behind").Inc()
		return s.read(ctx, p, p.meta.Applied, end, "behind")
	default:
		// Shorter than what the store holds: the topic was deleted and made
		// again, or cut. The changelog is the truth.
		s.metrics.checks.WithLabelValues("rebuild").Inc()
		s.log.Warn("the changelog partition is shorter than the store's copy of it; rebuilding the partition",
			"partition", p.id, "changelog_end", end, "store_applied", p.meta.Applied, "store_mine", p.meta.Mine)
		starts, err := s.plog.StartOffsets(ctx, topics.ReconcileState, []int{p.id})
		if err != nil {
			return fmt.Errorf("changelog start offsets: %w", err)
		}
		if err := s.wipe(p, starts[p.id]); err != nil {
			return err
		}
		return s.read(ctx, p, p.meta.Applied, end, "rebuild")
	}
}

// wipe empties partition p of the store and sets it to begin at start.
func (s *Stage) wipe(p *partition, start int64) error {
	lo, hi := partitionRange(p.id)
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return err
	}
	meta := partitionMeta{Applied: start}
	if err := setJSON(b, metaKey(p.id), meta); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state store: empty partition %d: %w", p.id, err)
	}
	p.meta = meta
	s.metrics.keys.WithLabelValues(fmt.Sprint(p.id)).Set(0)
	return nil
}

// read applies the changelog messages of partition p in [from, to) to the
// store, committing every commitEveryBytes with the offset reached, so that
// a read cut short (a crash, a broker error) resumes where it stopped. A
// snapshot replaces the stored entry only if its sequence is higher.
func (s *Stage) read(ctx context.Context, p *partition, from, to int64, reason string) error {
	timer := s.metrics.startRestore(reason)
	b := s.db.NewIndexedBatch()
	defer func() { b.Close() }()
	reached, keys := p.meta.Applied, p.meta.Keys
	commit := func() error {
		meta := partitionMeta{Applied: reached, Keys: keys}
		if err := setJSON(b, metaKey(p.id), meta); err != nil {
			return err
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("state store: partition %d: %w", p.id, err)
		}
		p.meta = meta
		s.metrics.keys.WithLabelValues(fmt.Sprint(p.id)).Set(float64(keys))
		b.Close()
		b = s.db.NewIndexedBatch()
		return nil
	}
	var key []byte
	applied := 0
	n, err := s.plog.Read(ctx, topics.ReconcileState, p.id, from, to, func(m pipeline.Message) error {
		reached = m.Offset + 1
		if len(m.Key) == 0 {
			return nil // not a snapshot of a key: nothing to hold
		}
		v, seq, err := snapshot(m.Value)
		if err != nil {
			return fmt.Errorf("changelog partition %d offset %d: %w", p.id, m.Offset, err)
		}
		key = appendEntryKey(key[:0], p.id, m.Key)
		cur, closer, err := b.Get(key)
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			keys++
		case err != nil:
			return fmt.Errorf("state store: %w", err)
		default:
			curSeq, err := match.SequenceOf(cur)
			closer.Close()
			if err != nil {
				return fmt.Errorf("state store: %q: %w", m.Key, err)
			}
			if seq <= curSeq {
				return nil // older than what is held: an overlapping writer's
			}
		}
		if err := b.Set(key, v, nil); err != nil {
			return err
		}
		applied++
		if b.Len() >= commitEveryBytes {
			return commit()
		}
		return nil
	})
	s.metrics.restored.WithLabelValues(reason).Add(float64(n))
	if err != nil {
		// What was committed stays; the next BeginBatch resumes from it.
		return fmt.Errorf("read changelog partition %d from %d: %w", p.id, reached, err)
	}
	reached = to
	if err := commit(); err != nil {
		return err
	}
	took := timer()
	s.log.Info("changelog partition read into the state store", "partition", p.id, "reason", reason,
		"from", from, "to", to, "messages", n, "applied", applied, "match_keys", keys, "took", took)
	return nil
}

// snapshot is a changelog value in the store's form, and its sequence. A
// JSON value (changelogs written before the binary form) is converted.
func snapshot(v []byte) ([]byte, uint64, error) {
	seq, err := match.SequenceOf(v)
	if err == nil {
		return v, seq, nil
	}
	if !errors.Is(err, match.ErrNotBinary) {
		return nil, 0, err
	}
	e := &match.Entry{}
	if err := json.Unmarshal(v, e); err != nil {
		return nil, 0, fmt.Errorf("bad state: %w", err)
	}
	return e.AppendBinary(nil), e.Sequence, nil
}

// EndBatch implements pipeline.BatchEnder: the store takes the snapshots the
// sink acknowledged writing to the changelog, and only those, with each
// partition's count of messages written by this instance, in one batch.
func (s *Stage) EndBatch(_ context.Context, written []pipeline.Output) error {
	if len(s.pending) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	type delta struct{ mine, keys int64 }
	deltas := map[int]*delta{}
	counted := map[*pendingEntry]bool{}
	for _, o := range written {
		if o.Topic != topics.ReconcileState {
			continue
		}
		pe := s.pending[string(o.Key)]
		if pe == nil {
			continue // not of this batch (cannot happen: the runner writes what Process returned)
		}
		s.keyBuf = appendEntryKey(s.keyBuf[:0], pe.partition, o.Key)
		if err := b.Set(s.keyBuf, o.Value, nil); err != nil {
			return err
		}
		d := deltas[pe.partition]
		if d == nil {
			d = &delta{}
			deltas[pe.partition] = d
		}
		d.mine++
		if pe.isNew && !counted[pe] {
			counted[pe] = true
			d.keys++
		}
	}
	for id, d := range deltas {
		p := s.parts[id]
		meta := p.meta
		meta.Mine += d.mine
		meta.Keys += d.keys
		if err := setJSON(b, metaKey(id), meta); err != nil {
			return err
		}
	}
	// NoSync: a crash may lose the last commits, entries and offsets alike
	// (one batch is atomic), which the next start reads back from the
	// changelog.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state store: write the batch's state: %w", err)
	}
	for id, d := range deltas {
		p := s.parts[id]
		p.meta.Mine += d.mine
		p.meta.Keys += d.keys
		s.metrics.keys.WithLabelValues(fmt.Sprint(id)).Set(float64(p.meta.Keys))
	}
	clear(s.pending)
	clear(s.loaded)
	return nil
}
