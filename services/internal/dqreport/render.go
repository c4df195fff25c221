package dqreport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// WriteJSON writes r as protobuf JSON with the proto field names, every field
// present, indented two spaces, and a final newline. The output is the same
// bytes for the same report: protojson deliberately varies its whitespace
// between builds, so it is re-indented with encoding/json, which discards the
// insignificant whitespace.
func WriteJSON(w io.Writer, r *validationv1.SubmissionReport) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(r)
	if err != nil {
		return fmt.Errorf("marshal submission report %q: %w", r.GetSubmissionId(), err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("indent submission report %q: %w", r.GetSubmissionId(), err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// WriteText writes r for a person: the submission, the counts, the records
// failing each rule, and the first failing records with the rules they broke.
// It prints rule ids, field names and the failures' messages, which by rule
// never hold a field's value; a report holds no value to print anyway.
func WriteText(w io.Writer, r *validationv1.SubmissionReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }

	sub := r.GetSubmissionId()
	if sub == "" {
		sub = "(offline check: nothing was submitted)"
	}
	p("Submission:\t%s\n", clean(sub))
	if line := stateLine(r); line != "" {
		p("State:\t%s\n", line)
	}
	if k := r.GetIdempotencyKey(); k != "" {
		p("Idempotency key:\t%s\n", clean(k))
	}
	if d := r.GetContentSha256(); d != "" {
		p("Content SHA-256:\t%s\n", clean(d))
	}
	p("Dataset:\t%s\n", orDash(record.DatasetName(r.GetDataset())))
	p("Submitter:\t%s\n", orDash(clean(r.GetSubmitterOrgCode())))
	if t := r.GetReceivedTime(); t != nil {
		p("Received:\t%s\n", t.AsTime().UTC().Format(time.RFC3339))
	}
	p("Records:\t%s\n", recordsLine(r))
	if rd := r.GetRead(); rd != nil {
		p("Read:\t%s\n", readLine(rd))
	}
	if len(r.GetSpecVersions()) > 0 {
		p("Specification:\t%s\n", clean(strings.Join(r.GetSpecVersions(), ", ")))
	}
	p("\n")
	p("Accepted:\t%d\n", r.GetAccepted())
	p("Warned:\t%d\t(passed with a data-quality warning)\n", r.GetWarned())
	p("Rejected:\t%d\t(not loaded)\n", r.GetRejected())
	if err := tw.Flush(); err != nil {
		return err
	}

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p = func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	if len(r.GetRules()) == 0 {
		p("\nNo rule was broken.\n")
		return tw.Flush()
	}
	p("\nRecords failing each rule:\n")
	p("RULE\tFIELD\tSEVERITY\tRECORDS\n")
	for _, rc := range r.GetRules() {
		p("%s\t%s\t%s\t%d\n", clean(rc.GetRuleId()), orDash(clean(rc.GetField())), SeverityName(rc.GetSeverity()), rc.GetRecords())
	}

	failing := r.GetWarned() + r.GetRejected()
	shown := len(r.GetFailingRecords())
	switch {
	case shown == 0:
		p("\nFailing records: %d (none listed)\n", failing)
	case int64(shown) < failing:
		p("\nFirst %d of %d failing records:\n", shown, failing)
	default:
		p("\nFailing records:\n")
	}
	if shown > 0 {
		p("LINE\tRECORD ID\tOUTCOME\tRULE\tFIELD\tSEVERITY\tMESSAGE\n")
	}
	for _, fr := range r.GetFailingRecords() {
		line := "-"
		if fr.GetLineNumber() > 0 {
			line = fmt.Sprint(fr.GetLineNumber())
		}
		lead := fmt.Sprintf("%s\t%s\t%s", line, orDash(clean(fr.GetRecordId())), OutcomeName(fr.GetOutcome()))
		if len(fr.GetFailures()) == 0 {
			p("%s\t-\t-\t-\t-\n", lead)
		}
		for i, f := range fr.GetFailures() {
			if i > 0 {
				lead = "\t\t"
			}
			p("%s\t%s\t%s\t%s\t%s\n", lead, clean(f.GetRuleId()), orDash(clean(f.GetField())), SeverityName(f.GetSeverity()), clean(f.GetMessage()))
		}
	}
	return tw.Flush()
}

// stateLine says where a submission is, and what a provider should do about
// it; empty for the offline checker.
func stateLine(r *validationv1.SubmissionReport) string {
	switch r.GetState() {
	case validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING:
		return "receiving: ingest is still storing it"
	case validationv1.SubmissionState_SUBMISSION_STATE_RECEIVED:
		if n := r.GetAttempts(); n > 1 {
			return fmt.Sprintf("received (sent %d times: each resend replaced the results of the earlier attempts)", n)
		}
		return "received"
	case validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED:
		return "abandoned: it was not stored to the end and is not counted; send the same file again (with the same idempotency key, if it had one)"
	case validationv1.SubmissionState_SUBMISSION_STATE_SUPERSEDED:
		return "superseded by " + clean(r.GetSupersededBy()) + ", sent later with the same idempotency key: not counted"
	}
	return ""
}

func recordsLine(r *validationv1.SubmissionReport) string {
	switch {
	case r.GetState() == validationv1.SubmissionState_SUBMISSION_STATE_ABANDONED:
		return fmt.Sprintf("%d validated before the submission was abandoned", r.GetValidated())
	case r.GetComplete():
		return fmt.Sprintf("%d, all validated", r.GetRecords())
	case r.GetSubmissionId() != "":
		return fmt.Sprintf("%d, %d validated so far: the report is not complete yet", r.GetRecords(), r.GetValidated())
	default:
		return fmt.Sprintf("%d validated", r.GetValidated())
	}
}

// readLine says how much of the file was read, and where reading stopped.
func readLine(rd *dmicv1.ReadSummary) string {
	s := fmt.Sprintf("%d records from %d lines", rd.GetRecords(), rd.GetLines())
	if rd.GetStoppedAtLine() == 0 {
		return s + ", to the end of the file"
	}
	return fmt.Sprintf("%s; reading STOPPED at line %d (%s): nothing after it was read as records", s, rd.GetStoppedAtLine(), clean(rd.GetStoppedByRule()))
}

// clean keeps a string on one table cell: control characters (tabs, line
// breaks) would break the layout.
func clean(s string) string {
	return strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
