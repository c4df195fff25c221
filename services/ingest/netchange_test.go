package ingest_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// The CDS unique identifier keys a record for its life, scoped by its
// sender (domain brief §3, Submission protocol [C]: "Upsert keyed on
// (sender, type, CDS UID)"). The national exchange sends every provider's
// records: two providers' records under one identifier are two records,
// neither a duplicate of the other (DUP-001), each with its own record key.
// One provider's record twice in its submission is a duplicate, also from
// the national exchange.
func TestNationalCopiesOfTwoProvidersUnderOneIdentifierAreTwoRecords(t *testing.T) {
	f := newFixture(t)
	ryy := strings.Replace(op("BSAME"), `"provider_code":"RXX"`, `"provider_code":"RYY"`, 1)
	body := op("BSAME") + "\n" + ryy + "\n" + op("BSAME") + "\n"
	code, resp, raw := f.postAs(t, f.national, "dataset=outpatient&source=national", "application/x-ndjson", body)
	if code != http.StatusOK || resp.Accepted != 3 {
		t.Fatalf("status %d: %s", code, raw)
	}
	dup, keys := map[int64]int64{}, map[int64]string{}
	for _, m := range read(t, f.admin, topics.Raw, 3) {
		h, err := envelope.ParseHeaders(kafkapipe.FromKafkaHeaders(m.Headers))
		if err != nil {
			t.Fatal(err)
		}
		dup[h.Line], keys[h.Line] = h.DuplicateOfLine, string(m.Key)
	}
	if want := map[int64]int64{1: 0, 2: 0, 3: 1}; !maps.Equal(dup, want) {
		t.Errorf("duplicate-of by line = %v, want %v", dup, want)
	}
	if want := map[int64]string{1: "X26|outpatient|RXX|BSAME", 2: "X26|outpatient|RYY|BSAME", 3: "X26|outpatient|RXX|BSAME"}; !maps.Equal(keys, want) {
		t.Errorf("raw keys by line = %v, want %v", keys, want)
	}
}

// Bulk replacement (CDS protocol 020) is not supported (docs/architecture.md,
// Not supported yet). A submission that carries its protocol identifier is
// refused, saying so, rather than taken as net change, which would keep
// every record the bulk meant to replace (domain brief §3: bulk replaces
// everything of its group and period).
func TestBulkReplacementIsRefusedSayingSo(t *testing.T) {
	f := newFixture(t)
	line := strings.Replace(op("BRXX1"), `{`, `{"cds_protocol_identifier":"020",`, 1)
	code, resp, raw := f.post(t, "dataset=outpatient", "application/x-ndjson", line+"\n")
	if code != http.StatusOK || resp.Accepted != 0 || resp.Rejected != 1 || len(resp.Results) != 1 {
		t.Fatalf("status %d: %s", code, raw)
	}
	fl := resp.Results[0].GetFailures()
	if len(fl) != 1 || fl[0].GetRuleId() != record.RuleUnknownField || !strings.Contains(fl[0].GetMessage(), "bulk replacement (protocol 020) are not supported") {
		t.Errorf("failures = %v, want %s saying bulk replacement is not supported", fl, record.RuleUnknownField)
	}

	csv := "cds_protocol_identifier,cds_unique_identifier,provider_code\n020,BRXX1,RXX\n"
	code, _, raw = f.post(t, "dataset=outpatient", "text/csv", csv)
	if code != http.StatusBadRequest || !strings.Contains(raw, "net change (010) only") {
		t.Errorf("CSV with a protocol column: status %d: %s, want 400 saying net change only", code, raw)
	}
}
