package record

import (
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// collect reads every item of a reader.
func collect(t *testing.T, r *Reader) []Item {
	t.Helper()
	var items []Item
	for {
		it, ok := r.Next()
		if !ok {
			break
		}
		items = append(items, it)
		if len(items) > 1000 {
			t.Fatal("reader does not end")
		}
	}
	if _, ok := r.Next(); ok {
		t.Error("Next returned an item after the end")
	}
	return items
}

type wantItem struct {
	line int64
	id   string // record id of a good record
	rule string // rule of a bad one
}

func checkItems(t *testing.T, got []Item, want []wantItem) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d items, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line {
			t.Errorf("item %d: line %d, want %d", i, g.Line, w.line)
		}
		if w.rule == "" {
			if g.Err != nil || RecordID(g.Record) != w.id {
				t.Errorf("item %d: record %q err %v, want record %q", i, RecordID(g.Record), g.Err, w.id)
			}
			continue
		}
		var de *DecodeError
		if !errors.As(g.Err, &de) || de.RuleID != w.rule {
			t.Errorf("item %d: err %v, want rule %s", i, g.Err, w.rule)
			continue
		}
		if de.Line != w.line {
			t.Errorf("item %d: error line %d, want %d", i, de.Line, w.line)
		}
		if g.Record != nil {
			t.Errorf("item %d: bad item has a record", i)
		}
	}
}

func TestNDJSONReader(t *testing.T) {
	body := "\xEF\xBB\xBF{\"cds_unique_identifier\":\"a\"}\r\n" + // 1, with BOM and CRLF
		"\n" + // 2
		"   \t\n" + // 3
		"{\"cds_unique_identifier\":\"b\",\"bogus\":1}\n" + // 4
		"not json\n" + // 5
		"{\"dataset\":\"op\",\"cds_unique_identifier\":\"c\"}\n" + // 6
		"\r\n" + // 7
		"{\"cds_unique_identifier\":\"d\"}" // 8, no final newline
	items := collect(t, NewNDJSONReader(strings.NewReader(body), dmicv1.Dataset_DATASET_APC))
	checkItems(t, items, []wantItem{
		{line: 1, id: "a"},
		{line: 4, rule: RuleUnknownField},
		{line: 5, rule: RuleJSON},
		{line: 6, id: "c"},
		{line: 8, id: "d"},
	})
	if items[3].Dataset != dmicv1.Dataset_DATASET_OUTPATIENT || items[0].Dataset != dmicv1.Dataset_DATASET_APC {
		t.Errorf("datasets %v %v", items[0].Dataset, items[3].Dataset)
	}
	if !strings.HasPrefix(items[1].Err.Error(), "line 4: field bogus: ") {
		t.Errorf("error text %q", items[1].Err)
	}
}

func TestNDJSONReaderEmptyAndBlank(t *testing.T) {
	for _, body := range []string{"", "\n", "\n\n  \n", "\r\n"} {
		if items := collect(t, NewNDJSONReader(strings.NewReader(body), dmicv1.Dataset_DATASET_APC)); len(items) != 0 {
			t.Errorf("body %q: %d items", body, len(items))
		}
	}
}

func TestNDJSONReaderLongLines(t *testing.T) {
	pad := func(n int) string {
		// A valid record of exactly n bytes.
		head := `{"dataset":"apc","cds_unique_identifier":"`
		return head + strings.Repeat("x", n-len(head)-2) + `"}`
	}
	atLimit := pad(MaxLineBytes)
	overLimit := pad(MaxLineBytes + 1)
	huge := strings.Repeat("y", 3*MaxLineBytes)
	body := `{"cds_unique_identifier":"a"}` + "\n" + // 1
		atLimit + "\r\n" + // 2: exactly the limit is fine, CRLF not counted
		overLimit + "\n" + // 3
		huge + "\n" + // 4
		`{"cds_unique_identifier":"e"}` + "\n" + // 5
		huge // 6, at the end without newline
	items := collect(t, NewNDJSONReader(strings.NewReader(body), dmicv1.Dataset_DATASET_APC))
	checkItems(t, items, []wantItem{
		{line: 1, id: "a"},
		{line: 2, id: strings.Repeat("x", MaxLineBytes-len(`{"dataset":"apc","cds_unique_identifier":"`)-2)},
		{line: 3, rule: RuleTooLong},
		{line: 4, rule: RuleTooLong},
		{line: 5, id: "e"},
		{line: 6, rule: RuleTooLong},
	})
}

