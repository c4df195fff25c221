package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/assign"
	"github.com/dmic-nhs/dmic/services/assign/cam"
	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/validate"
)

// FloorResult is what one baseline measured: how many records it moved or
// processed, in how long, and the rate.
type FloorResult struct {
	Records       int
	Seconds       float64
	RecordsPerSec float64
}

func floorResult(n int, d time.Duration) FloorResult {
	r := FloorResult{Records: n, Seconds: d.Seconds()}
	if r.Seconds > 0 {
		r.RecordsPerSec = float64(n) / r.Seconds
	}
	return r
}

const (
	// floorConsumers is ClickHouse's consumer count, with one partition for
	// each. One, measured on ClickHouse 18.16 with 2 cores: two consumers
	// moved 200k records no faster (28–37k/s against 31–36k/s) and, when the
	// second joined the group after the first had started reading, the
	// rebalance made it re-read a partition the first had not yet committed
	// (1.5× the rows in the target).
	floorConsumers  = 1
	floorPartitions = floorConsumers
	// floorPollEvery is how often the target table's count is read.
	floorPollEvery = 200 * time.Millisecond
	// floorTimeout bounds the wait for ClickHouse to consume every message:
	// generous, because 18.16 on 2 cores moves ~10^4–10^5 rows/s.
	floorTimeout = 10 * time.Minute
	// floorStall fails the measurement early when the count stops moving
	// this long: ClickHouse's Kafka engine retries a message it cannot parse
	// for ever, so a stall means a bad message or a lost consumer, not a
	// slow one. The server log names the cause.
	floorStall = 2 * time.Minute
	// floorCleanupTimeout bounds the DROPs and the topic deletion, which run
	// on a fresh context so that a cancelled measurement still cleans up.
	floorCleanupTimeout = time.Minute
)

// floorIntColumns are the provider JSON fields that are JSON integers; every
// other field is a string.
var floorIntColumns = map[string]bool{"price_pence": true, "activity_count": true}

// floorIdent is what a field name must look like to become a column name
// without quoting games (provider field names are NHS Data Dictionary item
// names in snake case).
var floorIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// TransportFloor measures the cost of moving the bytes from Kafka into
// ClickHouse with no processing at all, using ClickHouse's own Kafka table
// engine: it produces the valid lines (one record per message) to a fresh
// topic, then creates a Kafka engine table (JSONEachRow) over it, a MergeTree
// target table and a materialized view from the one to the other, and times
// from creating the view (the start of consumption: the messages are already
// in the topic) until the target holds every record. The consumer group's
// offsets are committed at the start of the topic beforehand: ClickHouse
// 18.16 would start a new group at the end and read nothing.
//
// ClickHouse 18.16 writes a consumed block to the view when the block is
// full or when polling the topic finds nothing more, which takes it about
// 2.5 s; the time includes that final wait (200k records arrived as one
// block), so small inputs understate the rate.
//
// Only lines that are JSON objects whose values are strings (integers for
// price_pence and activity_count) are produced: ClickHouse's Kafka engine
// retries a message it cannot parse for ever, and the pipeline rejects such
// lines anyway. Records is the number of lines produced. The topic, tables
// and view are removed before it returns, so that no Kafka consumer is left
// running inside the server (which would also slow its shutdown).
//
// The broker c names must let clients in without authentication: the Kafka
// engine of ClickHouse 18.16 is configured per table, and a table has no
// SASL settings there (the benchmark gives the floor an embedded broker of
// its own, without auth; docs/security.md, Kafka). ClickHouse (librdkafka)
// connects to the addresses the broker advertises, so the broker must be
// reachable from the ClickHouse server at those. ch logs in as a user that
// may create tables in the database default (the development server's
// migrator); its Database is not used.
func TransportFloor(ctx context.Context, c kafkaconn.Cluster, ch chstore.Config, lines [][]byte, log *slog.Logger) (FloorResult, error) {
	return floorTransport(ctx, c, ch, lines, log, nil)
}

// floorTransport is TransportFloor with a hook that sees the target table
// (database.table) after the count is reached and before everything is
// dropped, so a test can look at what arrived.
func floorTransport(ctx context.Context, c kafkaconn.Cluster, ch chstore.Config, lines [][]byte, log *slog.Logger,
	inspect func(ctx context.Context, conn driver.Conn, target string) error) (FloorResult, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.Mechanism() != kafkaconn.None || c.TLS() {
		return FloorResult{}, fmt.Errorf("transport floor: the broker wants SASL or TLS (%s), which the floor's ClickHouse Kafka table cannot give", c)
	}
	valid, cols := floorSelect(lines)
	if len(valid) == 0 {
		return FloorResult{}, fmt.Errorf("transport floor: none of the %d lines is a flat JSON object of strings", len(lines))
	}
	if skipped := len(lines) - len(valid); skipped > 0 {
		log.Info("transport floor: skipping lines that are not flat JSON objects", "skipped", skipped, "kept", len(valid))
	}

	suffix, err := floorSuffix()
	if err != nil {
		return FloorResult{}, fmt.Errorf("transport floor: %w", err)
	}
	topic := "dmic-bench-floor-" + suffix
	names := floorNames{
		db:     "default",
		queue:  "floor_queue_" + suffix,
		target: "floor_target_" + suffix,
		view:   "floor_view_" + suffix,
	}

	// The topic goes whatever happens after it is created: it holds a copy
	// of every record.
	if err := floorCreateTopic(ctx, c, topic); err != nil {
		return FloorResult{}, fmt.Errorf("transport floor: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), floorCleanupTimeout)
		defer cancel()
		if err := floorDeleteTopic(cctx, c, topic); err != nil {
			log.Warn("transport floor: delete topic", "topic", topic, "err", err)
		}
	}()
	produceStart := time.Now()
	if err := floorProduce(ctx, c, topic, valid); err != nil {
		return FloorResult{}, fmt.Errorf("transport floor: %w", err)
	}
	log.Info("transport floor: produced", "topic", topic, "messages", len(valid), "seconds", time.Since(produceStart).Seconds())
	if err := floorCommitStart(ctx, c, topic, topic); err != nil {
		return FloorResult{}, fmt.Errorf("transport floor: %w", err)
	}

	ch.Database = names.db
	conn, err := ch.Open(ctx)
	if err != nil {
		return FloorResult{}, fmt.Errorf("transport floor: %w", err)
	}
	defer conn.Close()

	// Drops run in reverse order of creation, view first: dropping it stops
	// the streaming from the Kafka table, so that dropping the Kafka table
	// (which waits for its consumers to close) does not race a running read.
	var created []string
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), floorCleanupTimeout)
		defer cancel()
		for i := len(created) - 1; i >= 0; i-- {
			if err := conn.Exec(cctx, "DROP TABLE IF EXISTS "+created[i]); err != nil {
				log.Warn("transport floor: drop", "table", created[i], "err", err)
			}
		}
	}()
	for _, stmt := range []struct{ name, sql string }{
		{names.full(names.target), floorTargetSQL(names, cols)},
		{names.full(names.queue), floorQueueSQL(names, cols, c.Brokers(), topic)},
	} {
		if err := conn.Exec(ctx, stmt.sql); err != nil {
			return FloorResult{}, fmt.Errorf("transport floor: create %s: %w", stmt.name, err)
		}
		created = append(created, stmt.name)
	}

	start := time.Now()
	if err := conn.Exec(ctx, floorViewSQL(names, cols)); err != nil {
		return FloorResult{}, fmt.Errorf("transport floor: create %s: %w", names.full(names.view), err)
	}
	created = append(created, names.full(names.view))
	n, elapsed, err := floorWaitCount(ctx, conn, names.full(names.target), uint64(len(valid)), start, log)
	if err != nil {
		return FloorResult{}, fmt.Errorf("transport floor: %w", err)
	}
	if n != uint64(len(valid)) {
		// More rows than messages: a consumer re-read messages it had not
		// committed (a rebalance); the time is then not that of one pass.
		return FloorResult{}, fmt.Errorf("transport floor: target has %d rows for %d messages (messages consumed twice)", n, len(valid))
	}
	if inspect != nil {
		if err := inspect(ctx, conn, names.full(names.target)); err != nil {
			return FloorResult{}, err
		}
	}
	res := floorResult(len(valid), elapsed)
	log.Info("transport floor", "records", res.Records, "seconds", res.Seconds, "records_per_s", res.RecordsPerSec)
	return res, nil
}

type floorNames struct{ db, queue, target, view string }

func (n floorNames) full(table string) string { return n.db + "." + table }

// floorColumn is one column of the provider JSON.
type floorColumn struct {
	name  string
	isInt bool
}

