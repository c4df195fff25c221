package chstore

import (
	"context"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
)

// Reports answers submission reports from ClickHouse for a service whose main
// work does not need ClickHouse (ingest): it connects on first use, and again
// after a failed attempt, so that the service starts and takes submissions
// while ClickHouse is away.
type Reports struct {
	lazy lazyConn
}

// NewReports reads reports from the database cfg names.
func NewReports(cfg Config) *Reports { return &Reports{lazy: lazyConn{cfg: cfg}} }

// SubmissionReport is SubmissionReport on the configured database.
func (r *Reports) SubmissionReport(ctx context.Context, submissionID string, limit int) (*validationv1.SubmissionReport, bool, error) {
	conn, err := r.lazy.get(ctx)
	if err != nil {
		return nil, false, err
	}
	return SubmissionReport(ctx, conn, r.lazy.cfg.Database, submissionID, limit)
}

// Close closes the connection, if one was made.
func (r *Reports) Close() error { return r.lazy.close() }

// lazyConn is a connection made on first use, and again after a failed
// attempt: a service that reads ClickHouse only to answer calls starts, and
// does its main work, while ClickHouse is away.
type lazyConn struct {
	cfg  Config
	mu   sync.Mutex
	conn driver.Conn
}

func (l *lazyConn) get(ctx context.Context) (driver.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		return l.conn, nil
	}
	conn, err := l.cfg.Open(ctx)
	if err != nil {
		return nil, err
	}
	l.conn = conn
	return conn, nil
}

func (l *lazyConn) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	err := l.conn.Close()
	l.conn = nil
	return err
}
