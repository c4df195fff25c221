package pipeline

import (
	"errors"

	"github.com/segmentio/kafka-go"
)

// permanentError marks an error that retrying the same write cannot cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot cure (invalid data, a
// message too large), so that the runner dead-letters the message instead of
// retrying it forever. Sinks use it for their own such errors; Kafka's are
// recognised by IsPermanent without it. Nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// permanentKafka are the broker's answers that the same produce request will
// get again however often it is sent. Anything else (a broker or leader
// unavailable, a timeout, a network error, an authorisation that an operator
// may yet grant) is worth retrying.
var permanentKafka = []error{
	kafka.MessageSizeTooLarge,
	kafka.RecordListTooLarge,
	kafka.InvalidRecord,
	kafka.InvalidTimestamp,
}

// IsPermanent says whether err is one that retrying cannot cure: marked by
// Permanent, kafka-go's MessageTooLargeError (a message above the writer's
// BatchBytes), or a broker error in permanentKafka for any message of a
// kafka.WriteErrors.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && IsPermanent(e) {
				return true
			}
		}
		return false
	}
	for _, k := range permanentKafka {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
