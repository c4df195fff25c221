package load_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
)

// assignedRecord is an assigned APC record with an analytics pseudonym and a
// national-return one, as deidentify and assign leave it.
func assignedRecord(analytics, analyticsVersion, national string) *dmicv1.DeidentifiedRecord {
	return &dmicv1.DeidentifiedRecord{
		Header:   &dmicv1.EnvelopeHeader{RecordKey: "RJ7|apc|B1", Dataset: dmicv1.Dataset_DATASET_APC, Source: dmicv1.Source_SOURCE_PROVIDER, Version: 7},
		MatchKey: "apc|RJ7|B1",
		Activity: &dmicv1.DeidentifiedActivity{
			CdsUniqueIdentifier: "B1", ProviderCode: "RJ7", ActivityDate: "2026-01-05",
			PseudoNhsNumber: analytics, PseudonymKeyVersion: analyticsVersion, PseudonymDomain: didi.DomainAnalytics,
			DomainPseudonyms: []*dmicv1.DomainPseudonym{{Domain: didi.DomainNationalReturn, Pseudonym: national, KeyVersion: "n1"}},
			Activity:         &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{HrgCode: "EB10A"}},
		},
		Assignment: &dmicv1.Assignment{CommissionerCode: "36L"},
	}
}

// The row load keeps of a record holds neither the other domains'
// pseudonyms nor CAM's trail, which no table stores: it is the row of the
// record without them.
func TestProcessorDropsDomainPseudonyms(t *testing.T) {
	in := assignedRecord(strings.Repeat("a", 64), "v1", strings.Repeat("b", 64))
	in.Assignment.Trail = []*dmicv1.CamDecision{{Step: "C-5", Question: "Is there a responsible sub-ICB location?"}}
	want := proto.Clone(in).(*dmicv1.DeidentifiedRecord)
	want.Activity.DomainPseudonyms = nil
	want.Assignment.Trail = nil
	if got, want := decoded(t, topics.Assigned, in), decoded(t, topics.Assigned, want); !reflect.DeepEqual(got, want) {
		t.Errorf("row = %v, want that of the record without them, %v", got, want)
	}
}

// A re-pseudonymised record (same record key and version, a new analytics
// pseudonym) replaces the first row under FINAL: ReplacingMergeTree(version)
// keeps the last inserted of equal versions. No column anywhere holds the
// national-return pseudonym.
func TestRepseudonymisedRowReplacesTheFirst(t *testing.T) {
	conn, cfg := chstoretest.Database(t, "dmic_load_pseudo")
	db := cfg.Database
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v1, v2, national := strings.Repeat("1a", 32), strings.Repeat("2b", 32), strings.Repeat("3c", 32)
	sink := load.Sink{Store: chstore.NewWriter(conn, db), Kafka: &fakeKafka{}}
	for _, r := range []*dmicv1.DeidentifiedRecord{assignedRecord(v1, "v1", national), assignedRecord(v2, "v2", national)} {
		// One insert each, like the first pass and the replay.
		outs, err := load.Processor{}.Process(ctx, pipeline.Message{Topic: topics.Assigned, Value: marshal(t, r)})
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Write(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
	var pseudonym, version string
	if err := conn.QueryRow(ctx, "SELECT pseudo_nhs_number, pseudonym_key_version FROM "+db+".activity FINAL WHERE record_key = 'RJ7|apc|B1'").
		Scan(&pseudonym, &version); err != nil {
		t.Fatal(err)
	}
	if pseudonym != v2 || version != "v2" {
		t.Errorf("under FINAL: pseudonym %q version %q, want the re-pseudonymised (v2) row", pseudonym, version)
	}
	if n := count(t, ctx, conn, "SELECT count() FROM "+db+".activity FINAL"); n != 1 {
		t.Errorf("%d rows under FINAL, want 1", n)
	}
	if n := count(t, ctx, conn, "SELECT count() FROM "+db+"."+chstore.ViewActivityCurrent+" WHERE pseudo_nhs_number = '"+v2+"'"); n != 1 {
		t.Errorf("%s has the v2 pseudonym %d times, want once", chstore.ViewActivityCurrent, n)
	}

	rows, err := conn.Query(ctx, "SELECT table, name FROM system.columns WHERE database = ? AND type LIKE '%String%'", db)
	if err != nil {
		t.Fatal(err)
	}
	var cols [][2]string
	for rows.Next() {
		var table, name string
		if err := rows.Scan(&table, &name); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, [2]string{table, name})
	}
	rows.Close()
	if len(cols) == 0 {
		t.Fatal("no String columns found")
	}
	for _, c := range cols {
		if strings.Contains(c[1], "domain_pseudonym") {
			t.Errorf("%s.%s: a column for domain pseudonyms", c[0], c[1])
		}
		// Array(String) columns are searched as text too.
		q := "SELECT count() FROM " + db + "." + c[0] + " WHERE position(toString(" + c[1] + "), '" + national + "') > 0"
		if n := count(t, ctx, conn, q); n != 0 {
			t.Errorf("%s.%s holds the national-return pseudonym", c[0], c[1])
		}
	}
}

func count(t *testing.T, ctx context.Context, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
