package checker_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/validate/checker"
)

// dmic validate --source national marks duplicates as ingest does: by the
// record key, in which a national copy's provider scopes its identifier
// (docs/record-format.md, A record's life, exactly). The exchange's copies
// of two providers' records under one identifier are not duplicates; one
// provider's record twice is.
func TestCheckNationalDuplicatesArePerProvider(t *testing.T) {
	apc := strings.SplitN(string(apcLines(t)), "\n", 2)[0]
	rth := strings.Replace(apc, `"provider_code":"RJ7"`, `"provider_code":"RTH"`, 1)
	if rth == apc {
		t.Fatal("could not change the example's provider")
	}
	in := apc + "\n" + rth + "\n" + apc + "\n"
	rep, err := checker.Check(context.Background(), validator(t), bytes.NewReader([]byte(in)),
		checker.Options{Source: dmicv1.Source_SOURCE_NATIONAL, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var dupLines []int64
	for _, f := range rep.FailingRecords {
		for _, x := range f.Failures {
			if x.RuleId == "DUP-001" {
				dupLines = append(dupLines, f.LineNumber)
			}
		}
	}
	if len(dupLines) != 1 || dupLines[0] != 3 {
		t.Errorf("DUP-001 on lines %v, want [3] (line 2 is another provider's record)", dupLines)
	}
}
