// Package leakguard looks for submitted patient identifiers where none may
// be: on every topic after de-identification, in every String column of every
// ClickHouse table, and in service logs. A finding names where and what kind
// of identifier was found, never the identifier itself, so a report of a leak
// does not leak again.
package leakguard

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// AfterDeidentification are the topics that must hold no identifier: every
// topic written after the de-identify stage, and the validation outcomes and
// submission receipts, which are written before it but carry rule ids only.
var AfterDeidentification = []string{
	topics.Deidentified, topics.Assigned, topics.Reconciled, topics.NationalReturn, topics.ReconcileState,
	topics.ValidationOutcomes, topics.Submissions, topics.SubmissionAttempts, topics.Specifications, topics.KeyRotations,
}

// Identifiers is the set of values to look for, each with its kind.
type Identifiers struct {
	values []string
	kinds  map[string]string
}

// Patient is what was submitted for one patient: any field may be empty.
type Patient struct {
	NHSNumber, Postcode, BirthDate, LocalPatientID string
}

// NewIdentifiers collects the values to look for. A postcode is looked for
// with and without its space. Dates of birth on or after notBefore are left
// out, because they can legitimately equal an activity date; so are local
// patient ids shorter than 6 characters, which would match by chance.
func NewIdentifiers(ps []Patient, notBefore string) *Identifiers {
	ids := &Identifiers{kinds: map[string]string{}}
	add := func(v, kind string) {
		if _, ok := ids.kinds[v]; !ok {
			ids.kinds[v] = kind
			ids.values = append(ids.values, v)
		}
	}
	for _, p := range ps {
		if len(p.NHSNumber) == 10 {
			add(p.NHSNumber, "NHS number")
		}
		if p.Postcode != "" {
			add(p.Postcode, "postcode")
			add(strings.ReplaceAll(p.Postcode, " ", ""), "postcode")
		}
		if p.BirthDate != "" && p.BirthDate < notBefore {
			add(p.BirthDate, "date of birth")
		}
		if len(p.LocalPatientID) >= 6 {
			add(p.LocalPatientID, "local patient id")
		}
	}
	sort.Strings(ids.values)
	return ids
}

// Len is the number of values looked for.
func (ids *Identifiers) Len() int { return len(ids.values) }

// Finding is one identifier found: where, and what kind. Never the value.
type Finding struct {
	Where string
	Kind  string
}

func (f Finding) String() string { return f.Kind + " in " + f.Where }

// Count is how many of the identifiers text contains.
func (ids *Identifiers) Count(text string) int {
	n := 0
	for _, v := range ids.values {
		if strings.Contains(text, v) {
			n++
		}
	}
	return n
}

// ScanText reports every identifier text contains.
func (ids *Identifiers) ScanText(where, text string) []Finding {
	var out []Finding
	for _, v := range ids.values {
		if strings.Contains(text, v) {
			out = append(out, Finding{Where: where, Kind: ids.kinds[v]})
		}
	}
	return out
}

// ScanTopics reads every message (key and value) of each topic and reports
// the identifiers found, and how many messages each topic held. c must be
// a principal that may read them all (topics.Operator).
func (ids *Identifiers) ScanTopics(ctx context.Context, c kafkaconn.Cluster, names []string) ([]Finding, map[string]int, error) {
	var out []Finding
	counts := map[string]int{}
	for _, topic := range names {
		var sb strings.Builder
		n, err := ReadTopic(ctx, c, topic, func(m kafka.Message) {
			sb.Write(m.Key)
			sb.WriteByte('\n')
			sb.Write(m.Value)
			sb.WriteByte('\n')
		})
		if err != nil {
			return nil, nil, err
		}
		counts[topic] = n
		out = append(out, ids.ScanText("topic "+topic, sb.String())...)
	}
	return out, counts, nil
}

// ScanClickHouse reads every String and Array(String) column of every table
// of database db and reports the identifiers found.
func (ids *Identifiers) ScanClickHouse(ctx context.Context, conn driver.Conn, db string) ([]Finding, error) {
	rows, err := conn.Query(ctx, "SELECT table, name, type FROM system.columns WHERE database = ?", db)
	if err != nil {
		return nil, fmt.Errorf("list columns of %s: %w", db, err)
	}
	cols := map[string][]string{}
	for rows.Next() {
		var table, name, typ string
		if err := rows.Scan(&table, &name, &typ); err != nil {
			rows.Close()
			return nil, err
		}
		switch {
		case strings.Contains(typ, "Array(String)"):
			cols[table] = append(cols[table], "arrayStringConcat("+name+", ',')")
		case strings.Contains(typ, "String"):
			cols[table] = append(cols[table], "toString("+name+")")
		}
	}
	rows.Close()
	if len(cols) == 0 {
		return nil, fmt.Errorf("database %s has no String column to scan", db)
	}
	var out []Finding
	tables := make([]string, 0, len(cols))
	for t := range cols {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, table := range tables {
		exprs := cols[table]
		q := fmt.Sprintf("SELECT %s FROM %s.%s", exprs[0], db, table)
		if len(exprs) > 1 {
			q = fmt.Sprintf("SELECT concat(%s) FROM %s.%s", strings.Join(exprs, ", '\\t', "), db, table)
		}
		r, err := conn.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("scan %s.%s: %w", db, table, err)
		}
		var sb strings.Builder
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				r.Close()
				return nil, err
			}
			sb.WriteString(s)
			sb.WriteByte('\n')
		}
		r.Close()
		out = append(out, ids.ScanText("ClickHouse table "+db+"."+table, sb.String())...)
	}
	return out, nil
}

// ReadTopic calls fn for every message of every partition of topic, up to
// its end when called, and returns how many there were.
func ReadTopic(ctx context.Context, c kafkaconn.Cluster, topic string, fn func(kafka.Message)) (int, error) {
	client := c.Client(10 * time.Second)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return 0, fmt.Errorf("topic %s not found", topic)
	}
	total := 0
	for _, p := range meta.Topics[0].Partitions {
		offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID)}}})
		if err != nil {
			return total, fmt.Errorf("offsets of %s/%d: %w", topic, p.ID, err)
		}
		po := offs.Topics[topic][0]
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := c.NewReader(kafka.ReaderConfig{Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(po.FirstOffset); err != nil {
			r.Close()
			return total, err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		for {
			m, err := r.ReadMessage(rctx)
			if err != nil {
				cancel()
				r.Close()
				return total, fmt.Errorf("read %s/%d: %w", topic, p.ID, err)
			}
			fn(m)
			total++
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		cancel()
		r.Close()
	}
	return total, nil
}
