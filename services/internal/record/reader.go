package record

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/limits"
)

// MaxLineBytes is the longest JSON line (without its line ending) a reader
// accepts: limits.MaxRecordBytes, the one record limit of the whole pipeline.
// A provider record is well under 4 KiB; the limit also protects the ingest
// service from a file with no line breaks.
const MaxLineBytes = limits.MaxRecordBytes

// Item is one record of a submission, or the reason it could not be read.
type Item struct {
	// Line is the 1-based line of the record in the submission (for CSV the
	// line the row starts on; the header is line 1).
	Line    int64
	Record  *dmicv1.CommissioningRecord
	Dataset dmicv1.Dataset
	// Err is a *DecodeError when the record could not be decoded. Reading
	// goes on after it, except for a DEC-READ error, which is the last item.
	Err error
}

// Reader yields the records of a submission body one at a time, so that a
// bad record never stops the good ones after it. Summary says, at the end,
// how much of the body was read, and where reading stopped if it could not go
// on: a smaller answer than the file is never left unexplained.
type Reader struct {
	fallback dmicv1.Dataset
	done     bool

	// records counts the items returned; stoppedAt and stopRule are the line
	// and rule of the item after which nothing more could be read.
	records   int64
	stoppedAt int64
	stopRule  string

	// JSON lines.
	br   *bufio.Reader
	line int64
	long []byte

	// CSV.
	cr     *csv.Reader
	lc     *lineCounter
	cols   []*field
	header []string
	// ahead is the read that followed a parse error, made to learn whether
	// the error reached the end of the body; it is decoded next.
	ahead *csvRead
	// csvLine is the last line encoding/csv has parsed.
	csvLine int
}

// csvRead is the outcome of one encoding/csv Read: a row and the line it
// starts on, or an error.
type csvRead struct {
	row  []string
	line int
	err  error
}

// Summary is how much of a submission body a Reader read.
type Summary struct {
	// Records is the number of items (records and decode errors) returned.
	Records int64
	// Lines is the number of lines of the body read, the CSV header and
	// blank lines included.
	Lines int64
	// StoppedAt is the line from which the rest of the body could not be
	// read as records, and StopRule the rule of that line's error; 0 and ""
	// when the body was read to its end.
	StoppedAt int64
	StopRule  string
}

// Summary says how much of the body was read. Call it after Next has
// returned false.
func (r *Reader) Summary() Summary {
	lines := r.line
	if r.lc != nil {
		lines = r.lc.lines()
	}
	return Summary{Records: r.records, Lines: lines, StoppedAt: r.stoppedAt, StopRule: r.stopRule}
}

// Proto is the summary as the API gives it.
func (s Summary) Proto() *dmicv1.ReadSummary {
	return &dmicv1.ReadSummary{Records: s.Records, Lines: s.Lines, StoppedAtLine: s.StoppedAt, StoppedByRule: s.StopRule}
}

// lineCounter counts the lines of what encoding/csv reads, which does not
// say how many lines it consumed, and bounds the bytes of one row.
type lineCounter struct {
	r        io.Reader
	newlines int64
	any      bool
	last     byte
	// read is every byte read; rowStart is read when the row being parsed
	// began.
	read, rowStart int64
}

// maxRowRead bounds what encoding/csv may read for one row. It keeps a row
// whole in memory, and a quote never closed makes the rest of the body one
// row: a 300 MB file took ingest to 1.6 GB (issue 12). A row of
// MaxRecordBytes and encoding/csv's read-ahead (4 KiB) always fit.
const maxRowRead = limits.MaxRecordBytes + 64<<10

// errRowTooLong ends a row that has read more than maxRowRead.
var errRowTooLong = errors.New("row too long")

func (c *lineCounter) Read(p []byte) (int, error) {
	if c.read-c.rowStart > maxRowRead {
		return 0, errRowTooLong
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.read += int64(n)
		c.newlines += int64(bytes.Count(p[:n], []byte{'\n'}))
		c.any, c.last = true, p[n-1]
	}
	return n, err
}

