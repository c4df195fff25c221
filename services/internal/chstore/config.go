package chstore

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmic-nhs/dmic/services/internal/secret"
)

// DefaultAddr is the ClickHouse address used when neither a flag nor
// CLICKHOUSE_ADDR gives one.
const DefaultAddr = "localhost:9000"

// PasswordEnv is the environment variable that may hold the password, when
// no password file is given.
const PasswordEnv = "DMIC_CLICKHOUSE_PASSWORD"

// Config says which ClickHouse and database a command uses, and as whom.
// Commands register its flags on their flag set, so every command spells them
// the same way. A command sets User before RegisterFlags to the user it logs
// in as by default (the table is chaccess.Users).
type Config struct {
	// Addr is host:port or a clickhouse-go DSN without a password (see Open).
	Addr     string
	Database string
	User     string
	// PasswordFile holds the password (mode 0600 or 0400; one line).
	PasswordFile string
	// Password is read by Validate from PasswordFile, else from PasswordEnv.
	// It prints and logs as [REDACTED].
	Password secret.Secret
}

// RegisterFlags registers -clickhouse-addr (default: CLICKHOUSE_ADDR, else
// localhost:9000), -clickhouse-database (default dmic), -clickhouse-user
// (default: DMIC_CLICKHOUSE_USER, else c.User) and -clickhouse-password-file
// (default DMIC_CLICKHOUSE_PASSWORD_FILE) on fs. There is no flag for the
// password itself: a command line is visible to every user of the machine.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	addr := os.Getenv("CLICKHOUSE_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	user := c.User
	if u := os.Getenv("DMIC_CLICKHOUSE_USER"); u != "" {
		user = u
	}
	fs.StringVar(&c.Addr, "clickhouse-addr", addr, "ClickHouse native protocol address, host:port or clickhouse://host:port?options (default from CLICKHOUSE_ADDR).")
	fs.StringVar(&c.Database, "clickhouse-database", DefaultDatabase, "ClickHouse database.")
	fs.StringVar(&c.User, "clickhouse-user", user, "ClickHouse user (default from DMIC_CLICKHOUSE_USER; docs/security.md lists who uses which).")
	fs.StringVar(&c.PasswordFile, "clickhouse-password-file", os.Getenv("DMIC_CLICKHOUSE_PASSWORD_FILE"),
		"File holding the ClickHouse user's password, mode 0600 (default from DMIC_CLICKHOUSE_PASSWORD_FILE; without a file, the password is read from "+PasswordEnv+").")
}

// Validate reports every problem at once, and reads the password: from
// PasswordFile if set, else from DMIC_CLICKHOUSE_PASSWORD. dmic never logs in
// without a password.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("-clickhouse-addr: required"))
	} else if strings.Contains(c.Addr, "://") {
		u, err := url.Parse(c.Addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("-clickhouse-addr: not a DSN: %s", redact(c.Addr)))
		} else if _, has := u.User.Password(); has {
			errs = append(errs, fmt.Errorf("-clickhouse-addr %s: holds a password, which a command line shows to everyone; give it in -clickhouse-password-file or %s", redact(c.Addr), PasswordEnv))
		}
	}
	if err := validateDatabase(c.Database); err != nil {
		errs = append(errs, fmt.Errorf("-clickhouse-database: %w", err))
	}
	if c.User == "" {
		errs = append(errs, errors.New("-clickhouse-user: required"))
	}
	pw, err := secret.Load(c.PasswordFile, PasswordEnv)
	switch {
	case errors.Is(err, secret.ErrNone):
		errs = append(errs, fmt.Errorf("-clickhouse-password-file or %s: required (ClickHouse user %s)", PasswordEnv, c.User))
	case err != nil:
		errs = append(errs, fmt.Errorf("-clickhouse-password-file: %w", err))
	default:
		c.Password = pw
	}
	return errors.Join(errs...)
}

// Open connects as Open(ctx, c) does.
func (c Config) Open(ctx context.Context) (driver.Conn, error) {
	return Open(ctx, c)
}

// String names the server, user and database for logs and errors, never a
// password.
func (c Config) String() string {
	return c.User + "@" + redact(c.Addr) + "/" + c.Database
}

// LogValue is what slog shows: the same as String, and where the password
// came from.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("server", redact(c.Addr)), slog.String("database", c.Database),
		slog.String("user", c.User), slog.String("password_from", c.Password.Source()))
}

// Format hides the password from every fmt verb, %#v included, which would
// otherwise print the struct's fields.
func (c Config) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }
