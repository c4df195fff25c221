// Package envelope carries a record's metadata on the raw topic, where the
// value is the provider's own JSON and the metadata travels in Kafka headers,
// and builds the typed EnvelopeHeader the later topics carry.
package envelope

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// Kafka header names on the raw topic. All are optional for a producer writing
// JSON straight to the raw topic; see docs/topics.md for the defaults.
const (
	HeaderDataset     = "dmic-dataset"
	HeaderSource      = "dmic-source"
	HeaderSubmitter   = "dmic-submitter"
	HeaderSubmission  = "dmic-submission-id"
	HeaderReceived    = "dmic-received-time"
	HeaderLine        = "dmic-line"
	HeaderTraceparent = "traceparent"
	// HeaderDuplicateOf names the earlier line of the same submission that
	// carried the same record id. Ingest sets it, because only ingest sees a
	// whole submission; validate applies the specification's duplicate rule.
	HeaderDuplicateOf = "dmic-duplicate-of-line"
)

// NationalSubmitter is the organisation code used for the national exchange
// (SUS) copy when the submitter is not named.
const NationalSubmitter = "X26"

// Submitter is who a record counts as sent by: the submitter the submission
// names (already upper-case), else the national exchange for a national copy,
// else the record's own provider.
func Submitter(named string, src dmicv1.Source, r *dmicv1.CommissioningRecord) string {
	switch {
	case named != "":
		return named
	case src == dmicv1.Source_SOURCE_NATIONAL:
		return NationalSubmitter
	}
	return strings.ToUpper(r.GetProviderCode())
}

// Raw is the metadata of one raw-topic message.
type Raw struct {
	Dataset      dmicv1.Dataset
	Source       dmicv1.Source
	Submitter    string
	SubmissionID string
	Received     time.Time
	Line         int64
	Traceparent  string
	// DuplicateOfLine is the first line of this submission with the same
	// dataset and record id, when this record repeats it; 0 otherwise.
	DuplicateOfLine int64
}

// Headers encodes r as Kafka headers.
func (r Raw) Headers() []pipeline.Header {
	hs := make([]pipeline.Header, 0, 8)
	add := func(k, v string) {
		if v != "" {
			hs = append(hs, pipeline.Header{Key: k, Value: []byte(v)})
		}
	}
	add(HeaderDataset, record.DatasetName(r.Dataset))
	add(HeaderSource, SourceName(r.Source))
	add(HeaderSubmitter, r.Submitter)
	add(HeaderSubmission, r.SubmissionID)
	if !r.Received.IsZero() {
		add(HeaderReceived, r.Received.UTC().Format(time.RFC3339Nano))
	}
	if r.Line > 0 {
		add(HeaderLine, strconv.FormatInt(r.Line, 10))
	}
	add(HeaderTraceparent, r.Traceparent)
	if r.DuplicateOfLine > 0 {
		add(HeaderDuplicateOf, strconv.FormatInt(r.DuplicateOfLine, 10))
	}
	return hs
}

// ParseHeaders reads the metadata of a raw message. Missing headers stay
// zero; a header with a bad value is an error naming it.
func ParseHeaders(hs []pipeline.Header) (Raw, error) {
	var r Raw
	for _, h := range hs {
		v := strings.TrimSpace(string(h.Value))
		switch h.Key {
		case HeaderDataset:
			d, err := record.ParseDataset(v)
			if err != nil {
				return r, fmt.Errorf("header %s: %w", HeaderDataset, err)
			}
			r.Dataset = d
		case HeaderSource:
			s, err := ParseSource(v)
			if err != nil {
				return r, fmt.Errorf("header %s: %w", HeaderSource, err)
			}
			r.Source = s
		case HeaderSubmitter:
			r.Submitter = strings.ToUpper(v)
		case HeaderSubmission:
			r.SubmissionID = v
		case HeaderReceived:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return r, fmt.Errorf("header %s: not an RFC 3339 time", HeaderReceived)
			}
			r.Received = t
		case HeaderLine:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return r, fmt.Errorf("header %s: not a number", HeaderLine)
			}
			r.Line = n
		case HeaderTraceparent:
			r.Traceparent = v
		case HeaderDuplicateOf:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return r, fmt.Errorf("header %s: not a line number", HeaderDuplicateOf)
			}
			r.DuplicateOfLine = n
		}
	}
	if r.Source == dmicv1.Source_SOURCE_UNSPECIFIED {
		// Written straight to the raw topic without headers: a provider's record.
		r.Source = dmicv1.Source_SOURCE_PROVIDER
	}
	return r, nil
}

