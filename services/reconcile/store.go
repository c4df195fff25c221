package reconcile

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// The store is reconcile's state on disk: one Pebble database per instance
// (its -state-dir), holding for each changelog partition the entries of its
// match keys and how far into the changelog they go. It is a cache of the
// changelog, never ahead of it (docs/reconciliation.md, State): it takes
// only what it read from the changelog and what the sink acknowledged
// writing there, so it can always be brought up to date, or rebuilt, from
// the changelog alone.
//
// Keys:
//
//	'i'                          storeInfo (JSON): which changelog the store is of
//	'm' partition                partitionMeta (JSON): how far the partition goes
//	'e' partition match-key      the entry, in match's binary form (the changelog's value)
//
// partition is two bytes, big-endian, so that a partition's entries are one
// range (dropped by one range deletion).
const (
	infoKey    = "i"
	metaPrefix = 'm'
	entryPrefx = 'e'
	// storeFormat changes when the keys or values change meaning; a store of
	// another format is rebuilt from the changelog.
	storeFormat = 1
)

// storeInfo names the changelog a store holds: a store kept from another
// cluster, another topic or another partition count is of no use and is
// emptied (the offsets in it mean nothing there).
type storeInfo struct {
	Format     int    `json:"format"`
	Changelog  string `json:"changelog"`
	Cluster    string `json:"cluster"`
	Partitions int    `json:"partitions"`
}

// partitionMeta is written in the same Pebble batch as the entries it
// describes, so the two are consistent after any crash.
type partitionMeta struct {
	// Applied: every changelog message below this offset is in the store.
	Applied int64 `json:"applied"`
	// Mine: messages this instance wrote to the changelog partition at or
	// after Applied, acknowledged, and put in the store as it wrote them.
	Mine int64 `json:"mine"`
	// Keys: match keys held for the partition.
	Keys int64 `json:"keys"`
}

// Memory, set explicitly because Pebble's defaults are sized for a database
// server, and reconcile must stay within about 150 MB whatever the state's
// size (issue 15). All of it is outside the Go heap (Pebble allocates it
// manually), so the service's main reserves it from its memory budget
// (StoreMemoryBytes), which lowers the Go runtime's limit by as much:
//   - memtables of 8 MiB: one being written and one being flushed in the
//     steady state; writes wait for a flush if 16 MiB are queued (two), as
//     they did with four of 4 MiB. 8 MiB rather than 4 halves the flushes
//     and the L0 tables that compactions rewrite into the rest: with a
//     million records (BenchmarkStage, 500,000 keys, a 130 MB store),
//     flushes and compactions wrote 1.2 GB with 4 MiB memtables and 0.79 GB
//     with 8 MiB, and compactions read 848 MB and 450 MB. A batch of 5,000
//     entries is about 1 MiB.
//   - the cache, 24 MiB, which Pebble shares between the memtables (it
//     reserves their size from it) and the blocks it reads: about 8 MiB of
//     blocks, which is what it held with more room (7.5 MB at a million
//     records, 82% hits, either way). Lookups are by match key, spread evenly over the keys, so no
//     cache holds the data blocks of a large state; it holds the index and
//     bloom-filter blocks (10 bits per key, about 1% false positives), which
//     keep a new key, the common case, to no data block read at all, and an
//     existing one to about one. With the cache no larger than the
//     memtables (8 MiB, tried) it held no block at all and a lookup cost
//     three times as much.
//   - one compaction at a time: the machine has other stages to run.
const (
	// StoreMemoryBytes is the store's memory outside the Go heap: the cache,
	// which holds the memtables too.
	StoreMemoryBytes = cacheBytes
	cacheBytes       = 24 << 20
	memTableBytes    = 8 << 20
	memTablesQueued  = 2
	bloomBitsPerKey  = 10
	maxOpenFiles     = 256
	commitEveryBytes = 4 << 20 // a restore commits its batch at this size
	// maxStorePartitions: a partition is two bytes of a key.
	maxStorePartitions = 1 << 16
)

func openStore(dir string, log *slog.Logger) (*pebble.DB, error) {
	opts := &pebble.Options{
		CacheSize:                   cacheBytes,
		MemTableSize:                memTableBytes,
		MemTableStopWritesThreshold: memTablesQueued,
		MaxOpenFiles:                maxOpenFiles,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 1 },
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{log: log},
	}
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	// No block compression: an entry is mostly 8-byte field hashes, and
	// snappy cost about a sixth of reconcile's CPU (a million records:
	// 23 s with none, 27 to 28 s with snappy) for a store a fifth the size
	// of a synthetic state far more repetitive than real data (165 MB and
	// 30 MB); disk is the cheap side of that.
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open the state store in %s: %w", dir, err)
	}
	return db, nil
}

func metaKey(p int) []byte {
	return binary.BigEndian.AppendUint16([]byte{metaPrefix}, uint16(p))
}

// appendEntryKey appends to buf the store key of matchKey in partition p.
func appendEntryKey(buf []byte, p int, matchKey []byte) []byte {
	buf = append(buf, entryPrefx)
	buf = binary.BigEndian.AppendUint16(buf, uint16(p))
	return append(buf, matchKey...)
}

// partitionRange is [start, end) of partition p's entries.
func partitionRange(p int) (start, end []byte) {
	start = binary.BigEndian.AppendUint16([]byte{entryPrefx}, uint16(p))
	if p+1 < maxStorePartitions {
		end = binary.BigEndian.AppendUint16([]byte{entryPrefx}, uint16(p+1))
	} else {
		end = []byte{entryPrefx + 1}
	}
	return start, end
}

// getJSON reads the JSON value at key into v; false if there is none.
func getJSON(r pebble.Reader, key []byte, v any) (bool, error) {
	b, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("state store key %q: %w", key, err)
	}
	return true, nil
}

func setJSON(b *pebble.Batch, key []byte, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(key, j, nil)
}

// pebbleLogger sends Pebble's log to the service's: its routine lines
// (flushes, compactions) at debug.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("state store: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("state store: " + fmt.Sprintf(format, args...))
}

// Fatalf is Pebble finding its files unusable: it must not go on. Panicking
// (rather than exiting) lets deferred closes run and a test see it.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("state store: fatal: " + msg)
	panic("state store: " + msg)
}