func (c floorColumn) typ() string {
	if c.isInt {
		return "Int64"
	}
	return "String"
}

// floorSelect keeps the lines ClickHouse's JSONEachRow can read into String
// and Int64 columns: flat JSON objects whose field names are identifiers and
// whose values are strings (integers for floorIntColumns). It returns them
// with the union of their field names, sorted, as columns.
func floorSelect(lines [][]byte) ([][]byte, []floorColumn) {
	valid := make([][]byte, 0, len(lines))
	seen := map[string]bool{}
	var fields map[string]json.RawMessage
	for _, line := range lines {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		clear(fields)
		if err := json.Unmarshal(line, &fields); err != nil || !floorFlat(fields) {
			continue
		}
		for name := range fields {
			seen[name] = true
		}
		valid = append(valid, line)
	}
	cols := make([]floorColumn, 0, len(seen))
	for name := range seen {
		cols = append(cols, floorColumn{name: name, isInt: floorIntColumns[name]})
	}
	slices.SortFunc(cols, func(a, b floorColumn) int { return strings.Compare(a.name, b.name) })
	return valid, cols
}

func floorFlat(fields map[string]json.RawMessage) bool {
	for name, raw := range fields {
		if !floorIdent.MatchString(name) || len(raw) == 0 {
			return false
		}
		if floorIntColumns[name] {
			if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
				return false
			}
			continue
		}
		if raw[0] != '"' {
			return false
		}
	}
	return true
}

func floorColumnsDDL(cols []floorColumn) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("`" + c.name + "` " + c.typ())
	}
	return b.String()
}

func floorColumnList(cols []floorColumn) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = "`" + c.name + "`"
	}
	return strings.Join(names, ", ")
}

// floorTargetSQL is the MergeTree the records land in. ORDER BY tuple(): no
// sort key, so the insert does the least work (the floor is about moving
// bytes, not about the pipeline's ReplacingMergeTree).
func floorTargetSQL(n floorNames, cols []floorColumn) string {
	return fmt.Sprintf("CREATE TABLE %s (%s) ENGINE = MergeTree() ORDER BY tuple()", n.full(n.target), floorColumnsDDL(cols))
}

// floorQueueSQL is the Kafka engine table. The SETTINGS form runs on 18.16
// and on current releases. No kafka_row_delimiter: JSONEachRow needs no
// separator between objects, and current releases ignore the setting.
// librdkafka in ClickHouse starts a group with no committed offsets at the
// earliest offset, so the messages already in the topic are read.
func floorQueueSQL(n floorNames, cols []floorColumn, brokers []string, topic string) string {
	return fmt.Sprintf("CREATE TABLE %s (%s) ENGINE = Kafka SETTINGS "+
		"kafka_broker_list = '%s', kafka_topic_list = '%s', kafka_group_name = '%s', "+
		"kafka_format = 'JSONEachRow', kafka_num_consumers = %d",
		n.full(n.queue), floorColumnsDDL(cols), strings.Join(brokers, ","), topic, topic, floorConsumers)
}

func floorViewSQL(n floorNames, cols []floorColumn) string {
	list := floorColumnList(cols)
	return fmt.Sprintf("CREATE MATERIALIZED VIEW %s TO %s AS SELECT %s FROM %s",
		n.full(n.view), n.full(n.target), list, n.full(n.queue))
}

// floorWaitCount polls the target's row count until it reaches want, and
// returns the count and the time from start to the poll that saw it.
func floorWaitCount(ctx context.Context, conn driver.Conn, target string, want uint64, start time.Time, log *slog.Logger) (uint64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, floorTimeout)
	defer cancel()
	tick := time.NewTicker(floorPollEvery)
	defer tick.Stop()
	var last uint64
	lastMove := time.Now()
	lastLog := time.Now()
	for {
		select {
		case <-ctx.Done():
			return last, 0, fmt.Errorf("%s has %d of %d rows after %s: %w", target, last, want, time.Since(start).Round(time.Second), ctx.Err())
		case <-tick.C:
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+target).Scan(&n); err != nil {
			if ctx.Err() != nil {
				continue // reported by the select above
			}
			return last, 0, fmt.Errorf("count %s: %w", target, err)
		}
		now := time.Now()
		if n >= want {
			return n, now.Sub(start), nil
		}
		if n != last {
			last, lastMove = n, now
		} else if now.Sub(lastMove) > floorStall {
			return last, 0, fmt.Errorf("%s stuck at %d of %d rows for %s (see the clickhouse-server log for Kafka errors)", target, last, want, floorStall)
		}
		if now.Sub(lastLog) > 10*time.Second {
			lastLog = now
			log.Info("transport floor: consuming", "rows", n, "of", want, "seconds", now.Sub(start).Seconds())
		}
	}
}