// Received is when a raw message counts as received, which picks the
// specification version that judges it: the message's Kafka timestamp, not
// the dmic-received-time header, which any producer writing to the raw topic
// can set to choose a version. Ingest writes its receipt time as both; the
// header, which keeps the receipt's sub-millisecond part, is taken only when
// it names the same millisecond as the timestamp. ok is false when the
// message carries no timestamp (a zero or pre-1970 time).
func Received(r Raw, m pipeline.Message) (t time.Time, ok bool) {
	if m.Time.UnixMilli() <= 0 {
		return time.Time{}, false
	}
	if !r.Received.IsZero() && r.Received.UnixMilli() == m.Time.UnixMilli() {
		return r.Received, true
	}
	return m.Time, true
}

// SourceName is record.SourceName, kept here for the callers that read and
// write headers with it.
func SourceName(s dmicv1.Source) string { return record.SourceName(s) }

// ParseSource is record.ParseSource, kept here for the callers that read and
// write headers with it.
func ParseSource(s string) (dmicv1.Source, error) { return record.ParseSource(s) }

// RecordKey is a record's identity across its revisions: who sent it, which
// data set, and its CDS unique identifier (domain brief §3: the identifier
// keys the record for its life, scoped by its sender). It is the key of the
// raw and validated topics and of the activity table:
//
//	<submitter>|<dataset>|<CDS unique identifier>             a provider's copy
//	<submitter>|<dataset>|<provider code>|<CDS unique identifier>   a national copy
//
// A national copy is the national exchange's (SUS) copy of a record some
// provider sent: its sender, whose identifier it is, is that provider, so the
// provider code scopes it too. Without it, two providers' records under one
// identifier, sent by the exchange, were one record (the later version hid
// the other) and the second a duplicate in its submission (DUP-001). The
// provider code is upper-cased and trimmed, as submitters are.
func RecordKey(submitter string, src dmicv1.Source, d dmicv1.Dataset, rec *dmicv1.CommissioningRecord) string {
	uid := rec.GetCdsUniqueIdentifier()
	if src == dmicv1.Source_SOURCE_NATIONAL {
		return submitter + "|" + record.DatasetName(d) + "|" + strings.ToUpper(strings.TrimSpace(rec.GetProviderCode())) + "|" + uid
	}
	return submitter + "|" + record.DatasetName(d) + "|" + uid
}

// Version orders a record's revisions: the CDS applicable date/time (seconds)
// first, then the raw offset as a tie-breaker that is the same on every replay.
// Raw offsets of one record key are comparable because a key always maps to
// one partition.
func Version(applicable time.Time, rawOffset int64) uint64 {
	secs := applicable.Unix()
	if secs < 0 {
		secs = 0
	}
	return uint64(secs)*1_000_000_000 + uint64(rawOffset%1_000_000_000)
}

// Header builds the EnvelopeHeader of a validated record.
func Header(r Raw, rec *dmicv1.CommissioningRecord, m pipeline.Message, specVersion string) (*dmicv1.EnvelopeHeader, error) {
	submitter := r.Submitter
	if submitter == "" {
		if r.Source == dmicv1.Source_SOURCE_NATIONAL {
			submitter = NationalSubmitter
		} else {
			submitter = strings.ToUpper(rec.GetProviderCode())
		}
	}
	received := r.Received
	if received.IsZero() {
		received = m.Time
	}
	// Without a CDS applicable date/time, the time of receipt orders the
	// revisions (docs/topics.md, Versions and replays): the received time
	// validate settled on (the message timestamp, else its own clock), not
	// m.Time itself, which is zero for a message produced without one and
	// would make the revision older than every other.
	applicable := received
	if s := rec.GetApplicableDateTime(); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("cds_applicable_date_time is not RFC 3339")
		}
		applicable = t
	}
	sub := r.SubmissionID
	if sub == "" {
		// Written straight to the raw topic: the message's position names it.
		sub = fmt.Sprintf("kafka-%s-%d-%d", m.Topic, m.Partition, m.Offset)
	}
	return &dmicv1.EnvelopeHeader{
		RecordKey:        RecordKey(submitter, r.Source, r.Dataset, rec),
		Dataset:          r.Dataset,
		Source:           r.Source,
		SubmitterOrgCode: submitter,
		SubmissionId:     sub,
		ReceivedTime:     timestamppb.New(received),
		SpecVersion:      specVersion,
		Traceparent:      r.Traceparent,
		RawPartition:     int32(m.Partition),
		RawOffset:        m.Offset,
		LineNumber:       r.Line,
		Version:          Version(applicable, m.Offset),
	}, nil
}
