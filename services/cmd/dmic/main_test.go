package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
)

func TestValidateExitStatusAndReport(t *testing.T) {
	b, err := os.ReadFile("../../internal/record/testdata/examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ndjson")
	bad := filepath.Join(dir, "bad.ndjson")
	if err := os.WriteFile(good, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, append(append([]byte{}, b...), []byte("{not json\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{"clean file", []string{"validate", "--reference-dir", "../../../reference/sample", good}, 0, "No rule was broken", ""},
		{"a rejected line", []string{"validate", bad}, 1, "DEC-JSON", ""},
		{"json output", []string{"validate", "-o", "json", bad}, 1, `"rule_id": "DEC-JSON"`, ""},
		{"standard input", []string{"validate", "--dataset", "apc", "-"}, 0, "Records:", ""},
		{"no command", nil, 2, "", "usage"},
		{"every flag problem at once", []string{"validate", "--dataset", "dental", "-o", "xml", "--limit", "0", good, bad}, 2, "",
			"--dataset"},
		{"missing file", []string{"validate", filepath.Join(dir, "none.ndjson")}, 2, "", "none.ndjson"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), clocktest.Clock(t), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.err) {
				t.Errorf("stdout %q / stderr %q, want %q / %q", stdout.String(), stderr.String(), tc.out, tc.err)
			}
		})
	}
	// All the flag problems are reported together.
	var stderr bytes.Buffer
	run(context.Background(), clocktest.Clock(t), []string{"validate", "--dataset", "dental", "-o", "xml", "--limit", "0", good, bad}, nil, &bytes.Buffer{}, &stderr)
	for _, want := range []string{"--dataset", "-o", "--limit", "exactly one FILE"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q does not name %s", stderr.String(), want)
		}
	}
}

// The offline checker says, as the platform's answer does, how much of a CSV
// was read: a quote left open in row 2 of 4 stops it at line 3, and the
// report and the exit status say so.
func TestValidateSaysWhereACSVStoppedBeingRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "attendances.csv")
	csv := "cds_unique_identifier,provider_code,appointment_date\n" +
		"BRJ71,RJ7,2026-01-02\n" +
		"BRJ72,\"RJ7,2026-01-02\n" + // the quote never closes
		"BRJ73,RJ7,2026-01-02\n" +
		"BRJ74,RJ7,2026-01-02\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), clocktest.Clock(t), []string{"validate", "--dataset", "outpatient", path}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1 (a row rejected)\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"Read:", "2 records from 5 lines; reading STOPPED at line 3 (DEC-CSV)", "lines 3 to 5"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("text report does not say %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	run(context.Background(), clocktest.Clock(t), []string{"validate", "--dataset", "outpatient", "-o", "json", path}, nil, &stdout, &stderr)
	for _, want := range []string{`"stopped_at_line": "3"`, `"stopped_by_rule": "DEC-CSV"`, `"lines": "5"`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("JSON report does not hold %s:\n%s", want, stdout.String())
		}
	}
}
