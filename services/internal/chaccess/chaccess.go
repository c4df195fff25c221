// Package chaccess says who may do what in dmic's ClickHouse: the users dmic's
// commands log in as, which command uses which, and what each may do; and it
// writes the users configuration that defines them, for the local server
// (chserver) and for docker-compose (deploy/clickhouse/users.d).
//
// There is no passwordless user: the server's `default` user is removed. Each
// user logs in with a password of its own, which dmic reads from a file or
// the environment (internal/secret), never from a command line.
//
// The configuration is users.xml (no SQL-defined users, no GRANT): ClickHouse
// 18.16 knows nothing else, and current releases still read it. It uses only
// what both read the same way:
//   - <password_sha256_hex>: the server holds a hash, not the password;
//   - <networks>: where a user may log in from;
//   - <allow_databases>: the databases a user may touch (the system database
//     stays readable to everyone on 18.16);
//   - settings profiles with readonly and allow_ddl.
//
// Not used, because 18.16 refuses or ignores them: settings constraints (18.16
// fails every query of a user whose profile has <constraints>), <grants>
// (ignored by 18.16, and current releases refuse it beside <allow_databases>),
// row filters (accepted by 18.16, not applied).
package chaccess

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
)

// The users. A name is also the name of the user's password file in a secrets
// folder (chserver, deploy/secrets/clickhouse).
const (
	// Migrator creates and migrates the schema (chstore.ApplySchema).
	Migrator = "dmic_migrator"
	// Writer inserts rows: the load service.
	Writer = "dmic_writer"
	// Reader reads for a service: ingest's submission reports, assign's
	// explanations and re-runs.
	Reader = "dmic_reader"
	// Analyst reads the tables and views: people with clickhouse-client, and
	// dmicctl dq and small-numbers.
	Analyst = "analyst"
)

// The settings profiles the users get.
const (
	ProfileMigrator = "dmic_migrator"
	ProfileWriter   = "dmic_writer"
	ProfileReadonly = "dmic_readonly"
)

// QuotaName is the quota every dmic user is counted under. It has no limits
// yet; it gives per-recipient limits (issue 13) a place.
const QuotaName = "dmic"

// User is one ClickHouse user and what it may do.
type User struct {
	Name    string
	Profile string
	// Readonly: the profile sets readonly = 1: no INSERT, no DDL, and no
	// setting can be changed (so not readonly itself either).
	Readonly bool
	// DDL: the profile sets allow_ddl = 1 (CREATE, ALTER, DROP, RENAME,
	// TRUNCATE, OPTIMIZE). Otherwise allow_ddl = 0, which a user cannot SET
	// back to 1 (ClickHouse refuses to change allow_ddl when it is 0); see
	// the 18.16 exception in docs/security.md.
	DDL bool
	// ServerAdmin: on a development server (make run, the tests) the user may
	// use every database, so that tests and the benchmark make databases of
	// their own. In production (compose) it is limited like every other user.
	ServerAdmin bool
	// UsedBy names the commands that log in as the user.
	UsedBy []string
}

// Users is the table of dmic's ClickHouse users: who uses which, and what each
// may do. docs/security.md shows it; a test keeps the two in step.
func Users() []User {
	return []User{
		{Name: Migrator, Profile: ProfileMigrator, DDL: true, ServerAdmin: true,
			UsedBy: []string{"dmicctl migrate (compose's migrate job)", "make run and the tests (devstack, before the services start)", "test fixtures"}},
		{Name: Writer, Profile: ProfileWriter,
			UsedBy: []string{"load"}},
		{Name: Reader, Profile: ProfileReadonly, Readonly: true,
			UsedBy: []string{"ingest (submission reports)", "assign (explain, re-run)"}},
		{Name: Analyst, Profile: ProfileReadonly, Readonly: true,
			UsedBy: []string{"analysts (clickhouse-client)", "dmicctl dq", "dmicctl small-numbers"}},
	}
}

// Lookup is the user of that name.
func Lookup(name string) (User, bool) {
	i := slices.IndexFunc(Users(), func(u User) bool { return u.Name == name })
	if i < 0 {
		return User{}, false
	}
	return Users()[i], true
}

// Names are the users' names, in table order.
func Names() []string {
	var out []string
	for _, u := range Users() {
		out = append(out, u.Name)
	}
	return out
}

