package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/devstack"
)

// memoryRecords is how many records TestReconcileMemory feeds reconcile:
// DMIC_RECONCILE_MEMORY_RECORDS, else 200,000 (half the keys' local copies,
// then their national copies: 100,000 match keys of state).
func memoryRecords(t *testing.T) int { return envRecords(t, "DMIC_RECONCILE_MEMORY_RECORDS", 200_000) }

// envRecords is the number of records in the environment variable env, else def.
func envRecords(t *testing.T, env string, def int) int {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		t.Fatalf("%s=%q: want a number of records, at least 2", env, v)
	}
	return n
}

// memoryBoundMB is the one memory assertion of the tests, and a generous
// one: the aim is 150 MB at 1,000,000 records (issue 15), the state on the
// heap took about 940 MB at 200,000, and the store keeps reconcile near 100
// MB at either size (docs/performance.md). Twice the aim fails only on a
// return of state to the heap, not on noise.
const memoryBoundMB = 300

// TestReconcileMemory runs the reconcile binary, as make run does, on a
// broker process of its own, feeds it memoryRecords() records, and reports
// its peak resident memory (VmHWM) and CPU; then it starts a second
// instance with an empty state directory, which restores every partition
// from the changelog, and reports the same. The numbers are for
// docs/performance.md; the only assertion is memoryBoundMB.
func TestReconcileMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds reconcile a few hundred thousand records")
	}
	n := memoryRecords(t)
	bin := t.TempDir()
	if err := devstack.Build(context.Background(), "../..", bin, "broker", "reconcile"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := t.TempDir()
	creds := filepath.Join(dir, "kafka-credentials")
	port := freePortNumber(t)
	brokerCmd := exec.CommandContext(ctx, filepath.Join(bin, "broker"), "-port", strconv.Itoa(port), "-data-dir", "",
		"-credentials-dir", creds)
	brokerLog := &syncBuffer{}
	brokerCmd.Stdout, brokerCmd.Stderr = brokerLog, brokerLog
	brokerCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := brokerCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = brokerCmd.Process.Kill(); _ = brokerCmd.Wait() }()
	addr := "localhost:" + strconv.Itoa(port)
	admin := clusterAs(t, addr, creds, topics.Admin)
	waitForTopic(t, ctx, admin, topics.Assigned)

	pki := devpki.Dir{Path: filepath.Join(dir, "pki")}
	if _, err := pki.Ensure(time.Now(), devpki.Subjects([]string{"reconcile"}, nil)); err != nil {
		t.Fatal(err)
	}
	status, err := pki.DialOption(devpki.OperatorFile)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	produceAssigned(t, ctx, admin, n)
	t.Logf("produced %d assigned records in %v", n, time.Since(start).Round(time.Millisecond))

	run := func(name, stateDir string, want int64) {
		t.Helper()
		grpcAddr := "localhost:" + strconv.Itoa(freePortNumber(t))
		opsAddr := "localhost:" + strconv.Itoa(freePortNumber(t))
		logs := &syncBuffer{}
		cert := devpki.ServiceFile("reconcile")
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "reconcile"), "-brokers", addr, "-grpc-addr", grpcAddr, "-ops-addr", opsAddr,
			"-tls-cert", pki.Cert(cert), "-tls-key", pki.Key(cert), "-tls-client-ca", pki.CA(),
			"-kafka-compression", "none", "-kafka-sasl-password-file", broker.PasswordFile(creds, topics.ServicePrincipal("reconcile")),
			"-state-dir", stateDir)
		cmd.Stdout, cmd.Stderr = logs, logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // not left behind if the test dies
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		began := time.Now()
		deadline := began.Add(10 * time.Minute)
		if d, ok := t.Deadline(); ok && d.Add(-30*time.Second).Before(deadline) {
			deadline = d.Add(-30 * time.Second)
		}
		for processed(grpcAddr, status) < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: processed %d of %d in time\n%s", name, processed(grpcAddr, status), want, tail(logs.String(), 40))
			}
			time.Sleep(200 * time.Millisecond)
		}
		took := time.Since(began)
		rss := vmHWMMB(t, cmd.Process.Pid)
		rssNow := statusFields(cmd.Process.Pid, "RssAnon", "RssFile")
		cpu := cpuSeconds(t, cmd.Process.Pid)
		t.Logf("%s: %d messages in %v (with start-up); peak RSS %d MB; CPU %.1f s (%.3f s per 1,000 records); now: %s, %s",
			name, want, took.Round(time.Millisecond), rss, cpu, cpu*1000/float64(want), rssNow, metricsOf(opsAddr,
				"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "dmic_reconcile_store_memory_bytes", "dmic_reconcile_store_disk_bytes"))
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "changelog partition read") {
				t.Logf("%s: %s", name, line[strings.Index(line, "msg="):])
			}
		}
		if rss > memoryBoundMB {
			t.Errorf("%s: peak RSS %d MB, above %d MB: is the state back on the heap?", name, rss, memoryBoundMB)
		}
	}
	run("reconcile", filepath.Join(dir, "state-1"), int64(n))

	// A second instance, alone in the group after the first stopped, with
	// an empty state directory: it restores every partition it is given from
	// the changelog, then processes one more record per partition.
	produceAssigned(t, ctx, admin, 2*topics.DefaultPartitions)
	run("reconcile with an empty store", filepath.Join(dir, "state-2"), int64(2*topics.DefaultPartitions))
}

// metricsOf is the named metrics of the service at addr, in MB.
func metricsOf(addr string, names ...string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n+" "); ok {
				v, _ := strconv.ParseFloat(rest, 64)
				out = append(out, fmt.Sprintf("%s %.0f MB", n, v/(1<<20)))
			}
		}
	}
	return strings.Join(out, ", ")
}

// metricValue is the value of the sample named (with its labels) at addr's
// /metrics, 0 if there is none.
func metricValue(addr, sample string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

func freePortNumber(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func clusterAs(t *testing.T, addr, creds, principal string) kafkaconn.Cluster {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pw, err := secret.FromFile(broker.PasswordFile(creds, principal))
		if err == nil {
			c, err := kafkaconn.New([]string{addr}, kafkaconn.Auth{Mechanism: broker.Mechanism, User: principal, Password: pw}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("credentials of %s: %v", principal, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitForTopic(t *testing.T, ctx context.Context, c kafkaconn.Cluster, topic string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		meta, err := c.Client(5*time.Second).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(meta.Topics) == 1 && meta.Topics[0].Error == nil && len(meta.Topics[0].Partitions) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// produceAssigned writes n records to dmic.assigned as assign would: n/2
// match keys, each with its provider copy and then (later in the stream)
// its national copy, one in ten differing in HRG. Each key is new.
func produceAssigned(t *testing.T, ctx context.Context, c kafkaconn.Cluster, n int) {
	t.Helper()
	w := kafkapipe.NewWriter(c, kafkapipe.WithCompression(0))
	defer w.Close()
	keys := n / 2
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	const chunk = 5000
	msgs := make([]kafka.Message, 0, chunk)
	flush := func() {
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[:0]
	}
	for i := range 2 * keys {
		k, src := i%keys, dmicv1.Source_SOURCE_PROVIDER
		if i >= keys {
			src = dmicv1.Source_SOURCE_NATIONAL
		}
		hrg := "HN12A"
		if src == dmicv1.Source_SOURCE_NATIONAL && k%10 == 0 {
			hrg = "HN12B"
		}
		r := assignedRecord(run, k, src, hrg)
		v, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: topics.Assigned, Key: []byte(r.MatchKey), Value: v})
		if len(msgs) == chunk {
			flush()
		}
	}
	if len(msgs) > 0 {
		flush()
	}
}

func assignedRecord(run string, k int, src dmicv1.Source, hrg string) *dmicv1.DeidentifiedRecord {
	id := run + "-" + strconv.Itoa(k)
	submitter := "RXX"
	if src == dmicv1.Source_SOURCE_NATIONAL {
		submitter = "X26"
	}
	return &dmicv1.DeidentifiedRecord{
		Header:   &dmicv1.EnvelopeHeader{RecordKey: submitter + "|apc|" + id, Source: src, Dataset: dmicv1.Dataset_DATASET_APC, Version: 1},
		MatchKey: "apc|RXX|" + id,
		Activity: &dmicv1.DeidentifiedActivity{ProviderCode: "RXX", ActivityDate: "2026-03-01", PseudoNhsNumber: strings.Repeat("ab", 32),
			PseudonymKeyVersion: "dev-1", UpdateType: dmicv1.UpdateType_UPDATE_TYPE_REPLACE,
			Activity: &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{HrgCode: hrg, TreatmentFunctionCode: "100",
				PrimaryDiagnosisIcd: "K359", AdmissionMethodCode: "21", PatientClassificationCode: "1", EndDateEpisode: "2026-03-04"}}},
		Assignment: &dmicv1.Assignment{CommissionerCode: "36L"},
	}
}

func processed(addr string, creds grpc.DialOption) int64 {
	conn, err := grpc.NewClient(addr, creds)
	if err != nil {
		return 0
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := dmicv1.NewControlServiceClient(conn).GetStatus(ctx, &dmicv1.GetStatusRequest{})
	if err != nil {
		return 0
	}
	return st.Processed
}

func vmHWMMB(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("no VmHWM for pid %d", pid)
	return 0
}

// statusFields is the named fields of /proc/<pid>/status, as written there.
func statusFields(pid int, names ...string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n+":"); ok {
				out = append(out, n+" "+strings.Join(strings.Fields(rest), " "))
			}
		}
	}
	return strings.Join(out, ", ")
}

// cpuSeconds is the process's user and system CPU time.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command (in parentheses, which may hold spaces):
	// utime and stime are the 14th and 15th fields of the line.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	const ticks = 100 // CLK_TCK on Linux
	return (utime + stime) / ticks
}
