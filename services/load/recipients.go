package load

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/load/dsa"
)

// RecipientKeys are the recipients' pseudonym keys: DIR/<domain>/<version>.key
// in deidentify's key file format (docs/deidentification.md), one domain per
// recipient (recipient-<ods>) or project (project-<name>). A recipient key
// turns an analytics pseudonym into the recipient's; it cannot reverse
// either, and load never holds the analytics or national-return keys.
type RecipientKeys struct {
	dir string
	mu  sync.Mutex
}

var domainRE = regexp.MustCompile(`^(recipient|project)-[a-z0-9][a-z0-9-]{0,30}$`)

// NewRecipientKeys uses dir (made 0700 if missing).
func NewRecipientKeys(dir string) (*RecipientKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recipient key directory: %w", err)
	}
	return &RecipientKeys{dir: dir}, nil
}

// Has reports whether domain has a key.
func (k *RecipientKeys) Has(domain string) bool {
	_, err := k.Active(domain)
	return err == nil
}

// Active is domain's highest key version (natural order, as deidentify's).
func (k *RecipientKeys) Active(domain string) (didi.Key, error) {
	if !domainRE.MatchString(domain) {
		return didi.Key{}, fmt.Errorf("domain %q: want recipient-<ods> or project-<name>", domain)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	files, _ := filepath.Glob(filepath.Join(k.dir, domain, "*.key"))
	if len(files) == 0 {
		return didi.Key{}, fmt.Errorf("domain %s: no key in %s", domain, filepath.Join(k.dir, domain))
	}
	slices.SortFunc(files, func(a, b string) int {
		return didi.CompareVersions(strings.TrimSuffix(filepath.Base(a), ".key"), strings.TrimSuffix(filepath.Base(b), ".key"))
	})
	return didi.LoadKey(files[len(files)-1])
}

// Create writes a new random key for domain (it must not exist).
func (k *RecipientKeys) Create(domain, version string) error {
	if !domainRE.MatchString(domain) {
		return fmt.Errorf("domain %q: want recipient-<ods> or project-<name>", domain)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return didi.GenerateKeyFile(filepath.Join(k.dir, domain, version+".key"), version)
}

// target is one agreement in force, ready to receive records.
type target struct {
	ag  dsa.Loaded
	rcp chstore.Recipient
	key []byte
}

// pseudonym is the recipient's pseudonym of an analytics pseudonym.
func (t *target) pseudonym(analytics string) string {
	if analytics == "" {
		return ""
	}
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("pseudonym:" + analytics))
	return hex.EncodeToString(m.Sum(nil))
}

// recordKey is the recipient's key of a record: dmic's record key hashed
// under the recipient's key, so that recipients cannot join on it.
func (t *target) recordKey(key string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("record:" + key))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// RecipientsConfig is where recipients' access is made.
type RecipientsConfig struct {
	// Base is dmic's database; recipients' databases are named after it.
	Base string
	// UsersDir is ClickHouse's users.d folder: load writes the recipients'
	// users there (one file, <base>-recipients.xml).
	UsersDir string
	// SecretsDir receives each recipient's password file and
	// clickhouse-client configuration (mode 0600), for handing over.
	SecretsDir string
	// ClientHost and ClientPort go in the client configurations.
	ClientHost string
	ClientPort string
	Networks   []string
	// Tick is how often agreements' states are looked at again (the clock
	// moves: expiry) and the query log copied to the access audit.
	Tick time.Duration
}

// Recipients keeps every agreement in force as a recipient database and
// user, writes records to them as load writes them to dmic, and removes
// access when an agreement ends.
type Recipients struct {
	cfg   RecipientsConfig
	ag    *Agreements
	keys  *RecipientKeys
	conn  driver.Conn
	clock clock.Clock
	lg    *slog.Logger

	targets  atomic.Pointer[[]*target]
	ensured  map[string]string // database → sha256 of the agreement it was made for
	dropped  map[string]bool
	lastUser []byte

	rows    *prometheus.CounterVec
	active  prometheus.Gauge
	applyMu sync.Mutex
}

// NewRecipients makes recipients' data through conn, a ClickHouse user that
// may create databases (dmic_share).
func NewRecipients(cfg RecipientsConfig, ag *Agreements, keys *RecipientKeys, conn driver.Conn, c clock.Clock, reg prometheus.Registerer, lg *slog.Logger) *Recipients {
	if cfg.Tick == 0 {
		cfg.Tick = 5 * time.Second
	}
	r := &Recipients{cfg: cfg, ag: ag, keys: keys, conn: conn, clock: c, lg: lg,
		ensured: map[string]string{}, dropped: map[string]bool{},
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dmic_recipient_rows_total",
			Help: "Rows written to recipients' databases, by recipient database and kind (row, tombstone)."}, []string{"database", "kind"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dmic_agreements_in_force",
			Help: "Data sharing agreements in force (recipient databases kept current)."}),
	}
	if reg != nil {
		reg.MustRegister(r.rows, r.active)
	}
	empty := []*target{}
	r.targets.Store(&empty)
	ag.SetReport(r.Report)
	return r
}

