package record

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/limits"
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
// bad record never stops the good ones after it.
type Reader struct {
	fallback dmicv1.Dataset
	done     bool

	// JSON lines.
	br   *bufio.Reader
	line int64
	long []byte

	// CSV.
	cr     *csv.Reader
	cols   []*field
	header []string
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
	cr := csv.NewReader(r)
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
		return nil, &DecodeError{Line: 1, RuleID: RuleRead, Message: "submission could not be read", err: err}
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], string(utf8BOM))
	}
	if !knownDataset(fallback) {
		fallback = dmicv1.Dataset_DATASET_UNSPECIFIED
	}
	rd := &Reader{fallback: fallback, cr: cr, cols: make([]*field, len(header)), header: make([]string, len(header))}
	seen := make(map[string]int, len(header))
	hasDataset := false
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if name == "" {
			return nil, &DecodeError{Line: 1, RuleID: RuleCSVHeader, Message: fmt.Sprintf("column %d has no name", i+1)}
		}
		f := fields.byName[name]
		if f == nil {
			return nil, &DecodeError{Line: 1, Field: safeName(name), RuleID: RuleCSVHeader, Message: fmt.Sprintf("column %d is not a field of the record format", i+1)}
		}
		if j, dup := seen[name]; dup {
			return nil, &DecodeError{Line: 1, Field: name, RuleID: RuleCSVHeader, Message: fmt.Sprintf("column %d repeats column %d", i+1, j+1)}
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
	if r.cr != nil {
		return r.nextCSV()
	}
	return r.nextJSON()
}

func (r *Reader) nextJSON() (Item, bool) {
	for {
		data, tooLong, err := r.readLine()
		if err != nil && err != io.EOF {
			r.done = true
			return Item{Line: r.line, Err: &DecodeError{Line: r.line, RuleID: RuleRead, Message: "submission could not be read", err: err}}, true
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

func (r *Reader) nextCSV() (Item, bool) {
	row, err := r.cr.Read()
	if err == io.EOF {
		r.done = true
		return Item{}, false
	}
	if err != nil {
		// encoding/csv wraps only syntax errors in a ParseError, and reads
		// on after one; an error of the underlying reader comes bare.
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			line := int64(pe.StartLine)
			return Item{Line: line, Err: &DecodeError{Line: line, RuleID: RuleCSV, Message: "row cannot be parsed: " + pe.Err.Error()}}, true
		}
		r.done = true
		line, _ := r.cr.FieldPos(0)
		return Item{Line: int64(line), Err: &DecodeError{Line: int64(line), RuleID: RuleRead, Message: "submission could not be read", err: err}}, true
	}
	l, _ := r.cr.FieldPos(0)
	line := int64(l)
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
