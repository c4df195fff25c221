package record

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// EncodeJSON writes a record as canonical provider JSON: one flat object,
// "dataset" first, then the fields in the format's fixed order, empty fields
// left out. DecodeJSON of the result gives the record back.
func EncodeJSON(d dmicv1.Dataset, r *dmicv1.CommissioningRecord) ([]byte, error) {
	return AppendJSON(make([]byte, 0, 512), d, r)
}

// AppendJSON is EncodeJSON appending to dst, for callers that reuse a buffer.
// An unspecified d means the dataset of the record's activity.
func AppendJSON(dst []byte, d dmicv1.Dataset, r *dmicv1.CommissioningRecord) ([]byte, error) {
	if r == nil {
		return dst, fmt.Errorf("encode record: nil record")
	}
	has := DatasetOf(r)
	if d == dmicv1.Dataset_DATASET_UNSPECIFIED {
		d = has
	}
	if !knownDataset(d) {
		return dst, fmt.Errorf("encode record %s: unknown dataset %d", safeName(r.GetCdsUniqueIdentifier()), d)
	}
	if has != dmicv1.Dataset_DATASET_UNSPECIFIED && has != d {
		return dst, fmt.Errorf("encode record %s: record holds %s activity, not %s", safeName(r.GetCdsUniqueIdentifier()), DatasetName(has), DatasetName(d))
	}
	dst = append(dst, `{"dataset":"`...)
	dst = append(dst, DatasetName(d)...)
	dst = append(dst, '"')
	for _, f := range fields.order[d] {
		switch f.kind {
		case kindDataset:
		case kindUpdateType:
			switch r.GetUpdateType() {
			case dmicv1.UpdateType_UPDATE_TYPE_UNSPECIFIED:
				// Not sent: left out, so the record reads back the same.
			case dmicv1.UpdateType_UPDATE_TYPE_REPLACE:
				dst = append(dst, `,"cds_update_type":"9"`...)
			case dmicv1.UpdateType_UPDATE_TYPE_DELETE:
				dst = append(dst, `,"cds_update_type":"1"`...)
			default:
				return dst, fmt.Errorf("encode record %s: unknown update type %d", safeName(r.GetCdsUniqueIdentifier()), r.GetUpdateType())
			}
		case kindString:
			if v := f.getStr[d](r); v != "" {
				dst = append(dst, f.key...)
				dst = appendString(dst, v)
			}
		case kindInt:
			if v := f.getInt[d](r); v != 0 {
				dst = append(dst, f.key...)
				dst = strconv.AppendInt(dst, v, 10)
			}
		}
	}
	return append(dst, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; U+2028 and U+2029 are escaped so a line stays one line
// for every JSON lines reader.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