// lines is the number of lines read so far: a last line without a line
// ending counts.
func (c *lineCounter) lines() int64 {
	if c.any && c.last != '\n' {
		return c.newlines + 1
	}
	return c.newlines
}

var utf8BOM = []byte("\xEF\xBB\xBF")

// NewNDJSONReader reads JSON lines: one record per line, blank lines skipped,
// lines of up to MaxLineBytes.
func NewNDJSONReader(r io.Reader, fallback dmicv1.Dataset) *Reader {
	return &Reader{fallback: fallback, br: bufio.NewReaderSize(r, 64<<10)}
}

// NewCSVReader reads CSV whose first row names the fields (the JSON field
// names, in any case and order). A header it cannot use is an error; rows are
// read by Next.
func NewCSVReader(r io.Reader, fallback dmicv1.Dataset) (*Reader, error) {
	// A byte order mark (a spreadsheet's "CSV UTF-8") is dropped before
	// encoding/csv reads the header: left in, it comes before a quoted
	// first column name ("\ufeff\"dataset\",...") and made the whole file
	// a bare-quote DEC-CSV-HEADER.
	br := bufio.NewReaderSize(r, 64<<10)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	lc := &lineCounter{r: br}
	cr := csv.NewReader(lc)
	cr.FieldsPerRecord = -1 // a short or long row is that row's error, not the file's
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &DecodeError{Line: 1, RuleID: RuleCSVHeader, Message: "submission is empty: the header row is missing"}
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, &DecodeError{Line: 1, RuleID: RuleCSVHeader, Message: "header row cannot be parsed: " + pe.Err.Error()}
		}
		if errors.Is(err, errRowTooLong) {
			return nil, &DecodeError{Line: 1, RuleID: RuleCSVHeader, Message: fmt.Sprintf("header row is longer than %d bytes: most likely a quote left open", maxRowRead)}
		}
		return nil, &DecodeError{Line: 1, RuleID: RuleRead, Message: "submission could not be read", err: err}
	}
	if !knownDataset(fallback) {
		fallback = dmicv1.Dataset_DATASET_UNSPECIFIED
	}
	rd := &Reader{fallback: fallback, cr: cr, lc: lc, cols: make([]*field, len(header)), header: make([]string, len(header))}
	seen := make(map[string]int, len(header))
	hasDataset := false
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if name == "" {
			return nil, &DecodeError{Line: 1, RuleID: RuleCSVHeader, Message: fmt.Sprintf("column %d has no name", i+1)}
		}
		f := fields.byName[name]
		if f == nil {
			msg := unknownFieldMessage(name, fmt.Sprintf("column %d is not a field of the record format", i+1))
			shown := shownName(name)
			if shown == "" {
				msg += "; " + nameNotShown
			}
			return nil, &DecodeError{Line: 1, Field: shown, RuleID: RuleCSVHeader, Message: msg}
		}
		if j, dup := seen[name]; dup {
			return nil, &DecodeError{Line: 1, Field: shownName(name), RuleID: RuleCSVHeader, Message: fmt.Sprintf("column %d repeats column %d", i+1, j+1)}
		}
		seen[name] = i
		rd.cols[i], rd.header[i] = f, name
		hasDataset = hasDataset || f.kind == kindDataset
	}
	// Without a dataset column every row has the submission's dataset, so
	// a missing dataset or a column of another dataset is wrong for every
	// row: say so once.
	if !hasDataset {
		if fallback == dmicv1.Dataset_DATASET_UNSPECIFIED {
			return nil, &DecodeError{Line: 1, RuleID: RuleDataset, Message: "no dataset column and the submission names no dataset"}
		}
		for i, f := range rd.cols {
			if !f.allowed(fallback) {
				return nil, &DecodeError{Line: 1, Field: f.name, RuleID: RuleFieldDataset, Message: fmt.Sprintf("column %d does not belong to dataset %s", i+1, DatasetName(fallback))}
			}
		}
	}
	return rd, nil
}

// Next returns the next record, or false at the end of the submission.
func (r *Reader) Next() (Item, bool) {
	if r.done {
		return Item{}, false
	}
	var it Item
	var ok bool
	if r.cr != nil {
		it, ok = r.nextCSV()
	} else {
		it, ok = r.nextJSON()
	}
	if ok {
		r.records++
	}
	return it, ok
}

// stop makes de, at its line, the last item: nothing after it can be read.
func (r *Reader) stop(de *DecodeError) Item {
	r.done, r.stoppedAt, r.stopRule = true, de.Line, de.RuleID
	return Item{Line: de.Line, Err: de}
}

func (r *Reader) nextJSON() (Item, bool) {
	for {
		data, tooLong, err := r.readLine()
		if err != nil && err != io.EOF {
			line := r.line
			if data == nil && !tooLong {
				line++ // it broke before the next line began
			}
			return r.stop(&DecodeError{Line: line, RuleID: RuleRead, Message: "submission could not be read", err: err}), true
		}
		atEOF := err == io.EOF
		if atEOF {
			r.done = true
			if data == nil && !tooLong {
				return Item{}, false
			}
		}
		if tooLong {
			return Item{Line: r.line, Err: TooLong(r.line, 0)}, true
		}
		if r.line == 1 {
			data = bytes.TrimPrefix(data, utf8BOM)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			if atEOF {
				return Item{}, false
			}
			continue
		}
		rec, d, derr := decodeJSON(data, r.fallback)
		if derr != nil {
			derr.Line = r.line
			if atEOF && derr.RuleID == RuleJSON {
				// A file cut short in transfer ends in a partial line.
				derr.Message += "; it is the last line and has no line ending: the submission may have been cut short"
			}
			return Item{Line: r.line, Dataset: d, Err: derr}, true
		}
		return Item{Line: r.line, Record: rec, Dataset: d}, true
	}
}

// readLine reads the next line without its line ending. data is nil at the
// end of input. The slice is only valid until the next call. A line over
// MaxLineBytes is consumed and reported as tooLong, without keeping it.
func (r *Reader) readLine() (data []byte, tooLong bool, err error) {
	r.long = r.long[:0]
	size := 0
	for {
		frag, ferr := r.br.ReadSlice('\n')
		size += len(frag)
		if ferr == bufio.ErrBufferFull {
			if !tooLong {
				if size > MaxLineBytes+2 {
					tooLong, r.long = true, r.long[:0]
				} else {
					r.long = append(r.long, frag...)
				}
			}
			continue
		}
		if size == 0 && ferr != nil {
			return nil, false, ferr
		}
		r.line++
		if tooLong {
			return nil, true, ferr
		}
		// The common case: the whole line is in the bufio buffer, no copy.
		if len(r.long) == 0 {
			data = frag
		} else {
			data = append(r.long, frag...)
			r.long = data
		}
		data = bytes.TrimSuffix(data, []byte{'\n'})
		data = bytes.TrimSuffix(data, []byte{'\r'})
		if len(data) > MaxLineBytes {
			return nil, true, ferr
		}
		if data == nil {
			data = []byte{}
		}
		return data, false, ferr
	}
}

// read is the next encoding/csv Read, or the one made ahead.
func (r *Reader) read() csvRead {
	if a := r.ahead; a != nil {
		r.ahead = nil
		return *a
	}
	r.lc.rowStart = r.lc.read
	row, err := r.cr.Read()
	var pe *csv.ParseError
	switch {
	case err == nil:
		line, _ := r.cr.FieldPos(0)
		r.csvLine = line + int(lineBreaks(row))
		return csvRead{row: row, line: line}
	case errors.As(err, &pe):
		r.csvLine = pe.Line
	case err != io.EOF:
		// A read error: it struck after the last line parsed.
		return csvRead{line: r.csvLine + 1, err: err}
	}
	return csvRead{err: err}
}

