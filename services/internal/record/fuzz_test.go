package record

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodeJSON: decoding never panics, and whatever decodes encodes to
// JSON that decodes to an equal record.
func FuzzDecodeJSON(f *testing.F) {
	for _, line := range readExamples(f) {
		f.Add(line, uint8(0))
	}
	f.Add([]byte(`{"nhs_number":9.434765919e9,"price_pence":"1"}`), uint8(4))
	f.Add([]byte(`{"site_code":"a\u2028b\"\\","cds_update_type":1}`), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, fb uint8) {
		fallback := dmicv1.Dataset(fb % 6)
		r, d, err := DecodeJSON(data, fallback)
		// The scanner checks JSON grammar itself: it must agree with
		// encoding/json on which records are JSON objects.
		de, _ := err.(*DecodeError)
		rejectedAsJSON := de != nil && de.RuleID == RuleJSON
		isObject := json.Valid(data) && utf8.Valid(data) && bytes.TrimLeft(data, " \t\r\n")[0] == '{'
		if rejectedAsJSON == isObject {
			t.Fatalf("json.Valid and utf8 say object=%v, decoder says %v", isObject, err)
		}
		if err != nil {
			de, ok := err.(*DecodeError)
			if !ok || de.RuleID == "" || de.Message == "" {
				t.Fatalf("error %#v is not a complete *DecodeError", err)
			}
			if de.Field != "" && strings.Contains(de.Message, de.Field) && len(de.Field) > 12 {
				t.Fatalf("message repeats provider text: %q", de.Message)
			}
			return
		}
		if !knownDataset(d) || DatasetOf(r) != d {
			t.Fatalf("decoded dataset %v, record activity %v", d, DatasetOf(r))
		}
		out, err := EncodeJSON(d, r)
		if err != nil {
			t.Fatalf("encode of a decoded record: %v", err)
		}
		back, d2, err := DecodeJSON(out, dmicv1.Dataset_DATASET_UNSPECIFIED)
		if err != nil {
			t.Fatalf("decode of %s: %v", out, err)
		}
		if d2 != d || !proto.Equal(back, r) {
			t.Fatalf("round trip changed the record\nfirst  %v\nsecond %v", r, back)
		}
		if _, err := proto.Marshal(r); err != nil {
			t.Fatalf("decoded record cannot be marshalled: %v", err)
		}
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	lines := readExamples(b)
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	b.SetBytes(size / int64(len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := DecodeJSON(lines[i%len(lines)], dmicv1.Dataset_DATASET_UNSPECIFIED); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeJSON(b *testing.B) {
	lines := readExamples(b)
	recs := make([]*dmicv1.CommissioningRecord, len(lines))
	for i, l := range lines {
		r, _, err := DecodeJSON(l, 0)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = r
	}
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var err error
		if buf, err = AppendJSON(buf[:0], 0, recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCSVReader: reading a CSV submission never panics; every row is a
// record or a complete DecodeError; line numbers only grow; and every record
// read encodes to JSON that decodes to an equal record.
func FuzzCSVReader(f *testing.F) {
	examples, err := os.ReadFile("testdata/examples.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(examples, uint8(0))
	f.Add([]byte("cds_unique_identifier,provider_code,appointment_date\nB1,RJ7,2026-01-02\n\"B2,RJ7\n"), uint8(2))
	f.Add([]byte("dataset,cds_unique_identifier,nhs_number\napc,B1,9434765919,extra\napc,B2\n"), uint8(0))
	f.Add([]byte("dataset,dataset\napc,apc\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, fb uint8) {
		rd, err := NewCSVReader(bytes.NewReader(data), dmicv1.Dataset(fb%6))
		if err != nil {
			if de, ok := err.(*DecodeError); !ok || de.RuleID == "" || de.Message == "" {
				t.Fatalf("header error %#v is not a complete *DecodeError", err)
			}
			return
		}
		var last int64
		n := 0
		defer func() {
			// Every item is counted, and reading stops only at an item.
			if sum := rd.Summary(); sum.Records != int64(n) || sum.StoppedAt > last || sum.Lines < last {
				t.Errorf("summary %+v after %d items, the last on line %d", sum, n, last)
			}
		}()
		for ; ; n++ {
			it, ok := rd.Next()
			if !ok {
				break
			}
			if n > len(data)+1 {
				t.Fatalf("more items (%d) than bytes (%d): the reader does not advance", n, len(data))
			}
			if it.Line < last {
				t.Fatalf("line %d after line %d", it.Line, last)
			}
			last = it.Line
			if it.Err != nil {
				if de, ok := it.Err.(*DecodeError); !ok || de.RuleID == "" || de.Message == "" {
					t.Fatalf("line %d: error %#v is not a complete *DecodeError", it.Line, it.Err)
				}
				continue
			}
			out, err := EncodeJSON(it.Dataset, it.Record)
			if err != nil {
				t.Fatalf("line %d: encode of a decoded record: %v", it.Line, err)
			}
			back, d, err := DecodeJSON(out, dmicv1.Dataset_DATASET_UNSPECIFIED)
			if err != nil || d != it.Dataset || !proto.Equal(back, it.Record) {
				t.Fatalf("line %d: round trip: %v\nfirst  %v\nsecond %v", it.Line, err, it.Record, back)
			}
		}
	})
}
