// Package e2e runs the real service binaries as separate processes against the
// embedded broker over TCP and a real ClickHouse, as `make run` does, and
// checks what reaches ClickHouse.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chserver/chservertest"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
	"github.com/dmic-nhs/dmic/services/tools/leakguard"
	"github.com/dmic-nhs/dmic/services/tools/synth"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

const (
	refDir   = "../../../reference/sample"
	database = "dmic_e2e"
	seed     = 7
	records  = 400
)

// freePortBase is a port base from 1000 whose ports are free, so that two
// runs of the tests on one machine do not meet.
func freePortBase(t *testing.T) int {
	t.Helper()
	base, err := devstack.FreePortBase(1000, 100)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// syncBuffer collects every process's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmds := []string{"broker", "ingest", "validate", "deidentify", "assign", "reconcile", "load", "generate", "dmic"}
	if err := devstack.Build(context.Background(), "../..", dir, cmds...); err != nil {
		t.Fatal(err)
	}
	return dir
}

type stackUnderTest struct {
	*devstack.Stack
	t    *testing.T
	conn driver.Conn
	logs *syncBuffer
}

// underTest wraps a started stack for a test: it reads ClickHouse as the
// analyst reads it, and prints the last logTail lines of the services' logs
// if the test fails.
// startStack builds the binaries and starts the stack as make run does, on
// a ClickHouse of the test's own and free ports, with cfg's database and
// instances; it is stopped when the test ends. On failure the test prints
// the last logTail lines of the services' logs.
func startStack(ctx context.Context, t *testing.T, cfg devstack.Config, logTail int) *stackUnderTest {
	t.Helper()
	bin := buildBinaries(t)
	ch := chservertest.Server(t)
	logs := &syncBuffer{}
	cfg.BinDir, cfg.VarDir, cfg.ReferenceDir, cfg.PortBase, cfg.Out = bin, t.TempDir(), refDir, freePortBase(t), logs
	cfg.ClickHouseAddr, cfg.ClickHouseSecrets = ch.Addr, ch.Secrets
	st, err := devstack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start stack: %v\nlogs:\n%s", err, tail(logs.String(), logTail))
	}
	t.Cleanup(st.Stop)
	return underTest(ctx, t, st, logs, logTail)
}

func underTest(ctx context.Context, t *testing.T, st *devstack.Stack, logs *syncBuffer, logTail int) *stackUnderTest {
	t.Helper()
	analyst, err := st.ClickHouseConfig(chaccess.Analyst)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := analyst.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		if t.Failed() {
			t.Logf("service logs (tail):\n%s", tail(logs.String(), logTail))
		}
	})
	return &stackUnderTest{Stack: st, t: t, conn: conn, logs: logs}
}

func (s *stackUnderTest) count(q string) int64 {
	s.t.Helper()
	var n uint64
	row := s.conn.QueryRow(context.Background(), q)
	if err := row.Scan(&n); err != nil {
		if strings.Contains(err.Error(), "doesn't exist") || strings.Contains(err.Error(), "does not exist") {
			return -1
		}
		s.t.Fatalf("%s: %v", q, err)
	}
	return int64(n)
}

func (s *stackUnderTest) activity() int64 {
	return s.count("SELECT count() FROM " + database + ".activity_current")
}

func (s *stackUnderTest) rejectedRecords() int64 {
	return s.count("SELECT uniqExact(source_topic, source_partition, source_offset) FROM " + database + ".rejections FINAL")
}

func (s *stackUnderTest) waitFor(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v waiting for %s; now: activity=%d rejected=%d\n%s", timeout, what, s.activity(), s.rejectedRecords(), s.statuses())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (s *stackUnderTest) statuses() string {
	var b strings.Builder
	for _, n := range devstack.ServiceNames {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := s.control(n).GetStatus(ctx, &dmicv1.GetStatusRequest{})
		cancel()
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", n, err)
			continue
		}
		fmt.Fprintf(&b, "%s: processed=%d rejected=%d lag=%d paused=%v\n", n, st.Processed, st.Rejected, st.ConsumerLag, st.Paused)
	}
	return b.String()
}