// HashPassword is the value of <password_sha256_hex> for password.
func HashPassword(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// Loopback are the networks of a development server, which listens on
// 127.0.0.1 only.
func Loopback() []string { return []string{"127.0.0.1", "::1"} }

// ComposeFile is the users.d file of docker-compose's ClickHouse, from the
// repository's root; Compose is its content (a test keeps the two equal).
const ComposeFile = "deploy/clickhouse/users.d/dmic.xml"

// Compose is the users configuration of docker-compose's ClickHouse: every
// user limited to the dmic database, the migrator too; logins from the
// container's own loopback and from the private address ranges Docker's
// networks are made from (ClickHouse's ports are not published, except the
// native port on the host's 127.0.0.1, which arrives from the bridge's
// gateway); no password hashes (the secret file deploy/secrets/clickhouse.sh
// makes gives them); the image's default user removed.
func Compose() Config {
	return Config{
		Databases:     []string{"dmic"},
		Networks:      append(Loopback(), "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
		RemoveDefault: true,
	}
}

// Config is a users configuration to write.
type Config struct {
	// Databases are the databases the users may use. Empty: every database
	// (a test server, whose tests make databases of their own).
	Databases []string
	// Development: the server belongs to one developer or one test (chserver):
	// the ServerAdmin users may use every database.
	Development bool
	// Networks the users may log in from (IP addresses or CIDR ranges).
	Networks []string
	// PasswordHashes are the users' <password_sha256_hex> by name. A user
	// without one is written without a password element: another file of
	// users.d must give it (compose: the secret file that PasswordsXML makes),
	// or ClickHouse refuses the user.
	PasswordHashes map[string]string
	// RemoveDefault adds <default remove="remove"/>, which takes the `default`
	// user of the server's own users.xml away (compose: the image's users.xml
	// has a passwordless default).
	RemoveDefault bool
	// BaseProfile: also define the profile named default and the users' quota
	// container, for a users.xml that is the server's whole users config
	// (chserver). BaseSettings are the default profile's settings.
	BaseProfile  bool
	BaseSettings map[string]string
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var problems []string
	if len(c.Networks) == 0 {
		problems = append(problems, "no networks: nobody could log in")
	}
	for _, d := range c.Databases {
		if !isIdent(d) {
			problems = append(problems, fmt.Sprintf("database %q: want letters, digits and _", d))
		}
	}
	for name, h := range c.PasswordHashes {
		if _, ok := Lookup(name); !ok {
			problems = append(problems, fmt.Sprintf("password for unknown user %q", name))
		}
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			problems = append(problems, fmt.Sprintf("password hash of %s: not 64 hex digits", name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("users configuration: %s", strings.Join(problems, "; "))
	}
	return nil
}

// XML renders the configuration as a users file. The root element is
// <yandex>: 18.16 knows no other, current releases read it as <clickhouse>.
func (c Config) XML() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("<?xml version=\"1.0\"?>\n")
	w("<!-- dmic's ClickHouse users (services/internal/chaccess): who uses which is in docs/security.md. -->\n")
	w("<yandex>\n")
	w("    <profiles>\n")
	if c.BaseProfile {
		w("        <default>\n")
		for _, k := range sortedKeys(c.BaseSettings) {
			w("            <%s>%s</%s>\n", k, esc(c.BaseSettings[k]), k)
		}
		w("        </default>\n")
	}
	for _, p := range profiles() {
		w("        <%s>\n", p.name)
		w("            <readonly>%d</readonly>\n", b2i(p.readonly))
		w("            <allow_ddl>%d</allow_ddl>\n", b2i(p.ddl))
		w("        </%s>\n", p.name)
	}
	w("    </profiles>\n")
	w("    <users>\n")
	if c.RemoveDefault {
		w("        <!-- The image's passwordless default user is taken away. -->\n")
		w("        <default remove=\"remove\"/>\n")
	}
	for _, u := range Users() {
		w("        <%s>\n", u.Name)
		if h, ok := c.PasswordHashes[u.Name]; ok {
			w("            <password_sha256_hex>%s</password_sha256_hex>\n", h)
		}
		w("            <networks>\n")
		for _, n := range c.Networks {
			w("                <ip>%s</ip>\n", esc(n))
		}
		w("            </networks>\n")
		w("            <profile>%s</profile>\n", u.Profile)
		w("            <quota>%s</quota>\n", QuotaName)
		if dbs := c.databasesOf(u); len(dbs) > 0 {
			w("            <allow_databases>\n")
			for _, d := range dbs {
				w("                <database>%s</database>\n", d)
			}
			w("            </allow_databases>\n")
		}
		w("        </%s>\n", u.Name)
	}
	w("    </users>\n")
	w("    <quotas>\n")
	w("        <%s></%s>\n", QuotaName, QuotaName)
	w("    </quotas>\n")
	w("</yandex>\n")
	return b.Bytes(), nil
}

// databasesOf are the databases u may use; none means every database.
func (c Config) databasesOf(u User) []string {
	if c.Development && u.ServerAdmin {
		return nil
	}
	return c.Databases
}

// PasswordsXML is a users.d file that gives each user its password hash, to
// merge with a Config written without them (compose keeps it as a secret).
func PasswordsXML(hashes map[string]string) ([]byte, error) {
	if err := (Config{Networks: Loopback(), PasswordHashes: hashes}).Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\"?>\n<!-- The password hashes of dmic's ClickHouse users. -->\n<yandex>\n    <users>\n")
	for _, name := range Names() {
		if h, ok := hashes[name]; ok {
			fmt.Fprintf(&b, "        <%s><password_sha256_hex>%s</password_sha256_hex></%s>\n", name, h, name)
		}
	}
	b.WriteString("    </users>\n</yandex>\n")
	return b.Bytes(), nil
}

type profile struct {
	name          string
	readonly, ddl bool
}

// profiles are the settings profiles of Users, each once, in table order.
func profiles() []profile {
	var out []profile
	for _, u := range Users() {
		if slices.ContainsFunc(out, func(p profile) bool { return p.name == u.Profile }) {
			continue
		}
		out = append(out, profile{u.Profile, u.Readonly, u.DDL})
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