func floorSuffix() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	return strconv.FormatInt(time.Now().Unix(), 10) + "_" + hex.EncodeToString(b[:]), nil
}

// floorCreateTopic creates topic through c's pool, whose metadata cache
// then knows it (floorProduce writes through the same pool).
func floorCreateTopic(ctx context.Context, c kafkaconn.Cluster, topic string) error {
	resp, err := c.Client(10*time.Second).CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: floorPartitions, ReplicationFactor: -1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func floorDeleteTopic(ctx context.Context, c kafkaconn.Cluster, topic string) error {
	resp, err := c.Client(10*time.Second).DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	return nil
}

// floorCommitStart commits offset 0 of every partition for group, so that a
// consumer of the group starts at the beginning of the topic. ClickHouse
// 18.16's Kafka engine leaves librdkafka's auto.offset.reset at "largest":
// a new group would skip every message already in the topic and wait for
// new ones. (Current releases start a new group at the earliest offset;
// the commit does no harm there.) A commit with generation -1 and no member
// is Kafka's "simple consumer" commit, allowed for a group with no members.
func floorCommitStart(ctx context.Context, c kafkaconn.Cluster, topic, group string) error {
	offsets := make([]kafka.OffsetCommit, floorPartitions)
	for p := range offsets {
		offsets[p] = kafka.OffsetCommit{Partition: p, Offset: 0}
	}
	resp, err := c.Client(10*time.Second).OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      group,
		GenerationID: -1,
		Topics:       map[string][]kafka.OffsetCommit{topic: offsets},
	})
	if err != nil {
		return fmt.Errorf("commit start offsets of group %s: %w", group, err)
	}
	for _, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return fmt.Errorf("commit start offset of group %s, partition %d: %w", group, p.Partition, p.Error)
			}
		}
	}
	return nil
}