// The NDJSON cousins of a CSV quote left open: records that would pass for
// one bad line, and a last line cut short, say what they are; the summary
// counts every line.
func TestNDJSONReaderNamesLinesThatHideRecords(t *testing.T) {
	body := `{"cds_unique_identifier":"a"}` + "\n" + // 1
		`{"cds_unique_identifier":"b"} {"cds_unique_identifier":"c"}` + "\n" + // 2: two on one line
		`[{"cds_unique_identifier":"d"},{"cds_unique_identifier":"e"}]` + "\n" + // 3: an array
		strings.Repeat("z", MaxLineBytes+1) + "\n" + // 4: too long, skipped
		"\n" + // 5: blank
		`{"cds_unique_identifier":"f"}` + "\n" + // 6
		`{"cds_unique_identifier":"g","provider_co` // 7: cut short
	rd := NewNDJSONReader(strings.NewReader(body), dmicv1.Dataset_DATASET_APC)
	items := collect(t, rd)
	checkItems(t, items, []wantItem{
		{line: 1, id: "a"}, {line: 2, rule: RuleJSON}, {line: 3, rule: RuleJSON},
		{line: 4, rule: RuleTooLong}, {line: 6, id: "f"}, {line: 7, rule: RuleJSON},
	})
	for i, want := range map[int]string{1: "more than one JSON object", 2: "JSON array", 5: "cut short"} {
		if msg := decodeMessage(t, items[i]); !strings.Contains(msg, want) {
			t.Errorf("line %d: message %q does not say %q", items[i].Line, msg, want)
		}
	}
	if msg := decodeMessage(t, items[0+1]); strings.Contains(msg, "cut short") {
		t.Errorf("line 2 is not the last line: %q", msg)
	}
	if want := (Summary{Records: 6, Lines: 7}); rd.Summary() != want {
		t.Errorf("summary %+v, want %+v", rd.Summary(), want)
	}
}

func TestNDJSONReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	body := io.MultiReader(strings.NewReader(`{"cds_unique_identifier":"a"}`+"\n"+`{"cds_uni`), iotest.ErrReader(boom))
	rd := NewNDJSONReader(body, dmicv1.Dataset_DATASET_APC)
	items := collect(t, rd)
	checkItems(t, items, []wantItem{{line: 1, id: "a"}, {line: 2, rule: RuleRead}})
	if !errors.Is(items[1].Err, boom) {
		t.Errorf("read error %v does not wrap the cause", items[1].Err)
	}
	if want := (Summary{Records: 2, Lines: 2, StoppedAt: 2, StopRule: RuleRead}); rd.Summary() != want {
		t.Errorf("summary %+v, want %+v", rd.Summary(), want)
	}
	// Broken between lines: the line that did not arrive is where it stopped.
	rd = NewNDJSONReader(io.MultiReader(strings.NewReader(`{"cds_unique_identifier":"a"}`+"\n"), iotest.ErrReader(boom)), dmicv1.Dataset_DATASET_APC)
	checkItems(t, collect(t, rd), []wantItem{{line: 1, id: "a"}, {line: 2, rule: RuleRead}})
	if sum := rd.Summary(); sum.StoppedAt != 2 || sum.Records != 2 {
		t.Errorf("summary %+v, want 2 records, stopped at line 2", sum)
	}
}

