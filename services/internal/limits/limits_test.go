package limits_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/limits"
)

// TestLimitsAgree is the order the whole pipeline relies on (package doc).
func TestLimitsAgree(t *testing.T) {
	chain := []struct {
		name string
		v    int
	}{
		{"MaxRecordBytes", limits.MaxRecordBytes},
		{"MaxMessageBytes", limits.MaxMessageBytes},
		{"WriterBatchBytes", limits.WriterBatchBytes},
		{"TopicMaxMessageBytes", limits.TopicMaxMessageBytes},
	}
	for i := 1; i < len(chain); i++ {
		if chain[i-1].v >= chain[i].v {
			t.Errorf("%s (%d) must be below %s (%d)", chain[i-1].name, chain[i-1].v, chain[i].name, chain[i].v)
		}
	}
	// Room for a record's envelope: headers, key and protobuf framing.
	if limits.MaxMessageBytes-limits.MaxRecordBytes < 64<<10 {
		t.Errorf("MaxMessageBytes leaves less than 64 KiB above MaxRecordBytes for the envelope")
	}
	// A gRPC message carries a record over the limit, and its framing, so
	// that it is refused by line rather than by the transport.
	if limits.MaxGRPCMessageBytes < limits.MaxRecordBytes+64<<10 {
		t.Errorf("MaxGRPCMessageBytes (%d) leaves no room for a record over MaxRecordBytes", limits.MaxGRPCMessageBytes)
	}
	// A submission holds at least one record of the largest size.
	if limits.MaxSubmissionBytes < limits.MaxRecordBytes || limits.MaxSubmissionRecords < 1 {
		t.Errorf("the submission caps are below one record")
	}
	if limits.DeadLetterExcerptBytes*4 > limits.MaxMessageBytes-limits.MaxRecordBytes {
		t.Errorf("a dead letter's excerpt is too large to leave room for its failures")
	}
}

func TestExcerpt(t *testing.T) {
	for _, n := range []int{0, limits.DeadLetterExcerptBytes - 1, limits.DeadLetterExcerptBytes, limits.DeadLetterExcerptBytes + 1, limits.MaxRecordBytes} {
		b := bytes.Repeat([]byte("x"), n)
		got, cut := limits.Excerpt(b)
		if want := min(n, limits.DeadLetterExcerptBytes); len(got) != want || cut != (n > limits.DeadLetterExcerptBytes) {
			t.Errorf("%d bytes: excerpt of %d, cut %v; want %d, cut %v", n, len(got), cut, want, n > limits.DeadLetterExcerptBytes)
		}
	}
}

// TestOperationsDocumentsTheLimits keeps docs/operations.md's table in step.
func TestOperationsDocumentsTheLimits(t *testing.T) {
	b, err := os.ReadFile("../../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name, v := range map[string]int{
		"MaxRecordBytes": limits.MaxRecordBytes, "MaxMessageBytes": limits.MaxMessageBytes,
		"WriterBatchBytes": limits.WriterBatchBytes, "TopicMaxMessageBytes": limits.TopicMaxMessageBytes,
		"DeadLetterExcerptBytes": limits.DeadLetterExcerptBytes,
		"MaxSubmissionBytes":     limits.MaxSubmissionBytes,
		"MaxSubmissionRecords":   limits.MaxSubmissionRecords,
		"MaxGRPCMessageBytes":    limits.MaxGRPCMessageBytes,
	} {
		if !strings.Contains(doc, "`"+name+"`") || !strings.Contains(doc, group(v)) {
			t.Errorf("docs/operations.md does not give %s as %s", name, group(v))
		}
	}
}

// group writes n with thousands separators, as the docs do.
func group(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
