package chaccess_test

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/secret"
)

var update = flag.Bool("update", false, "rewrite deploy/clickhouse/users.d/dmic.xml from chaccess.Compose")

const repoRoot = "../../.."

type profileEl struct {
	XMLName  xml.Name
	Readonly string `xml:"readonly"`
	AllowDDL string `xml:"allow_ddl"`
}

type userEl struct {
	XMLName   xml.Name
	Remove    string   `xml:"remove,attr"`
	Hash      string   `xml:"password_sha256_hex"`
	Password  *string  `xml:"password"`
	Networks  []string `xml:"networks>ip"`
	Profile   string   `xml:"profile"`
	Databases []string `xml:"allow_databases>database"`
}

type usersFile struct {
	Profiles []profileEl
	Users    []userEl
}

func parse(t *testing.T, b []byte) usersFile {
	t.Helper()
	var raw struct {
		XMLName  xml.Name `xml:"yandex"`
		Profiles struct {
			Any []profileEl `xml:",any"`
		} `xml:"profiles"`
		Users struct {
			Any []userEl `xml:",any"`
		} `xml:"users"`
	}
	if err := xml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	f := usersFile{Profiles: raw.Profiles.Any, Users: raw.Users.Any}
	// A double hyphen ends an XML comment early; ClickHouse then refuses
	// the whole file.
	for _, c := range bytes.Split(b, []byte("<!--"))[1:] {
		if body, _, _ := bytes.Cut(c, []byte("-->")); bytes.Contains(body, []byte("--")) {
			t.Errorf("a comment holds a double hyphen: %s", body)
		}
	}
	return f
}

// Every user of the table is written with its profile, and only its
// profile's rights; the development server's administrator alone may use
// every database; nobody has a plaintext password.
func TestXML(t *testing.T) {
	hashes := map[string]string{}
	for _, u := range chaccess.Names() {
		hashes[u] = chaccess.HashPassword("pw-" + u)
	}
	for _, dev := range []bool{true, false} {
		b, err := chaccess.Config{Databases: []string{"dmic"}, Development: dev, Networks: chaccess.Loopback(), PasswordHashes: hashes}.XML()
		if err != nil {
			t.Fatal(err)
		}
		f := parse(t, b)
		if len(f.Users) != len(chaccess.Users()) {
			t.Fatalf("%d users written, want the table's %d", len(f.Users), len(chaccess.Users()))
		}
		for i, u := range chaccess.Users() {
			got := f.Users[i]
			if got.XMLName.Local != u.Name || got.Profile != u.Profile || got.Hash != hashes[u.Name] || got.Password != nil ||
				!slices.Equal(got.Networks, chaccess.Loopback()) {
				t.Errorf("user %d: %+v, want %s with profile %s, its hash and loopback", i, got, u.Name, u.Profile)
			}
			wantDBs := []string{"dmic"}
			if dev && u.ServerAdmin {
				wantDBs = nil
			}
			if !slices.Equal(got.Databases, wantDBs) {
				t.Errorf("development %v, %s: databases %v, want %v", dev, u.Name, got.Databases, wantDBs)
			}
			i := slices.IndexFunc(f.Profiles, func(p profileEl) bool { return p.XMLName.Local == u.Profile })
			if i < 0 {
				t.Fatalf("profile %s of %s is not written", u.Profile, u.Name)
			}
			p := f.Profiles[i]
			if (p.Readonly == "1") != u.Readonly || (p.AllowDDL == "1") != u.DDL {
				t.Errorf("profile %s: readonly %s, allow_ddl %s; want %v, %v", u.Profile, p.Readonly, p.AllowDDL, u.Readonly, u.DDL)
			}
		}
	}
	// Only the migrator may change the schema, only the writer and the
	// migrator may write.
	for _, u := range chaccess.Users() {
		if u.DDL != (u.Name == chaccess.Migrator) || u.Readonly == (u.Name == chaccess.Writer || u.Name == chaccess.Migrator) {
			t.Errorf("%s: DDL %v, readonly %v", u.Name, u.DDL, u.Readonly)
		}
	}
	for _, bad := range []chaccess.Config{
		{Networks: nil},
		{Networks: chaccess.Loopback(), Databases: []string{"dmic; DROP"}},
		{Networks: chaccess.Loopback(), PasswordHashes: map[string]string{"default": chaccess.HashPassword("")}},
		{Networks: chaccess.Loopback(), PasswordHashes: map[string]string{chaccess.Writer: "plaintext"}},
	} {
		if _, err := bad.XML(); err == nil {
			t.Errorf("%+v: written, want it refused", bad)
		}
	}
}