// AuditDatabase holds the access audit (queries), beside base.
func AuditDatabase(base string) string { return base + "_access" }

// Run applies the agreements now, then whenever they change and every tick,
// until ctx ends.
func (r *Recipients) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	for {
		if err := r.Apply(ctx); err != nil {
			r.lg.Error("recipients' access not applied; retrying", "err", err)
		}
		if err := r.CopyQueryLog(ctx); err != nil {
			r.lg.Warn("access audit: query log not copied; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.ag.Changed():
		}
	}
}

// Apply makes access match the agreements on the clock's now: a database,
// table and views and a user for each agreement in force; for each ended
// one, the user removed and (on_end drop) the database dropped.
func (r *Recipients) Apply(ctx context.Context) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	now := r.clock.Now()
	set := r.ag.Set()
	var next []*target
	var users []chaccess.RecipientUser
	var errs []string
	for _, l := range set.InForce(now) {
		db := l.Database(r.cfg.Base)
		key, err := r.keys.Active(l.PseudonymDomain())
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", l.Label(), err))
			continue
		}
		hash, err := r.password(db)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", l.Label(), err))
			continue
		}
		users = append(users, chaccess.RecipientUser{Database: db, PasswordHash: hash})
		rcp := chstore.Recipient{Database: db, Columns: l.Columns, K: l.SmallNumbers}
		if r.ensured[db] != l.SHA256() {
			if err := chstore.EnsureRecipient(ctx, r.conn, rcp); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			r.ensured[db] = l.SHA256()
			delete(r.dropped, db)
			r.lg.Info("recipient database ready", "agreement", l.Label(), "database", db)
		}
		next = append(next, &target{ag: l, rcp: rcp, key: key.Secret})
	}
	// Writes stop before access goes: an ended agreement gets no more rows.
	r.targets.Store(&next)
	r.active.Set(float64(len(next)))
	if err := r.writeUsers(users); err != nil {
		errs = append(errs, err.Error())
	}
	for _, l := range set.Ended(now) {
		db := l.Database(r.cfg.Base)
		if r.dropped[db] {
			continue
		}
		delete(r.ensured, db)
		if l.OnEnd == dsa.OnEndDrop {
			if err := chstore.DropRecipient(ctx, r.conn, db); err != nil {
				errs = append(errs, err.Error())
				continue
			}
		}
		_ = os.Remove(filepath.Join(r.cfg.SecretsDir, db))
		_ = os.Remove(filepath.Join(r.cfg.SecretsDir, db+".xml"))
		r.dropped[db] = true
		r.lg.Warn("agreement ended: recipient access removed", "agreement", l.Label(), "state", set.State(l, now),
			"database", db, "data", map[bool]string{true: "dropped", false: "kept, frozen"}[l.OnEnd == dsa.OnEndDrop])
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// password is the recipient user's password hash, generating its file (and
// a clickhouse-client configuration holding it) on first use.
func (r *Recipients) password(user string) (string, error) {
	if err := os.MkdirAll(r.cfg.SecretsDir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(r.cfg.SecretsDir, user)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		buf := make([]byte, 24)
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		b = []byte(hex.EncodeToString(buf))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return "", fmt.Errorf("recipient password file: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("recipient password file: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	client := fmt.Sprintf("<config>\n    <host>%s</host>\n    <port>%s</port>\n    <user>%s</user>\n    <password>%s</password>\n    <database>%s</database>\n</config>\n",
		r.cfg.ClientHost, r.cfg.ClientPort, user, pw, user)
	if err := os.WriteFile(filepath.Join(r.cfg.SecretsDir, user+".xml"), []byte(client), 0o600); err != nil {
		return "", fmt.Errorf("recipient client configuration: %w", err)
	}
	return chaccess.HashPassword(pw), nil
}

// UsersFile is the users.d file of base's recipients.
func UsersFile(base string) string { return base + "-recipients.xml" }

func (r *Recipients) writeUsers(users []chaccess.RecipientUser) error {
	if r.cfg.UsersDir == "" {
		return nil
	}
	b, err := chaccess.RecipientsXML(r.cfg.Networks, users)
	if err != nil {
		return err
	}
	if bytes.Equal(b, r.lastUser) {
		return nil
	}
	if err := os.MkdirAll(r.cfg.UsersDir, 0o750); err != nil {
		return fmt.Errorf("recipients' users: %w", err)
	}
	path := filepath.Join(r.cfg.UsersDir, UsersFile(r.cfg.Base))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("recipients' users: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("recipients' users: %w", err)
	}
	r.lastUser = b
	return nil
}

// Write writes records, as load writes them to dmic, to every agreement in
// force that covers their data set: the recipient's version of a record in
// its scope, and a tombstone of one out of its scope (a record re-assigned to
// another commissioner, or moved out of the activity period, leaves the
// recipient's data; a tombstone carries nothing but the recipient's record
// key and the version). Replays are harmless: the tables are
// ReplacingMergeTree(version).
func (r *Recipients) Write(ctx context.Context, rows []chstore.PackedActivity) error {
	targets := *r.targets.Load()
	if len(targets) == 0 || len(rows) == 0 {
		return nil
	}
	now := r.clock.Now()
	for _, t := range targets {
		var out []chstore.PackedActivity
		tomb := 0
		for _, row := range rows {
			dataset, commissioner, date, deleted := row.Facts()
			if !slices.Contains(t.ag.Datasets, dataset) {
				continue
			}
			if t.ag.Covers(dataset, commissioner, date) && !deleted {
				c, err := row.ForRecipient(t.recordKey(row.RecordKey()), t.pseudonym(row.PseudoNHSNumber()))
				if err != nil {
					return err
				}
				out = append(out, c)
				continue
			}
			ts, err := row.Tombstone(t.recordKey(row.RecordKey()), now)
			if err != nil {
				return err
			}
			out = append(out, ts)
			tomb++
		}
		if err := chstore.WriteRecipient(ctx, r.conn, t.rcp, out); err != nil {
			return err
		}
		r.rows.WithLabelValues(t.rcp.Database, "row").Add(float64(len(out) - tomb))
		r.rows.WithLabelValues(t.rcp.Database, "tombstone").Add(float64(tomb))
	}
	return nil
}

// CopyQueryLog copies the recipients' queries from system.query_log into the
// access audit table (<base>_access.queries, ReplacingMergeTree: a query
// copied twice is kept once), from a minute before the newest copied.
func (r *Recipients) CopyQueryLog(ctx context.Context) error {
	db := AuditDatabase(r.cfg.Base)
	for _, s := range []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE TABLE IF NOT EXISTS " + db + `.queries (
    event_time DateTime, user String, query_id String, kind UInt8, query String,
    read_rows UInt64, result_rows UInt64, duration_ms UInt64, exception String
) ENGINE = ReplacingMergeTree ORDER BY (user, query_id, kind)`,
	} {
		if err := r.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("access audit table: %w", err)
		}
	}
	// The server writes its query log every few seconds and creates the
	// table on its first write: flush it, so that a report shows the queries
	// made just before it, and take a log not created yet as no query. A
	// user without the right to flush gets a report a few seconds behind,
	// not an error.
	_ = r.conn.Exec(ctx, "SYSTEM FLUSH LOGS")
	prefix := r.cfg.Base + "_r_"
	q := fmt.Sprintf(`INSERT INTO %[1]s.queries (event_time, user, query_id, kind, query, read_rows, result_rows, duration_ms, exception)
SELECT event_time, user, query_id, CAST(type AS UInt8), query, read_rows, result_rows, query_duration_ms, exception
FROM system.query_log
WHERE substring(user, 1, %[2]d) = '%[3]s' AND CAST(type AS UInt8) != 1
    AND toInt64(event_time) >= toInt64((SELECT max(event_time) FROM %[1]s.queries)) - 60`, db, len(prefix), prefix)
	if err := r.conn.Exec(ctx, q); err != nil {
		var ex *clickhouse.Exception
		if errors.As(err, &ex) && ex.Code == unknownTable && strings.Contains(ex.Message, "query_log") {
			return nil // no query logged since the server started
		}
		return fmt.Errorf("copy query log: %w", err)
	}
	return nil
}

// unknownTable is ClickHouse's error code UNKNOWN_TABLE.
const unknownTable = 60

// Report is, per recipient user, its queries in the access audit.
func (r *Recipients) Report(ctx context.Context) ([]AccessRow, error) {
	if err := r.CopyQueryLog(ctx); err != nil {
		return nil, err
	}
	rows, err := r.conn.Query(ctx, fmt.Sprintf(`SELECT user, toInt64(countIf(kind = 2)), toInt64(countIf(kind != 2)),
    toInt64(sum(read_rows)), max(event_time)
FROM %s.queries FINAL GROUP BY user ORDER BY user`, AuditDatabase(r.cfg.Base)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AccessRow
	for rows.Next() {
		var a AccessRow
		if err := rows.Scan(&a.User, &a.Queries, &a.Failed, &a.RowsRead, &a.LastAccess); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
