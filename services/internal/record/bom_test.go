package record

import (
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// TestCSVByteOrderMarkBeforeAQuotedHeader: a CSV file saved with a byte
// order mark and every cell quoted (a spreadsheet's "CSV UTF-8", PowerShell's
// Export-Csv) is read like the same file without the mark. The mark was
// trimmed from the first column's name only after parsing, so a quoted first
// cell was a bare quote and the whole file was refused (DEC-CSV-HEADER);
// found by TestGraderDQ.
func TestCSVByteOrderMarkBeforeAQuotedHeader(t *testing.T) {
	for name, body := range map[string]string{
		"quoted, CRLF":   "\xEF\xBB\xBF\"cds_unique_identifier\",\" Provider_Code \"\r\n\"BRXX1\",\"RXX\"\r\n",
		"unquoted, LF":   "\xEF\xBB\xBFcds_unique_identifier,provider_code\nBRXX1,RXX\n",
		"no mark at all": "\"cds_unique_identifier\",\"provider_code\"\r\n\"BRXX1\",\"RXX\"\r\n",
	} {
		rd, err := NewCSVReader(strings.NewReader(body), dmicv1.Dataset_DATASET_OUTPATIENT)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		it, ok := rd.Next()
		if !ok || it.Err != nil || it.Line != 2 || it.Record.GetCdsUniqueIdentifier() != "BRXX1" || it.Record.GetProviderCode() != "RXX" {
			t.Errorf("%s: first row %+v (ok %v), want BRXX1 of RXX at line 2", name, it, ok)
		}
		if _, more := rd.Next(); more {
			t.Errorf("%s: a second row", name)
		}
		if s := rd.Summary(); s.Lines != 2 || s.Records != 1 {
			t.Errorf("%s: read %+v, want 2 lines, 1 record", name, s)
		}
	}
}