// The compose file is what Compose renders (go test -update rewrites it).
func TestComposeFileIsCurrent(t *testing.T) {
	want, err := chaccess.Compose().XML()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repoRoot, chaccess.ComposeFile)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what chaccess.Compose renders; run: cd services && go test ./internal/chaccess -run TestComposeFileIsCurrent -update", chaccess.ComposeFile)
	}
	f := parse(t, got)
	if f.Users[0].XMLName.Local != "default" || f.Users[0].Remove != "remove" {
		t.Errorf("the compose file must remove the image's default user first: %+v", f.Users[0])
	}
	for _, u := range f.Users[1:] {
		if u.Hash != "" || u.Password != nil || !slices.Equal(u.Databases, []string{"dmic"}) {
			t.Errorf("compose user %s: a password in the committed file, or not limited to dmic: %+v", u.XMLName.Local, u)
		}
	}
}

// imageUsersXML is the part of the official image's users.xml that matters
// here: a default user with no password, from anywhere, and the default
// profile and quota.
const imageUsersXML = `<?xml version="1.0"?>
<yandex>
    <profiles><default><poll_interval>1</poll_interval></default><readonly><readonly>1</readonly></readonly></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::/0</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
`

// What docker-compose runs, on a real server: the image's users.xml with its
// passwordless default, the committed users.d file and the password hashes
// deploy/secrets/clickhouse.sh makes. The default user is gone; each user
// logs in with the password the script made for it, and the migrator too is
// limited to the dmic database; the analyst's client configuration works.
func TestComposeUsersOnAServer(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("the secrets script needs bash")
	}
	secrets := t.TempDir()
	if out, err := exec.Command("bash", filepath.Join(repoRoot, "deploy/secrets/clickhouse.sh"), secrets).CombinedOutput(); err != nil {
		t.Fatalf("deploy/secrets/clickhouse.sh: %v\n%s", err, out)
	}
	var made []string
	entries, err := os.ReadDir(secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".xml") {
			made = append(made, e.Name())
		}
	}
	if want := slices.Sorted(slices.Values(chaccess.Names())); !slices.Equal(made, want) {
		t.Fatalf("the script makes passwords for %v, the table has %v", made, want)
	}
	hashes := map[string]string{}
	for _, u := range chaccess.Names() {
		s, err := secret.FromFile(filepath.Join(secrets, u))
		if err != nil {
			t.Fatalf("the script's password file: %v", err)
		}
		hashes[u] = chaccess.HashPassword(s.Reveal())
	}
	passwordsXML, err := os.ReadFile(filepath.Join(secrets, "users.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := chaccess.PasswordsXML(hashes); !bytes.Equal(passwordsXML, want) {
		t.Errorf("the script's users.xml differs from chaccess.PasswordsXML:\n%s\nwant:\n%s", passwordsXML, want)
	}
	composeUsers, err := os.ReadFile(filepath.Join(repoRoot, chaccess.ComposeFile))
	if err != nil {
		t.Fatal(err)
	}

	srv := chservertest.Start(t, chserver.Options{UsersConfig: []byte(imageUsersXML),
		UsersD: map[string][]byte{"dmic.xml": composeUsers, "zz-dmic-passwords.xml": passwordsXML}})
	ctx := testContext(t)
	_, err = dial(ctx, srv.Addr, "default", "")
	refused(t, "default without a password", err, loginRefused)
	scripted := chserver.Server{Addr: srv.Addr, Secrets: secrets}
	cfg := func(user string) chstore.Config {
		c := chstore.Config{Addr: srv.Addr, Database: "dmic", User: user, PasswordFile: scripted.PasswordFile(user)}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	migrator := open(t, cfg(chaccess.Migrator))
	if err := chstore.ApplySchema(ctx, migrator, "dmic"); err != nil {
		t.Fatalf("dmicctl migrate's work as the migrator: %v", err)
	}
	refused(t, "the migrator makes another database", migrator.Exec(ctx, "CREATE DATABASE elsewhere"), otherDatabase)
	writer := open(t, cfg(chaccess.Writer))
	if err := chstore.CheckSchema(ctx, writer, "dmic"); err != nil {
		t.Errorf("load's check as the writer: %v", err)
	}
	refused(t, "the writer drops a table", writer.Exec(ctx, "DROP TABLE dmic.activity"), ddlProhibited)
	for _, u := range []string{chaccess.Reader, chaccess.Analyst} {
		refused(t, u+" inserts", open(t, cfg(u)).Exec(ctx, "INSERT INTO dmic.activity (record_key) SELECT 'x'"), readonly)
	}
	if bin, err := exec.LookPath("clickhouse-client"); err == nil {
		// The configuration names localhost:9000 (compose's port on the
		// host); the command line points it at this server.
		out, err := exec.CommandContext(ctx, bin, "--config-file", filepath.Join(secrets, "analyst.xml"), "--host", "127.0.0.1", "--port", port(srv.Addr),
			"--query", "SELECT count() FROM dmic.activity_current").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "0" {
			t.Errorf("clickhouse-client with the script's analyst.xml: %v %q", err, out)
		}
	}
}

// docs/security.md shows the table of users in its ClickHouse section: every
// user, and who uses it. (The page has other tables with rows of the same
// names: the identities' roles have an analyst too.)
func TestDocsShowTheTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs/security.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, doc, ok := strings.Cut(string(b), "\n## ClickHouse\n")
	if !ok {
		t.Fatal("docs/security.md has no section ## ClickHouse")
	}
	doc, _, _ = strings.Cut(doc, "\n## ")
	for _, u := range chaccess.Users() {
		i := strings.Index(doc, "| `"+u.Name+"` |")
		if i < 0 {
			t.Errorf("docs/security.md has no table row for %s", u.Name)
			continue
		}
		row, _, _ := strings.Cut(doc[i:], "\n")
		for _, by := range u.UsedBy {
			if !strings.Contains(row, by) {
				t.Errorf("docs/security.md's row of %s does not say it is used by %q: %s", u.Name, by, row)
			}
		}
	}
}

