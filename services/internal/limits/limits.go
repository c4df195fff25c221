// Package limits is the one home of dmic's size limits, which must agree end
// to end: a record ingest accepts must fit every message derived from it, and
// every message a stage writes must fit the writer's batch and the broker's
// limit, or the stage that derives it stalls on a write that can never
// succeed (issue 10: a 1 MB field halted validate for everyone).
//
//	MaxRecordBytes (524,288)        a record as received (a JSON line, a CSV row as JSON,
//	                                a gRPC json_record) and as stored on dmic.raw
//	  < MaxMessageBytes (786,432)   any one message a stage writes (key, value, headers);
//	                                above it the input is dead-lettered (MSG-TOO-LARGE)
//	  < WriterBatchBytes (1,000,000) kafka-go's Writer.BatchBytes: the most it puts in one
//	                                produce batch (and the largest message it will send)
//	  < TopicMaxMessageBytes (1,048,588) max.message.bytes on every dmic topic: the
//	                                broker's limit on one batch (Apache Kafka's default,
//	                                set explicitly so a cluster default cannot lower it)
//
// A submission is bounded too, so that one caller cannot take ingest down
// (issue 12): at most MaxSubmissionBytes of body and MaxSubmissionRecords
// records, each the default of an ingest flag; over either it is refused
// (HTTP 413, gRPC RESOURCE_EXHAUSTED) before anything of it is stored. A gRPC
// message is at most MaxGRPCMessageBytes, above MaxRecordBytes so that a
// record one byte over its limit still arrives to be refused by line.
//
// Dead letters carry at most DeadLetterExcerptBytes of the rejected message
// and a reference to where it was read (topic, partition, offset), never an
// unbounded copy, so a dead letter always fits.
//
// docs/operations.md ("Limits") is the operators' copy of this table; a test
// keeps the two in step.
package limits

const (
	// MaxRecordBytes is the largest record ingest accepts and validate reads
	// from dmic.raw. A CDS record is a few KiB; the limit leaves room for
	// anything real and keeps every derived message under MaxMessageBytes.
	MaxRecordBytes = 512 << 10

	// MaxMessageBytes is the largest message any stage writes, measured as
	// kafka-go measures it for BatchBytes (Message.totalSize: key, value,
	// headers and the framing of each).
	MaxMessageBytes = 768 << 10

	// WriterBatchBytes is kafka-go's Writer.BatchBytes for every writer.
	WriterBatchBytes = 1_000_000

	// TopicMaxMessageBytes is max.message.bytes on every dmic topic. A
	// compressed batch of WriterBatchBytes (lz4 adds at most a few bytes per
	// KiB of incompressible data) plus the batch header fits under it.
	TopicMaxMessageBytes = 1_048_588

	// DeadLetterExcerptBytes is how much of a rejected message a dead letter
	// keeps: enough to see what it was, never enough to stall a write.
	DeadLetterExcerptBytes = 4 << 10

	// MaxSubmissionBytes is the default cap on a submission's body (HTTP)
	// or the records of its stream (gRPC). It is spooled to disk while
	// received, so the cap bounds ingest's disk, not its memory; it keeps one
	// file from filling the spool folder and the topics. 1 GiB is a month of
	// a large trust's records; a larger file is split.
	MaxSubmissionBytes = 1 << 30

	// MaxSubmissionRecords is the default cap on the records of one
	// submission (over HTTP: the lines of the body after a CSV header). A
	// record refused at the door still costs two messages (its dead letter
	// and its verdict), so a body of short bad lines would otherwise multiply
	// into millions of messages.
	MaxSubmissionRecords = 1_000_000

	// MaxGRPCMessageBytes is the largest gRPC message a dmic server
	// receives (grpc.MaxRecvMsgSize; gRPC's own default, said explicitly):
	// one SubmitRecords message holds at least one whole record.
	MaxGRPCMessageBytes = 4 << 20
)

// Excerpt is at most DeadLetterExcerptBytes of b (the start of it), and
// whether anything was cut.
func Excerpt(b []byte) ([]byte, bool) {
	if len(b) <= DeadLetterExcerptBytes {
		return b, false
	}
	return b[:DeadLetterExcerptBytes], true
}