// control is name's control API, called with the operator's certificate.
func (s *stackUnderTest) control(name string) dmicv1.ControlServiceClient {
	return s.controlAs(name, devpki.OperatorFile)
}

// controlAs is name's control API, called with the certificate in file of
// the stack's PKI ("": none).
func (s *stackUnderTest) controlAs(name, file string) dmicv1.ControlServiceClient {
	creds, err := s.PKI.DialOption(file)
	if err != nil {
		s.t.Fatal(err)
	}
	conn, err := grpc.NewClient("localhost:"+strconv.Itoa(s.Ports.GRPC[name]), creds)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	return dmicv1.NewControlServiceClient(conn)
}

// status asks a service for its status. A service serves gRPC only once it
// is ready to work (validate and deidentify first replay their control
// logs), so the call waits for it to listen, for a while, before failing.
func (s *stackUnderTest) status(name string) *dmicv1.GetStatusResponse {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.control(name).GetStatus(ctx, &dmicv1.GetStatusRequest{}, grpc.WaitForReady(true))
	if err != nil {
		s.t.Fatalf("status of %s: %v", name, err)
	}
	return st
}

func TestPipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := startStack(ctx, t, devstack.Config{Database: database}, 150)
	st := s.Stack

	ref, err := refdata.LoadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := synth.Config{Seed: seed, Records: records, BadShare: 0.05,
		Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: ref.TrustCodes()}
	items, err := synth.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := synth.Expect(items)
	if want.Rejected == 0 || want.NationalLive == 0 {
		t.Fatalf("generator made no bad or no national records: %+v", want)
	}

	// 1. Send through ingest over HTTP while killing services mid-stream.
	genDone := make(chan error, 1)
	go func() {
		genDone <- st.Run(ctx, "generate", "generate", "-records", strconv.Itoa(records), "-seed", strconv.Itoa(seed),
			"-ingest", st.IngestURL(), "-pki", st.PKI.Path, "-reference-dir", refDir, "-submission-size", "50")
	}()
	s.waitFor("validate to start processing", time.Minute, func() bool { return s.status("validate").Processed > 0 })
	killHard(t, st, "validate")
	s.waitFor("load to write rows", 2*time.Minute, func() bool { return s.activity() > 0 })
	killHard(t, st, "load")
	killHard(t, st, "reconcile")
	if err := <-genDone; err != nil {
		t.Fatalf("generator: %v", err)
	}

	// 2. The same JSON straight onto the raw topic, as kcat would (no headers).
	kcatCfg := cfg
	// Negative shares mean none (zero means the default).
	kcatCfg.Seed, kcatCfg.Records, kcatCfg.BadShare, kcatCfg.NationalShare, kcatCfg.NationalOnlyShare = seed+100, 20, -1, -1, -1
	kcatCfg.RevisionShare, kcatCfg.DeleteShare = -1, -1
	kcatItems, err := synth.Generate(kcatCfg)
	if err != nil {
		t.Fatal(err)
	}
	kcatItems = produceRaw(t, operator(t, st), kcatItems)
	kcatWant := synth.Expect(kcatItems)

	wantActivity := int64(want.Activities + kcatWant.Activities)
	s.waitFor(fmt.Sprintf("%d activities and %d rejected records in ClickHouse", wantActivity, want.Rejected), 3*time.Minute, func() bool {
		return s.activity() == wantActivity && s.rejectedRecords() == int64(want.Rejected)
	})

	// Records written straight to the raw topic are provider records with a
	// submission id naming their position.
	if n := s.count("SELECT count() FROM " + database + ".activity_current WHERE submission_id LIKE 'kafka-dmic.raw-%' AND source = 'provider'"); n != int64(kcatWant.Activities) {
		t.Errorf("raw-topic records in ClickHouse as provider records = %d, want %d", n, kcatWant.Activities)
	}

	// Nothing twice: every record key once in the analysts' view, whatever was replayed.
	if d := s.count("SELECT count() FROM (SELECT record_key, count() AS c FROM " + database + ".activity_current GROUP BY record_key HAVING c > 1)"); d != 0 {
		t.Errorf("activity_current holds %d duplicate rows", d)
	}
	for _, name := range []string{"validate", "load", "reconcile"} {
		if st.Procs[name].Starts() < 2 {
			t.Errorf("%s was not restarted after kill -9", name)
		}
	}

	// Rule ids of the bad records are all there.
	for rule := range want.ByRule {
		if n := s.count("SELECT count() FROM " + database + ".rejections FINAL WHERE rule_id = '" + rule + "'"); n < 1 {
			t.Errorf("no rejection with rule %s (generator made %d)", rule, want.ByRule[rule])
		}
	}
	// Pseudonyms, commissioners and reconciliation statuses are present.
	if n := s.count("SELECT count() FROM " + database + ".activity_current WHERE length(pseudo_nhs_number) = 64"); n < wantActivity*8/10 {
		t.Errorf("only %d of %d activities have a pseudonym", n, wantActivity)
	}
	// Every activity has a commissioner, but the CAM scenarios the
	// generator expects none for (C-2 with no NHS England contract).
	if n, none := s.count("SELECT count() FROM "+database+".activity_current WHERE commissioner_code != ''"), unassignedExpected(items); n != wantActivity-none {
		t.Errorf("%d of %d activities have a commissioner, want all but the %d the generator expects none for", n, wantActivity, none)
	}
	// Commissioner assignment: every CAM step taken, each scenario as expected.
	checkCAM(t, s, st, items, want)
	// Each year's activity re-run under the other year's CAM version.
	checkRerun(ctx, t, s, ref)
	for _, status := range []string{"matched", "mismatched", "local_only", "national_only"} {
		s.waitFor("reconciliation status "+status, time.Minute, func() bool {
			return s.count("SELECT count() FROM "+database+".reconciliation FINAL WHERE status = '"+status+"'") > 0
		})
	}

	// 3. Pausing validate stops the flow after it; resuming drains the
	// backlog. Only an operator may: the real binaries refuse anyone else.
	refusedFrom := time.Now().Add(-time.Second) // the audit table's time is to the second
	for file, want := range map[string]codes.Code{"": codes.Unauthenticated, devpki.AnalystFile: codes.PermissionDenied, devpki.KeyCustodianFile: codes.PermissionDenied} {
		if _, err := s.controlAs("validate", file).Pause(ctx, &dmicv1.PauseRequest{}); grpcstatus.Code(err) != want {
			t.Errorf("pause with certificate %q: %v, want %v", file, err, want)
		}
	}
	// Each refusal is on the audit trail, and load has put it in
	// ClickHouse's audit table, where the analyst reads who was refused:
	// the caller's role (none without a certificate) and the reason.
	for role, reason := range map[identity.Role]string{"": identity.ReasonNoCredentials, identity.Analyst: access.ReasonRole, identity.KeyCustodian: access.ReasonRole} {
		q := fmt.Sprintf("SELECT count() FROM %s.%s FINAL WHERE service = 'validate' AND action = '/dmic.v1.ControlService/Pause' "+
			"AND outcome = 'refused' AND caller_role = '%s' AND reason = '%s' AND time >= toDateTime(%d)", database, chstore.TableAudit, role, reason, refusedFrom.Unix())
		s.waitFor(fmt.Sprintf("the refused pause of %q in the audit table", role), time.Minute, func() bool { return s.count(q) >= 1 })
	}
	ctl := s.control("validate")
	if _, err := ctl.Pause(ctx, &dmicv1.PauseRequest{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	before := s.activity()
	pausedCfg := kcatCfg
	pausedCfg.Seed = seed + 200
	pausedItems, _ := synth.Generate(pausedCfg)
	pausedItems = produceRaw(t, operator(t, st), pausedItems)
	pausedWant := int64(synth.Expect(pausedItems).Activities)
	s.waitFor("lag to build up on validate", 30*time.Second, func() bool { return s.status("validate").ConsumerLag > 0 })
	time.Sleep(2 * time.Second)
	if got := s.activity(); got != before {
		t.Errorf("activity grew from %d to %d while validate was paused", before, got)
	}
	if !s.status("validate").Paused {
		t.Error("validate does not report paused")
	}
	if _, err := ctl.Resume(ctx, &dmicv1.ResumeRequest{}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("backlog drained after resume", 2*time.Minute, func() bool { return s.activity() == before+pausedWant })
	s.waitFor("validate lag back to 0", time.Minute, func() bool { return s.status("validate").ConsumerLag == 0 })

	// 4. No identifier anywhere after de-identification.
	all := append(append(append([]synth.Item{}, items...), kcatItems...), pausedItems...)
	ids := identifiers(all, cfg)
	ctx2 := context.Background()
	found, err := ids.ScanClickHouse(ctx2, s.conn, database)
	if err != nil {
		t.Fatal(err)
	}
	noLeaks(t, found)
	found, counts, err := ids.ScanTopics(ctx2, operator(t, st), leakguard.AfterDeidentification)
	if err != nil {
		t.Fatal(err)
	}
	noLeaks(t, found)
	for _, topic := range []string{topics.Deidentified, topics.Assigned, topics.Reconciled, topics.NationalReturn, topics.ValidationOutcomes, topics.Submissions} {
		if counts[topic] == 0 {
			t.Errorf("topic %s is empty: the scan saw nothing", topic)
		}
	}
	noLeaks(t, ids.ScanText("service logs", s.logs.String()))

	// The scanner must be able to see identifiers: the raw topic holds them.
	var raw strings.Builder
	if _, err := leakguard.ReadTopic(ctx2, operator(t, st), topics.Raw, func(m kafka.Message) { raw.Write(m.Value) }); err != nil {
		t.Fatal(err)
	}
	if n := ids.Count(raw.String()); n < ids.Len()/2 {
		t.Errorf("leak scanner found only %d of %d identifiers on the raw topic: it cannot be trusted", n, ids.Len())
	}

	// 5. No ClickHouse password on a command line or in a log line.
	noPasswordShown(t, st, s.logs.String())
}

// noPasswordShown checks that no password of the stack's ClickHouse users is
// on the command line of a running service (what ps and /proc/<pid>/cmdline
// show every user of the machine), in the services' logs, or in the
// server's own logs and configuration (which hold hashes).
func noPasswordShown(t *testing.T, st *devstack.Stack, logs string) {
	t.Helper()
	places := map[string]string{"service logs": logs}
	for name, p := range st.Procs {
		places[name+"'s command line (as started)"] = strings.Join(p.Args, " ")
		if pid := p.Pid(); pid != 0 {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
				places[name+"'s /proc cmdline"] = string(b)
			}
		}
	}
	// A server chserver started (here, or by chservertest) keeps its
	// configuration and logs beside its secrets folder.
	dir := filepath.Dir(st.CH.Secrets)
	files, _ := filepath.Glob(filepath.Join(dir, "log", "*"))
	files = append(files, filepath.Join(dir, "users.xml"), filepath.Join(dir, "config.xml"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			places[f] = string(b)
		}
	}
	for _, user := range chaccess.Names() {
		s, err := secret.FromFile(st.CH.PasswordFile(user))
		if err != nil {
			t.Fatal(err)
		}
		for where, text := range places {
			if strings.Contains(text, s.Reveal()) {
				t.Errorf("%s's ClickHouse password is in %s", user, where)
			}
		}
	}
	if p := st.Procs["load"]; !strings.Contains(strings.Join(p.Args, " "), "-clickhouse-password-file "+st.CH.PasswordFile(chaccess.Writer)) {
		t.Errorf("load was not given the writer's password file: %q", p.Args)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func killHard(t *testing.T, st *devstack.Stack, name string) {
	t.Helper()
	p := st.Procs[name]
	pid := p.Pid()
	if pid == 0 {
		t.Fatalf("%s is not running", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s: %v", name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.Starts() < 2 || p.Pid() == pid {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not restarted", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// operator is the stack's broker as the operators' principal, as kcat and
// the leak guard connect.
func operator(t *testing.T, st *devstack.Stack) kafkaconn.Cluster {
	t.Helper()
	c, err := st.Kafka(topics.Operator)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// produceRaw writes items' JSON to the raw topic without headers, as
// `kcat -P -t dmic.raw` does (as the operators' principal): only provider
// records, which it returns.
func produceRaw(t *testing.T, c kafkaconn.Cluster, items []synth.Item) []synth.Item {
	t.Helper()
	w := &kafka.Writer{Addr: c.Addr(), Transport: c.Transport(), Topic: topics.Raw, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	var sent []synth.Item
	for _, it := range items {
		if it.Source != dmicv1.Source_SOURCE_PROVIDER {
			continue
		}
		sent = append(sent, it)
		msgs = append(msgs, kafka.Message{Value: it.JSON})
	}
	if len(msgs) == 0 {
		t.Fatal("nothing to produce")
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	return sent
}

// identifiers lists the NHS numbers, postcodes, dates of birth and local
// patient ids submitted. Dates of birth that fall inside the activity period
// are left out: they can legitimately equal some record's activity date.
func identifiers(items []synth.Item, cfg synth.Config) *leakguard.Identifiers {
	notBefore := "2024-01-01"
	if !cfg.Start.IsZero() && cfg.Start.Format(time.DateOnly) < notBefore {
		notBefore = cfg.Start.Format(time.DateOnly)
	}
	ps := make([]leakguard.Patient, len(items))
	for i, it := range items {
		ps[i] = leakguard.Patient{NHSNumber: it.NHSNumber, Postcode: it.Postcode, BirthDate: it.BirthDate, LocalPatientID: it.LocalPatientID}
	}
	return leakguard.NewIdentifiers(ps, notBefore)
}

// noLeaks fails for every finding; a finding names where and what kind,
// never the value.
// checkNoLeaks scans what an IG lead would for the identifiers of a test's
// records: database db of ClickHouse, every topic after de-identification
// and the services' logs; and checks the scan can see them where they are
// allowed, on the raw topic (at least half: lines refused at the door never
// reach it), so a clean scan means something.
func checkNoLeaks(ctx context.Context, t *testing.T, s *stackUnderTest, ids *leakguard.Identifiers, db string) {
	t.Helper()
	found, err := ids.ScanClickHouse(ctx, s.conn, db)
	if err != nil {
		t.Fatal(err)
	}
	noLeaks(t, found)
	found, _, err = ids.ScanTopics(ctx, operator(t, s.Stack), leakguard.AfterDeidentification)
	if err != nil {
		t.Fatal(err)
	}
	noLeaks(t, found)
	noLeaks(t, ids.ScanText("service logs", s.logs.String()))
	var raw strings.Builder
	if _, err := leakguard.ReadTopic(ctx, operator(t, s.Stack), topics.Raw, func(m kafka.Message) { raw.Write(m.Value) }); err != nil {
		t.Fatal(err)
	}
	if n := ids.Count(raw.String()); n < ids.Len()/2 {
		t.Errorf("the leak scan finds only %d of %d identifiers on the raw topic: it cannot be trusted", n, ids.Len())
	}
}

func noLeaks(t *testing.T, fs []leakguard.Finding) {
	t.Helper()
	for i, f := range fs {
		if i == 10 {
			t.Errorf("... %d findings in all", len(fs))
			break
		}
		t.Errorf("identifier found: %s", f)
	}
}