// docker-compose.yml publishes no ClickHouse port beyond the host's
// loopback, mounts the users.d file and the hashes, and gives each service
// that logs in its user and its password file as a secret.
func TestComposeWiring(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	compose := string(b)
	for _, bad := range []string{`"9000:9000"`, `"8123:8123"`, `- 9000:9000`, `- 8123:8123`, "clickhouse-client --query"} {
		if strings.Contains(compose, bad) {
			t.Errorf("docker-compose.yml holds %s", bad)
		}
	}
	for _, want := range []string{`"127.0.0.1:9000:9000"`, "./" + chaccess.ComposeFile + ":/etc/clickhouse-server/users.d/dmic.xml:ro",
		"./deploy/secrets/clickhouse/users.xml:/etc/clickhouse-server/users.d/zz-dmic-passwords.xml:ro"} {
		if !strings.Contains(compose, want) {
			t.Errorf("docker-compose.yml lacks %s", want)
		}
	}
	for service, user := range map[string]string{"migrate": chaccess.Migrator, "load": chaccess.Writer, "ingest": chaccess.Reader} {
		secretName := "clickhouse-" + strings.TrimPrefix(user, "dmic_")
		block := composeService(compose, service)
		for _, want := range []string{"DMIC_CLICKHOUSE_USER: " + user, "DMIC_CLICKHOUSE_PASSWORD_FILE: /run/secrets/" + secretName} {
			if !strings.Contains(block, want) {
				t.Errorf("compose service %s lacks %q", service, want)
			}
		}
		// The secret is in the service's list, written inline or a line each
		// (beside its Kafka password).
		if !strings.Contains(block, "secrets: ["+secretName+"]") && !strings.Contains(block, "\n      - "+secretName+"\n") {
			t.Errorf("compose service %s does not get the secret %s", service, secretName)
		}
		if !strings.Contains(compose, "  "+secretName+":\n    file: ./deploy/secrets/clickhouse/"+user+"\n") {
			t.Errorf("docker-compose.yml does not define the secret %s from %s's password file", secretName, user)
		}
	}
}

// composeService is the text of a service's block in docker-compose.yml.
func composeService(compose, name string) string {
	_, rest, ok := strings.Cut(compose, "\n  "+name+":\n")
	if !ok {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if l != "" && !strings.HasPrefix(l, "    ") && !strings.HasPrefix(l, "  #") {
			break
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}
