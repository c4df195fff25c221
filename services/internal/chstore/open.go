// Package chstore is dmic's ClickHouse store: the analyst-facing schema;
// batched, replay-safe writers for de-identified activity, rejections,
// reconciliation results, validation outcomes and submission receipts; and the
// data-quality reads (a submission's validation report, the DQ summaries).
//
// Replays are harmless by construction rather than by insert deduplication
// (ClickHouse 18.16 has no insert_deduplication_token): every table is a
// ReplacingMergeTree keyed by the business identity of a row, so a replayed row
// is the same key (and version) and collapses at merge time or under FINAL. The
// views analysts query apply FINAL and hide deleted records.
//
// The DDL runs unchanged on ClickHouse 18.16 and on current releases: no
// DateTime64, TTL, LowCardinality or ADD COLUMN IF NOT EXISTS; only the native
// protocol; INSERTs name their columns.
package chstore

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDatabase is the database dmic's tables live in unless configured otherwise.
const DefaultDatabase = "dmic"

// Open connects to ClickHouse over the native protocol, as c.User with
// c.Password, and pings it.
//
// c.Addr is host:port, or a clickhouse-go DSN such as
// clickhouse://host:9000?dial_timeout=5s for other options (a password in it
// is refused by Validate: it would be on a command line). The session has
// no database (unless the DSN names one): c.Database may not exist yet, and
// ClickHouse 18.16 refuses a login whose session database the user may not
// use (a user limited to dmic may not use default). Every statement in this
// package names its tables in full as database.table.
func Open(ctx context.Context, c Config) (driver.Conn, error) {
	if err := validateDatabase(c.Database); err != nil {
		return nil, err
	}
	opts, err := options(c)
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", c, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", c, err)
	}
	return conn, nil
}

func options(c Config) (*clickhouse.Options, error) {
	var opts *clickhouse.Options
	if strings.Contains(c.Addr, "://") {
		parsed, err := clickhouse.ParseDSN(c.Addr)
		if err != nil {
			return nil, fmt.Errorf("clickhouse DSN %s: %w", redact(c.Addr), err)
		}
		opts = parsed
	} else {
		if c.Addr == "" {
			return nil, fmt.Errorf("clickhouse address is empty")
		}
		opts = &clickhouse.Options{Addr: []string{c.Addr}}
	}
	// The user and password are the Config's, never the DSN's.
	opts.Auth.Username = c.User
	opts.Auth.Password = c.Password.Reveal()
	// Only the native protocol works against 18.16 (HTTP fails on the
	// client_protocol_version setting), so it is not left to the DSN.
	opts.Protocol = clickhouse.Native
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.Compression == nil {
		// Batches are 10k–100k rows of repetitive strings: LZ4 costs little CPU
		// and cuts the bytes on the wire several-fold. 18.16 supports it.
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	return opts, nil
}

// redact removes a password from a DSN so that it can appear in an error.
func redact(addr string) string {
	if !strings.Contains(addr, "://") {
		return addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// validateDatabase admits only plain identifiers: the name is written into DDL
// and queries, so anything else would need quoting rules that differ by version.
func validateDatabase(name string) error {
	if !identRE.MatchString(name) {
		return fmt.Errorf("clickhouse database name %q: want letters, digits and _, starting with a letter or _", name)
	}
	return nil
}