func TestCSVReader(t *testing.T) {
	body := "Dataset, CDS_UNIQUE_IDENTIFIER ,provider_code,appointment_date,cds_type,price_pence,activity_count\n" + // 1
		"op,a,RJ7,2026-01-08,,,\n" + // 2
		"\n" + // 3: blank, skipped
		"apc,b,RJ7,,130,,\n" + // 4
		"local_flow,c,RJ7,,,14250, 2 \n" + // 5
		"apc,d,RJ7,2026-01-08,130,,\n" + // 6: outpatient field with a value in an apc row
		"local_flow,e,RJ7,,,12.50,1\n" + // 7: price not an integer
		"apc,f,RJ7\n" + // 8: short row
		"apc,\"g\nstill g\",RJ7,,130,,\n" + // 9-10: quoted newline: no field holds one, so the row is refused
		"apc,h\"x,RJ7,,130,,\n" + // 11: bare quote
		",i,RJ7,,,,\n" + // 12: no dataset anywhere
		"op,j,RJ7,2026-01-09,,,\n" // 13
	rd, err := NewCSVReader(strings.NewReader(body), dmicv1.Dataset_DATASET_UNSPECIFIED)
	if err != nil {
		t.Fatal(err)
	}
	items := collect(t, rd)
	checkItems(t, items, []wantItem{
		{line: 2, id: "a"},
		{line: 4, id: "b"},
		{line: 5, id: "c"},
		{line: 6, rule: RuleFieldDataset},
		{line: 7, rule: RuleValue},
		{line: 8, rule: RuleColumns},
		{line: 9, rule: RuleCSV},
		{line: 11, rule: RuleCSV},
		{line: 12, rule: RuleDataset},
		{line: 13, id: "j"},
	})
	if lf := items[2].Record.GetLocalFlow(); lf.GetPricePence() != 14250 || lf.GetActivityCount() != 2 {
		t.Errorf("local flow integers: %v", lf)
	}
	if items[0].Record.GetOutpatient().GetAppointmentDate() != "2026-01-08" || items[0].Dataset != dmicv1.Dataset_DATASET_OUTPATIENT {
		t.Errorf("outpatient row: %v", items[0].Record)
	}
}

// csvItems reads a whole CSV body of outpatient rows.
func csvItems(t *testing.T, body string) ([]Item, Summary) {
	t.Helper()
	rd, err := NewCSVReader(strings.NewReader(body), dmicv1.Dataset_DATASET_OUTPATIENT)
	if err != nil {
		t.Fatal(err)
	}
	items := collect(t, rd)
	return items, rd.Summary()
}

// decodeMessage is the message of an item's decode error.
func decodeMessage(t *testing.T, it Item) string {
	t.Helper()
	var de *DecodeError
	if !errors.As(it.Err, &de) {
		t.Fatalf("line %d: %v, want a decode error", it.Line, it.Err)
	}
	return de.Message
}

