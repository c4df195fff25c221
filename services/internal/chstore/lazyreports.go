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
	cfg  Config
	mu   sync.Mutex
	conn driver.Conn
}

// NewReports reads reports from the database cfg names.
func NewReports(cfg Config) *Reports { return &Reports{cfg: cfg} }

func (r *Reports) connect(ctx context.Context) (driver.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		return r.conn, nil
	}
	conn, err := r.cfg.Open(ctx)
	if err != nil {
		return nil, err
	}
	r.conn = conn
	return conn, nil
}

// SubmissionReport is SubmissionReport on the configured database.
func (r *Reports) SubmissionReport(ctx context.Context, submissionID string, limit int) (*validationv1.SubmissionReport, bool, error) {
	conn, err := r.connect(ctx)
	if err != nil {
		return nil, false, err
	}
	return SubmissionReport(ctx, conn, r.cfg.Database, submissionID, limit)
}

// Close closes the connection, if one was made.
func (r *Reports) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		return nil
	}
	err := r.conn.Close()
	r.conn = nil
	return err
}