// floorProduce writes one message per line, spread evenly over the
// partitions, in large batches (kafka-go's defaults of 100 messages or 1 s
// per batch would make the producer, not ClickHouse, the subject).
func floorProduce(ctx context.Context, c kafkaconn.Cluster, topic string, lines [][]byte) error {
	w := &kafka.Writer{
		Addr:         c.Addr(),
		Transport:    c.Transport(),
		Topic:        topic,
		Balancer:     &kafka.RoundRobin{},
		BatchSize:    5000,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
	const chunk = 20000
	msgs := make([]kafka.Message, 0, chunk)
	for i := 0; i < len(lines); i += chunk {
		msgs = msgs[:0]
		for _, l := range lines[i:min(i+chunk, len(lines))] {
			msgs = append(msgs, kafka.Message{Value: l})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			w.Close()
			return fmt.Errorf("produce to %s: %w", topic, floorFirstWriteError(err))
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("produce to %s: close writer: %w", topic, err)
	}
	return nil
}

// floorFirstWriteError shortens kafka-go's error for a failed batch, which
// repeats the same message once per record, to its first distinct error.
func floorFirstWriteError(err error) error {
	var we kafka.WriteErrors
	if !errors.As(err, &we) {
		return err
	}
	for _, e := range we {
		if e != nil {
			return fmt.Errorf("%d of %d messages failed, first: %w", we.Count(), len(we), e)
		}
	}
	return err
}

// floorKeys are the fixed test keys of the compute floor, one per domain as
// the service has them: 32 bytes, the shortest the deid package accepts.
// They pseudonymise synthetic numbers only.
func floorKeys() (*didi.KeyRing, error) {
	return didi.NewKeyRing(map[string]didi.Key{
		didi.DomainAnalytics:      {Version: "bench-floor", Secret: []byte("dmic-bench-compute-floor-key-32b")},
		didi.DomainNationalReturn: {Version: "bench-floor", Secret: []byte("dmic-bench-floor-national-return")},
	})
}

// floorChunk is how many lines a worker takes at a time: large enough that
// handing out chunks costs nothing, small enough that both cores finish
// together.
const floorChunk = 1024

// ComputeFloor runs the stage logic of validate, de-identify and assign in
// one process over lines, in memory, with no Kafka: the services' own
// Stage.Process functions, each output handed to the next as a message would
// be, so the floor follows any change to the stages. It uses GOMAXPROCS
// goroutines, each with its own stages (a Deidentifier is not safe for
// concurrent use), taking the lines in chunks.
//
// Records is the number of lines that decode (the undecodable ones are
// dead-lettered by validate and go no further); the time covers every line.
// Loading the reference data is not timed.
func ComputeFloor(ctx context.Context, lines [][]byte, refDir string) (FloorResult, error) {
	ref, err := refdata.LoadDir(refDir)
	if err != nil {
		return FloorResult{}, fmt.Errorf("compute floor: load reference data: %w", err)
	}
	v, err := validate.NewValidator(validate.ValidatorConfig{ReferenceDir: refDir, Clock: clock.System()})
	if err != nil {
		return FloorResult{}, fmt.Errorf("compute floor: %w", err)
	}
	keys, err := floorKeys()
	if err != nil {
		return FloorResult{}, fmt.Errorf("compute floor: %w", err)
	}
	workers := runtime.GOMAXPROCS(0)
	var (
		next    atomic.Int64
		decoded atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		firstEr error
	)
	received := time.Now()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := floorWorker{
				validate:   validate.New(v),
				deidentify: deidentify.New(didi.NewDeidentifier(keys, ref)),
				assign:     assign.New(cam.NewAssigner(ref)),
				received:   received,
			}
			for ctx.Err() == nil {
				lo := int(next.Add(floorChunk)) - floorChunk
				if lo >= len(lines) {
					return
				}
				hi := min(lo+floorChunk, len(lines))
				n, err := w.run(lines[lo:hi], lo)
				decoded.Add(int64(n))
				if err != nil {
					errOnce.Do(func() { firstEr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstEr != nil {
		return FloorResult{}, fmt.Errorf("compute floor: %w", firstEr)
	}
	if err := ctx.Err(); err != nil {
		return FloorResult{}, fmt.Errorf("compute floor: %w", err)
	}
	return floorResult(int(decoded.Load()), elapsed), nil
}

// floorWorker is one goroutine's share of the compute floor.
type floorWorker struct {
	validate   *validate.Stage
	deidentify *deidentify.Stage
	assign     *assign.Stage
	received   time.Time
}

// run processes lines whose first has raw offset base; it returns how many
// decoded. An error means a marshal failed, which is a bug, not a bad record.
func (w *floorWorker) run(lines [][]byte, base int) (int, error) {
	decoded := 0
	for i, line := range lines {
		ok, err := w.one(line, int64(base+i))
		if err != nil {
			return decoded, err
		}
		if ok {
			decoded++
		}
	}
	return decoded, nil
}

// one runs a raw line through the three stages; it reports whether the line
// decoded. A rejection ends the chain, as a dead letter would.
func (w *floorWorker) one(line []byte, offset int64) (bool, error) {
	ctx := context.Background()
	m := pipeline.Message{Topic: topics.Raw, Offset: offset, Value: line, Time: w.received,
		Headers: []pipeline.Header{{Key: envelope.HeaderSubmission, Value: []byte("bench-compute-floor")}}}
	for i, stage := range []pipeline.Processor{w.validate, w.deidentify, w.assign} {
		outs, err := stage.Process(ctx, m)
		if err != nil {
			var rej *pipeline.Rejection
			if !errors.As(err, &rej) {
				return i > 0, err
			}
			decoded := i > 0 || len(rej.Failures) == 0 || !strings.HasPrefix(rej.Failures[0].GetRuleId(), "DEC-")
			return decoded, nil
		}
		// The next stage takes the record; validate's verdict for the
		// provider's report goes elsewhere (it costs its marshal here, as it
		// does in the pipeline).
		next := -1
		for j, o := range outs {
			if o.Topic != topics.ValidationOutcomes {
				if next >= 0 {
					return true, fmt.Errorf("stage %d gave more than one record output", i)
				}
				next = j
			}
		}
		if next < 0 {
			return true, fmt.Errorf("stage %d gave no record output", i)
		}
		m = pipeline.Message{Topic: outs[next].Topic, Key: outs[next].Key, Value: outs[next].Value, Offset: offset, Time: w.received}
	}
	return true, nil
}
