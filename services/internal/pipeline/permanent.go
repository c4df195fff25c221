package pipeline

import (
	"errors"
)

// permanentError marks an error that retrying the same write cannot cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot cure (invalid data, a
// message too large), so that the runner dead-letters the message instead of
// retrying it forever. Every sink marks its own such errors: the Kafka
// adapter marks the broker's (kafkapipe.Sink), the ClickHouse store its own.
// Nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent says whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
