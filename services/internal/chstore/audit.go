package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/internal/audit"
)

// AuditRow is one entry of the audit trail and where it sits on dmic.audit
// (one partition, so its offset is the trail's order, finer than the
// entry's time to the second).
type AuditRow struct {
	Entry  audit.Entry
	Offset int64
}

// auditRow is an AuditRow ready for its columns: the caller flattened (an
// unauthenticated caller is empty strings), the detail redacted again,
// because the topic keeps entries for 400 days and some may have been
// written by a version that did not redact.
type auditRow struct {
	e      audit.Entry
	caller struct{ org, role, name, method, serial string }
	time   time.Time
	detail string
	offset uint64
}

func auditRows(rs []AuditRow) []auditRow {
	out := make([]auditRow, 0, len(rs))
	for _, r := range rs {
		row := auditRow{e: r.Entry, time: clampDateTime(r.Entry.Time), detail: audit.Redact(r.Entry.Detail), offset: uint64(max(r.Offset, 0))}
		if c := r.Entry.Caller; c != nil {
			row.caller.org, row.caller.role, row.caller.name, row.caller.method, row.caller.serial = c.Org, string(c.Role), c.Name, string(c.Method), c.Serial
		}
		out = append(out, row)
	}
	return out
}

// auditColumns is the audit table: the entry's fields, the caller's in
// columns of their own, so that analysts filter by organisation or role.
var auditColumns = []column[auditRow]{
	strCol("id", func(r *auditRow) string { return r.e.ID }),
	dateTimeCol("time", func(r *auditRow) time.Time { return r.time }),
	u64Col("audit_offset", func(r *auditRow) uint64 { return r.offset }),
	strCol("service", func(r *auditRow) string { return r.e.Service }),
	strCol("protocol", func(r *auditRow) string { return r.e.Protocol }),
	strCol("action", func(r *auditRow) string { return r.e.Action }),
	strCol("outcome", func(r *auditRow) string { return r.e.Outcome }),
	strCol("reason", func(r *auditRow) string { return r.e.Reason }),
	strCol("detail", func(r *auditRow) string { return r.detail }),
	strCol("caller_org", func(r *auditRow) string { return r.caller.org }),
	strCol("caller_role", func(r *auditRow) string { return r.caller.role }),
	strCol("caller_name", func(r *auditRow) string { return r.caller.name }),
	strCol("caller_method", func(r *auditRow) string { return r.caller.method }),
	strCol("caller_serial", func(r *auditRow) string { return r.caller.serial }),
	strCol("peer", func(r *auditRow) string { return r.e.Peer }),
	strCol("subject", func(r *auditRow) string { return r.e.Subject }),
	loadedAt[auditRow](),
}

// WriteAudit inserts one row per audit entry. An entry is its call's id and
// outcome (a call has an allowed entry, then a done or failed one, under one
// id): a redelivered entry replaces itself. None is a no-op.
func (w *Writer) WriteAudit(ctx context.Context, rs []AuditRow) error {
	if len(rs) == 0 {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	return insert(ctx, w.conn, w.db, w.observe, TableAudit, auditColumns, auditRows(rs))
}

// AuditFilter narrows ReadAudit. Zero fields select everything.
type AuditFilter struct {
	// Since: entries at or after it.
	Since   time.Time
	Outcome string
	Org     string
	// Action: entries whose action contains it (Pause, /v1/submissions).
	Action string
	// Limit: the most recent Limit entries (0: 100).
	Limit int
}

// AuditRecord is one row of the audit table as ReadAudit returns it.
type AuditRecord struct {
	ID, Service, Protocol, Action, Outcome, Reason, Detail string
	Time                                                   time.Time
	CallerOrg, CallerRole, CallerName, CallerSerial        string
	Peer, Subject                                          string
}

// ReadAudit reads the most recent entries that f selects, newest first
// (FINAL: a redelivered entry that has not been merged yet shows once).
func ReadAudit(ctx context.Context, conn driver.Conn, db string, f AuditFilter) ([]AuditRecord, error) {
	if err := validateDatabase(db); err != nil {
		return nil, err
	}
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if !f.Since.IsZero() {
		// Bound as seconds since 1970: a time.Time binds differently across
		// server versions, a number the same.
		add("time >= toDateTime(?)", f.Since.Unix())
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if f.Org != "" {
		add("caller_org = ?", f.Org)
	}
	if f.Action != "" {
		add("position(action, ?) > 0", f.Action)
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := fmt.Sprintf(`SELECT id, time, service, protocol, action, outcome, reason, detail, caller_org, caller_role, caller_name, caller_serial, peer, subject
FROM %s.%s FINAL %s
ORDER BY time DESC, audit_offset DESC
LIMIT %d`, db, TableAudit, where, limit)
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, TableAudit, err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		if err := rows.Scan(&r.ID, &r.Time, &r.Service, &r.Protocol, &r.Action, &r.Outcome, &r.Reason, &r.Detail,
			&r.CallerOrg, &r.CallerRole, &r.CallerName, &r.CallerSerial, &r.Peer, &r.Subject); err != nil {
			return nil, fmt.Errorf("read %s.%s: %w", db, TableAudit, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, TableAudit, err)
	}
	return out, nil
}
