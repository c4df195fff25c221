package checker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/validate/checker"
	"github.com/dmic-nhs/dmic/services/validate/spec"
	"github.com/dmic-nhs/dmic/services/validate/spec/spectest"
)

func validator(t *testing.T) *spec.Validator {
	t.Helper()
	reg, err := spec.BuiltIn()
	if err != nil {
		t.Fatal(err)
	}
	return spec.New(reg, spec.WithClock(clocktest.Clock(t)))
}

// Without a day of receipt the file is judged as received today by the
// validator's clock: a version that takes effect tomorrow applies only once
// the clock reaches it.
func TestCheckReceivedTodayByTheValidatorsClock(t *testing.T) {
	today := clocktest.Today(t)
	tomorrow := today.AddDate(0, 0, 1)
	next := spectest.Version(t, "apc", "2026.9", clocktest.Date(tomorrow), nil)
	reg, err := spec.BuiltIn()
	if err != nil {
		t.Fatal(err)
	}
	if reg, _, _, err = reg.With(next, spec.OriginLoaded, today); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{{today, "apc/2026.1"}, {tomorrow, "apc/2026.9"}} {
		v := spec.New(reg, spec.WithClock(clock.Fixed(tc.now)))
		rep, err := checker.Check(context.Background(), v, bytes.NewReader(apcLines(t)), checker.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.GetSpecVersions(); len(got) != 1 || got[0] != tc.want {
			t.Errorf("clock at %s: checked against %v, want %s", tc.now.Format(time.DateOnly), got, tc.want)
		}
	}
}

// apcLines are the documented apc example, the same record again (DUP-001),
// a line that is not JSON, and the example with a bad NHS number.
func apcLines(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../internal/record/testdata/examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	apc := strings.SplitN(string(b), "\n", 2)[0]
	if !strings.Contains(apc, `"dataset":"apc"`) {
		t.Fatalf("first example is not apc: %s", apc)
	}
	bad := strings.Replace(apc, `"BRJ700000000000000000001"`, `"BRJ700000000000000000009"`, 1)
	bad = strings.Replace(bad, `"nhs_number":"9434765919"`, `"nhs_number":"9434765918"`, 1)
	if bad == apc || !strings.Contains(bad, "9434765918") {
		t.Fatal("could not spoil the example")
	}
	return []byte(apc + "\n" + apc + "\n" + `{"dataset":"apc",` + "\n" + bad + "\n")
}

func TestCheckReportsEveryKindOfVerdict(t *testing.T) {
	rep, err := checker.Check(context.Background(), validator(t), bytes.NewReader(apcLines(t)), checker.Options{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 4 || rep.Validated != 4 || !rep.Complete || rep.Accepted != 1 || rep.Warned != 0 || rep.Rejected != 3 {
		t.Fatalf("report = %v, want 4 records: 1 accepted, 3 rejected", rep)
	}
	rules := map[string]int64{}
	for _, r := range rep.Rules {
		rules[r.RuleId+"|"+r.Field] = r.Records
	}
	want := map[string]int64{"DUP-001|cds_unique_identifier": 1, "DEC-JSON|": 1, "NHS-002|nhs_number": 1}
	if len(rules) != len(want) {
		t.Errorf("rules = %v, want %v", rules, want)
	}
	for k, n := range want {
		if rules[k] != n {
			t.Errorf("rule %s: %d records, want %d (all: %v)", k, rules[k], n, rules)
		}
	}
	var lines []int64
	for _, f := range rep.FailingRecords {
		lines = append(lines, f.LineNumber)
	}
	if len(lines) != 3 || lines[0] != 2 || lines[1] != 3 || lines[2] != 4 {
		t.Errorf("failing lines = %v, want [2 3 4]", lines)
	}
	if len(rep.SpecVersions) != 1 || rep.SpecVersions[0] != "apc/2026.1" {
		t.Errorf("spec versions = %v, want [apc/2026.1]", rep.SpecVersions)
	}
	// The report never repeats a value of the file.
	if s := protojson.Format(rep); strings.Contains(s, "9434765918") || strings.Contains(s, "9434765919") {
		t.Errorf("report holds an NHS number:\n%s", s)
	}
}

// The same records as CSV give the same report as NDJSON.
func TestCheckCSVAndNDJSONAgree(t *testing.T) {
	var recs []*dmicv1.CommissioningRecord
	rd := record.NewNDJSONReader(bytes.NewReader(apcLines(t)), 0)
	for {
		it, ok := rd.Next()
		if !ok {
			break
		}
		if it.Err == nil {
			recs = append(recs, it.Record)
		}
	}
	// CSV: one header of apc fields, one row per decodable record.
	names := record.FieldNames(dmicv1.Dataset_DATASET_APC)
	var csv, ndjson bytes.Buffer
	csv.WriteString(strings.Join(names, ",") + "\n")
	for _, r := range recs {
		var cells []string
		for _, n := range names {
			get, _ := record.Getter(n, dmicv1.Dataset_DATASET_APC)
			cells = append(cells, get(r))
		}
		csv.WriteString(strings.Join(cells, ",") + "\n")
		b, err := record.EncodeJSON(dmicv1.Dataset_DATASET_APC, r)
		if err != nil {
			t.Fatal(err)
		}
		ndjson.Write(append(b, '\n'))
	}
	v := validator(t)
	digests := []string{sha256Hex(csv.Bytes()), sha256Hex(ndjson.Bytes())}
	fromCSV, err := checker.Check(context.Background(), v, &csv, checker.Options{Format: checker.CSV})
	if err != nil {
		t.Fatal(err)
	}
	fromNDJSON, err := checker.Check(context.Background(), v, &ndjson, checker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Each report names its file's digest, which ingest gives the same file
	// sent over HTTP; the files differ.
	if got := []string{fromCSV.ContentSha256, fromNDJSON.ContentSha256}; !slices.Equal(got, digests) {
		t.Errorf("content digests = %v, want the files' %v", got, digests)
	}
	fromCSV.ContentSha256, fromNDJSON.ContentSha256 = "", ""
	// CSV lines are one further down (the header).
	for _, f := range fromCSV.FailingRecords {
		f.LineNumber--
	}
	if fromCSV.Read.GetLines() != fromNDJSON.Read.GetLines()+1 || fromCSV.Read.GetRecords() != 3 {
		t.Errorf("read: CSV %v, NDJSON %v; want 3 records each, the CSV one line longer", fromCSV.Read, fromNDJSON.Read)
	}
	fromCSV.Read.Lines--
	if !proto.Equal(fromCSV, fromNDJSON) {
		t.Errorf("CSV and NDJSON reports differ:\n%v\n%v", fromCSV, fromNDJSON)
	}
	if fromNDJSON.Rejected != 2 {
		t.Errorf("rejected = %d, want 2 (the repeat and the bad NHS number)", fromNDJSON.Rejected)
	}
}

func TestCheckRefusesAnUnusableCSVHeader(t *testing.T) {
	_, err := checker.Check(context.Background(), validator(t), strings.NewReader("no_such_field\nx\n"), checker.Options{Format: checker.CSV})
	if err == nil || !strings.Contains(err.Error(), "no_such_field") {
		t.Errorf("err = %v, want the header refused, naming the column", err)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