func (r *Reader) nextCSV() (Item, bool) {
	next := r.read()
	row, err := next.row, next.err
	if err == io.EOF {
		r.done = true
		return Item{}, false
	}
	if err != nil {
		// encoding/csv wraps only syntax errors in a ParseError, and reads
		// on after one; an error of the underlying reader comes bare.
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return r.parseError(pe), true
		}
		if errors.Is(err, errRowTooLong) {
			return r.stop(&DecodeError{Line: int64(next.line), RuleID: RuleTooLong, Message: fmt.Sprintf(
				"the row from this line runs past the %d-byte record limit, so most likely a quote opens on it and is never closed; "+
					"the rest of the submission could not be read as rows: check the quotes on this line and send the rows from it again",
				limits.MaxRecordBytes)}), true
		}
		return r.stop(&DecodeError{Line: int64(next.line), RuleID: RuleRead, Message: "submission could not be read", err: err}), true
	}
	line := int64(next.line)
	// No field holds a line break, so a cell with one is a quote opened and
	// closed lines later: the rows in between would otherwise vanish into
	// this one, and perhaps pass as a record.
	if breaks := lineBreaks(row); breaks > 0 {
		return Item{Line: line, Err: &DecodeError{Line: line, RuleID: RuleCSV, Message: fmt.Sprintf(
			"a quoted cell holds a line break, so this row runs from line %d to line %d; no field holds a line break, "+
				"so most likely a quote left open took in the rows after it: check the quotes on line %d", line, line+breaks, line)}}, true
	}
	if len(row) != len(r.cols) {
		return Item{Line: line, Err: &DecodeError{Line: line, RuleID: RuleColumns, Message: fmt.Sprintf("row has %d columns; the header has %d", len(row), len(r.cols))}}, true
	}
	// As for a JSON line: text that is not UTF-8 cannot be carried (protobuf
	// strings must be UTF-8) and is not silently repaired.
	for _, cell := range row {
		if !utf8.ValidString(cell) {
			return Item{Line: line, Err: &DecodeError{Line: line, RuleID: RuleCSV, Message: "row is not valid UTF-8 text"}}, true
		}
	}
	var buf [maxEntries]entry
	entries := buf[:0]
	for i, cell := range row {
		// An empty cell is no value: CSV has a column for every field, and
		// a column that does not apply to this row's dataset is left empty.
		if strings.TrimSpace(cell) == "" {
			continue
		}
		entries = append(entries, entry{f: r.cols[i], name: r.header[i], raw: cell, kind: valText})
	}
	rec, d, derr := decodeEntries(entries, r.fallback)
	if derr != nil {
		derr.Line = line
		return Item{Line: line, Dataset: d, Err: derr}, true
	}
	return Item{Line: line, Record: rec, Dataset: d}, true
}

// parseError is the item of a row encoding/csv could not parse. A quote
// opened and not closed on its own line takes in the lines after it: the
// error says which, and when the quote is never closed, reading stops there,
// since nothing after it can be told apart as rows.
func (r *Reader) parseError(pe *csv.ParseError) Item {
	start, end := int64(pe.StartLine), int64(pe.Line)
	de := &DecodeError{Line: start, RuleID: RuleCSV, Message: "row cannot be parsed: " + pe.Err.Error()}
	if !errors.Is(pe.Err, csv.ErrQuote) || end <= start {
		return Item{Line: start, Err: de}
	}
	// Read one row ahead to learn whether the quote ran to the end. The row
	// is kept for the next call, so no row is read twice or decoded here.
	if next := r.read(); next.err != io.EOF {
		next.row = slices.Clone(next.row) // the csv.Reader reuses its slice
		r.ahead = &next
		de.Message = fmt.Sprintf("a quoted cell opens on this line and is not closed until line %d: lines %d to %d were read as this one row, "+
			"which cannot be parsed, so the rows on lines %d to %d were not read; check the quotes on line %d", end, start, end, start+1, end, start)
		return Item{Line: start, Err: de}
	}
	de.Message = fmt.Sprintf("a quoted cell opens on this line and is never closed: lines %d to %d, the rest of the submission, "+
		"could not be read as rows; close the quote and send the rows from line %d again", start, end, start)
	return r.stop(de)
}

// lineBreaks counts the line breaks inside the cells of a row.
func lineBreaks(row []string) int64 {
	var n int64
	for _, cell := range row {
		n += int64(strings.Count(cell, "\n"))
	}
	return n
}