// A quote left open in row 2 of 4 took in every line after it, and the file
// used to answer 2 results with no word of rows 3 and 4. Now the row's
// failure names the lines it took in, and the summary says reading stopped
// there.
func TestCSVUnclosedQuoteSaysWhereReadingStopped(t *testing.T) {
	body := "cds_unique_identifier,provider_code,appointment_date\n" + // 1
		"B1,RJ7,2026-01-02\n" + // 2: row 1
		"B2,\"RJ7,2026-01-02\n" + // 3: row 2, the quote opens and is never closed
		"B3,RJ7,2026-01-02\n" + // 4: row 3
		"B4,RJ7,2026-01-02\n" // 5: row 4
	items, sum := csvItems(t, body)
	checkItems(t, items, []wantItem{{line: 2, id: "B1"}, {line: 3, rule: RuleCSV}})
	msg := decodeMessage(t, items[1])
	for _, want := range []string{"never closed", "lines 3 to 5", "rest of the submission"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
	if want := (Summary{Records: 2, Lines: 5, StoppedAt: 3, StopRule: RuleCSV}); sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	// The same without a final line ending.
	if _, sum := csvItems(t, strings.TrimSuffix(body, "\n")); sum.Lines != 5 || sum.StoppedAt != 3 {
		t.Errorf("without a final newline: summary %+v, want 5 lines, stopped at 3", sum)
	}
}

// rowsReader is a CSV body made as it is read: a header, a good row, a row
// whose quote opens and never closes, then rows of at most total bytes.
type rowsReader struct {
	head  string
	row   []byte
	left  int64
	taken int
}

func (r *rowsReader) Read(p []byte) (int, error) {
	if r.head != "" {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.left > 0 {
		c := copy(p[n:], r.row[r.taken:])
		n, r.taken, r.left = n+c, (r.taken+c)%len(r.row), r.left-int64(c)
	}
	return n, nil
}

// TestCSVUnclosedQuoteInALargeBodyIsBounded: a quote never closed in a large
// body stops reading at its line once the row passes the record limit, and
// the reader holds about a record, not the rest of the body (a 300 MB file
// took ingest to 1.6 GB; issue 12).
func TestCSVUnclosedQuoteInALargeBodyIsBounded(t *testing.T) {
	const bodyBytes = 64 << 20
	body := &rowsReader{head: "cds_unique_identifier,provider_code,appointment_date\nB1,RJ7,2026-01-02\nB2,\"RJ7,2026-01-02\n",
		row: []byte("B3,RJ7,2026-01-02\n"), left: bodyBytes}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := NewCSVReader(body, dmicv1.Dataset_DATASET_OUTPATIENT)
	if err != nil {
		t.Fatal(err)
	}
	items := collect(t, r)
	runtime.ReadMemStats(&after)
	checkItems(t, items, []wantItem{{line: 2, id: "B1"}, {line: 3, rule: RuleTooLong}})
	if msg := decodeMessage(t, items[1]); !strings.Contains(msg, "never closed") || !strings.Contains(msg, "524288-byte record limit") {
		t.Errorf("message %q does not say the quote is never closed and the limit", msg)
	}
	if sum := r.Summary(); sum.StoppedAt != 3 || sum.StopRule != RuleTooLong {
		t.Errorf("summary %+v, want stopped at line 3 by %s", sum, RuleTooLong)
	}
	// Allocated in all, garbage included: a few times the row limit, far
	// below the body.
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("reading allocated %d bytes for a %d-byte body", got, bodyBytes)
	}
	if body.left < bodyBytes-2*maxRowRead {
		t.Errorf("read %d bytes of the body past the open quote, want at most about one row", bodyBytes-body.left)
	}
}

// A quote opened on one line and closed lines later takes in the lines
// between; the error names them and reading goes on after them. A row that
// parses but holds a line break is refused for the same reason: it would
// otherwise hide the rows it took in, and might pass as a record.
func TestCSVQuoteSpanningLinesNamesTheLinesTakenIn(t *testing.T) {
	body := "cds_unique_identifier,provider_code,appointment_date\n" + // 1
		"B1,\"RJ7,2026-01-02\n" + // 2: quote opens
		"B2,RJ7,2026-01-02\n" + // 3
		"B3,R\"J7,2026-01-02\n" + // 4: a stray quote closes it, then text: unparsable
		"B4,RJ7,2026-01-02\n" + // 5
		"B5,\"RJ7\n" + // 6: quote opens
		"B6\",2026-01-02,\n" + // 7: and closes: a row of 3 cells over 2 lines
		"B7,RJ7,2026-01-02\n" // 8
	items, sum := csvItems(t, body)
	checkItems(t, items, []wantItem{{line: 2, rule: RuleCSV}, {line: 5, id: "B4"}, {line: 6, rule: RuleCSV}, {line: 8, id: "B7"}})
	if msg := decodeMessage(t, items[0]); !strings.Contains(msg, "lines 2 to 4") || !strings.Contains(msg, "rows on lines 3 to 4 were not read") {
		t.Errorf("message %q does not name the lines taken in", msg)
	}
	if msg := decodeMessage(t, items[2]); !strings.Contains(msg, "from line 6 to line 7") {
		t.Errorf("message %q does not name the lines of the row", msg)
	}
	if want := (Summary{Records: 4, Lines: 8}); sum != want {
		t.Errorf("summary %+v, want %+v (read to the end)", sum, want)
	}
	// Two open quotes in a row: each is reported, none is read twice.
	items, sum = csvItems(t, "cds_unique_identifier,provider_code\n\"B1,RJ7\n\"x,\"B2\n\"B3,RJ7\nB4,RJ7\n")
	checkItems(t, items, []wantItem{{line: 2, rule: RuleCSV}, {line: 4, rule: RuleCSV}})
	if sum.StoppedAt != 4 || sum.Records != 2 {
		t.Errorf("summary %+v, want 2 records, stopped at line 4", sum)
	}
}

func TestCSVReaderExampleFile(t *testing.T) {
	f, err := os.Open("testdata/examples.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := NewCSVReader(f, dmicv1.Dataset_DATASET_UNSPECIFIED)
	if err != nil {
		t.Fatal(err)
	}
	items := collect(t, rd)
	checkItems(t, items, []wantItem{{line: 2, id: "PLCM-RJ7-2026-01-000042"}, {line: 3, id: "PLCM-RJ7-2026-01-000043"}})
	if items[1].Record.GetUpdateType() != dmicv1.UpdateType_UPDATE_TYPE_DELETE || items[1].Record.GetPatient() != nil {
		t.Errorf("delete row: %v", items[1].Record)
	}
}

func TestCSVReaderFallbackDataset(t *testing.T) {
	rd, err := NewCSVReader(strings.NewReader("cds_unique_identifier,ec_arrival_date\nx,2026-01-01\n"), dmicv1.Dataset_DATASET_EMERGENCY_CARE)
	if err != nil {
		t.Fatal(err)
	}
	items := collect(t, rd)
	checkItems(t, items, []wantItem{{line: 2, id: "x"}})
	if items[0].Record.GetEmergencyCare().GetEcArrivalDate() != "2026-01-01" {
		t.Errorf("record %v", items[0].Record)
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		fallback dmicv1.Dataset
		rule     string
		field    string
		text     string // must appear in the error
	}{
		{"empty body", "", dmicv1.Dataset_DATASET_APC, RuleCSVHeader, "", "header row is missing"},
		{"unknown column", "cds_unique_identifier,patient_surname,provider_code\n", dmicv1.Dataset_DATASET_APC, RuleCSVHeader, "patient_surname", "column 2"},
		{"duplicate column", "cds_unique_identifier,provider_code,PROVIDER_CODE\n", dmicv1.Dataset_DATASET_APC, RuleCSVHeader, "provider_code", "column 3 repeats column 2"},
		{"unnamed column", "cds_unique_identifier,,provider_code\n", dmicv1.Dataset_DATASET_APC, RuleCSVHeader, "", "column 2 has no name"},
		{"no dataset", "cds_unique_identifier,provider_code\n", dmicv1.Dataset_DATASET_UNSPECIFIED, RuleDataset, "", "no dataset"},
		{"column of other dataset", "cds_unique_identifier,appointment_date\n", dmicv1.Dataset_DATASET_APC, RuleFieldDataset, "appointment_date", "column 2"},
		{"bad quoting", "\"cds_unique_identifier\"x,provider_code\n", dmicv1.Dataset_DATASET_APC, RuleCSVHeader, "", "cannot be parsed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd, err := NewCSVReader(strings.NewReader(tt.body), tt.fallback)
			if err == nil {
				t.Fatalf("NewCSVReader succeeded: %v", rd)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.RuleID != tt.rule || de.Field != tt.field || de.Line != 1 {
				t.Fatalf("got %#v, want rule %s field %q", err, tt.rule, tt.field)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q lacks %q", err, tt.text)
			}
		})
	}
}

func TestCSVReaderReadError(t *testing.T) {
	boom := errors.New("disk gone")
	body := io.MultiReader(strings.NewReader("dataset,cds_unique_identifier\napc,a\napc,b"), iotest.ErrReader(boom))
	rd, err := NewCSVReader(body, 0)
	if err != nil {
		t.Fatal(err)
	}
	items := collect(t, rd)
	if len(items) < 2 {
		t.Fatalf("items %+v", items)
	}
	last := items[len(items)-1]
	var de *DecodeError
	if !errors.As(last.Err, &de) || de.RuleID != RuleRead || !errors.Is(last.Err, boom) {
		t.Errorf("last item %+v, want a DEC-READ wrapping the cause", last)
	}
	if RecordID(items[0].Record) != "a" {
		t.Errorf("first item %+v", items[0])
	}
	if sum := rd.Summary(); sum.StoppedAt != last.Line || sum.StopRule != RuleRead || sum.Records != int64(len(items)) {
		t.Errorf("summary %+v, want stopped at line %d by %s", sum, last.Line, RuleRead)
	}
}

// A CSV row that is not UTF-8 is refused, as a JSON line would be: protobuf
// strings cannot carry it and repairing it would change the provider's value.
// (Found by FuzzCSVReader.)
func TestCSVRowNotUTF8(t *testing.T) {
	rd, err := NewCSVReader(strings.NewReader("cds_unique_identifier,provider_code,appointment_date\nB1,RJ7,\x80\nB2,RJ7,2026-01-02\n"),
		dmicv1.Dataset_DATASET_OUTPATIENT)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := rd.Next()
	if de, ok := bad.Err.(*DecodeError); !ok || de.RuleID != RuleCSV || bad.Line != 2 {
		t.Errorf("row 2 = %+v, want DEC-CSV on line 2", bad)
	}
	good, _ := rd.Next()
	if good.Err != nil || good.Record.GetCdsUniqueIdentifier() != "B2" {
		t.Errorf("row 3 = %+v, want B2 read", good)
	}
}
