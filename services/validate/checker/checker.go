// Package checker is the offline checker a provider runs before sending a
// file: it reads the file as ingest would, validates every record exactly as
// the validate stage does (the same stage code, fed the same messages), and
// builds the same submission report, without sending anything anywhere.
package checker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/validate"
	"github.com/dmic-nhs/dmic/services/validate/spec"
)

// Format of the file.
type Format int

// Formats: NDJSON (one JSON object per line) or CSV with a header row.
const (
	NDJSON Format = iota
	CSV
)

// Options say how to read and judge a file.
type Options struct {
	// Dataset of records that do not name their own (as ingest's dataset parameter).
	Dataset dmicv1.Dataset
	Source  dmicv1.Source
	// Submitter as ingest's submitter parameter; empty: each record's provider code.
	Submitter string
	Format    Format
	// Received is the day the file would be received: it picks the
	// specification version in effect (default: now, by the validator's
	// clock).
	Received time.Time
	// Limit is how many failing records the report lists (default 100).
	Limit int
}

// Check reads every record of in and returns the submission report.
func Check(ctx context.Context, v *spec.Validator, in io.Reader, o Options) (*validationv1.SubmissionReport, error) {
	if o.Received.IsZero() {
		o.Received = v.Clock().Now()
	}
	o.Received = o.Received.UTC()
	if o.Source == dmicv1.Source_SOURCE_UNSPECIFIED {
		o.Source = dmicv1.Source_SOURCE_PROVIDER
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	o.Submitter = strings.ToUpper(strings.TrimSpace(o.Submitter))
	// The file's digest is what the platform gives the same file sent over
	// HTTP, so that a provider can match a report to the file.
	digest := sha256.New()
	in = io.TeeReader(in, digest)
	var rd *record.Reader
	switch o.Format {
	case NDJSON:
		rd = record.NewNDJSONReader(in, o.Dataset)
	case CSV:
		var err error
		if rd, err = record.NewCSVReader(in, o.Dataset); err != nil {
			return nil, fmt.Errorf("CSV: %w", err)
		}
	default:
		return nil, fmt.Errorf("format %d: not NDJSON or CSV", o.Format)
	}

	stage := validate.New(v)
	b := dqreport.NewBuilder(o.Limit)
	first := record.NewFirstLines()
	receipt := &validationv1.SubmissionReceipt{SubmissionId: offline, Dataset: o.Dataset, Source: o.Source, SubmitterOrgCode: o.Submitter}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		it, ok := rd.Next()
		if !ok {
			break
		}
		receipt.Records++
		if it.Err != nil {
			var de *record.DecodeError
			if errors.As(it.Err, &de) && de.RuleID == record.RuleRead {
				return nil, fmt.Errorf("read: %w", it.Err)
			}
			receipt.Refused++
			b.Add(refused(it, o))
			continue
		}
		outcome, err := judge(ctx, stage, it, o, first)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", it.Line, err)
		}
		b.Add(outcome)
	}
	if _, err := io.Copy(io.Discard, in); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	receipt.ContentSha256 = hex.EncodeToString(digest.Sum(nil))
	b.AddReceipt(receipt)
	rep := b.Report()
	// Nothing was sent: the report has no submission id, state or attempts.
	rep.SubmissionId, rep.State, rep.Attempts = "", validationv1.SubmissionState_SUBMISSION_STATE_UNSPECIFIED, 0
	// As ingest answers a submission: how much of the file was read.
	rep.Read = rd.Summary().Proto()
	return rep, nil
}

// offline names the one submission of an offline check, on the messages fed
// to the validate stage and on the receipt, so that the report's builder sees
// the receipt and the verdicts as one submission's; the report leaves it out.
const offline = "offline-check"

// refused is ingest's verdict on a line it cannot decode.
func refused(it record.Item, o Options) *validationv1.ValidationOutcome {
	out := &validationv1.ValidationOutcome{
		Header:   &dmicv1.EnvelopeHeader{Dataset: o.Dataset, Source: o.Source, SubmitterOrgCode: o.Submitter, SubmissionId: offline, LineNumber: it.Line},
		Outcome:  validationv1.Outcome_OUTCOME_REJECTED,
		Failures: []*dmicv1.Failure{record.FailureOf(it.Err)},
		Stage:    "ingest", ProviderCode: o.Submitter, ValidatedTime: timestamppb.New(o.Received),
	}
	var de *record.DecodeError
	if errors.As(it.Err, &de) {
		out.RecordId = de.RecordID
	}
	return out
}

// judge runs the validate stage on the message ingest would have produced.
func judge(ctx context.Context, stage *validate.Stage, it record.Item, o Options, first *record.FirstLines) (*validationv1.ValidationOutcome, error) {
	submitter := envelope.Submitter(o.Submitter, o.Source, it.Record)
	body, err := record.EncodeJSON(it.Dataset, it.Record)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	key := envelope.RecordKey(submitter, o.Source, it.Dataset, it.Record)
	raw := envelope.Raw{Dataset: it.Dataset, Source: o.Source, Submitter: submitter, SubmissionID: offline, Received: o.Received, Line: it.Line}
	if it.Record.GetCdsUniqueIdentifier() != "" { // as ingest: a duplicate is a second line with the same record key
		raw.DuplicateOfLine = first.See(it.Dataset, key, it.Line)
	}
	m := pipeline.Message{Topic: topics.Raw, Offset: it.Line, Value: body, Headers: raw.Headers(), Time: o.Received, Key: []byte(key)}
	outs, err := stage.Process(ctx, m)
	var rej *pipeline.Rejection
	if errors.As(err, &rej) {
		outs, err = rej.Also, nil
	}
	if err != nil {
		return nil, err
	}
	for _, out := range outs {
		if out.Topic == topics.ValidationOutcomes {
			v := &validationv1.ValidationOutcome{}
			if err := proto.Unmarshal(out.Value, v); err != nil {
				return nil, fmt.Errorf("the validate stage's verdict: %w", err)
			}
			return v, nil
		}
	}
	return nil, errors.New("the validate stage gave no verdict")
}
