package chstore

import (
	"context"
	"flag"
	"os"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultAddr is the ClickHouse address used when neither a flag nor
// CLICKHOUSE_ADDR gives one.
const DefaultAddr = "localhost:9000"

// Config says which ClickHouse and database a command uses. Commands register
// its flags on their flag set, so every command spells them the same way.
type Config struct {
	// Addr is host:port or a clickhouse-go DSN (see Open).
	Addr     string
	Database string
}

// RegisterFlags registers -clickhouse-addr (default: CLICKHOUSE_ADDR, else
// localhost:9000) and -clickhouse-database (default dmic) on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	addr := os.Getenv("CLICKHOUSE_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	fs.StringVar(&c.Addr, "clickhouse-addr", addr, "ClickHouse native protocol address, host:port or clickhouse://user:password@host:port (default from CLICKHOUSE_ADDR).")
	fs.StringVar(&c.Database, "clickhouse-database", DefaultDatabase, "ClickHouse database.")
}

// Open connects as Open(ctx, c.Addr, c.Database) does.
func (c Config) Open(ctx context.Context) (driver.Conn, error) {
	return Open(ctx, c.Addr, c.Database)
}

// String names the server and database for logs and errors, without a
// password the address may hold.
func (c Config) String() string {
	return redact(c.Addr) + "/" + c.Database
}
