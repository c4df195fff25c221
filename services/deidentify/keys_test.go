package deidentify_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	deidv1 "github.com/dmic-nhs/dmic/proto/dmic/deid/v1"
	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/deidentify"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/clock/clocktest"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/topicstest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startBroker starts a real broker with dmic's topics, and returns it as
// deidentify's principal (what the code under test connects as) and as the
// superuser (the test's own feeding and reading).
func startBroker(t *testing.T) (svc, admin kafkaconn.Cluster) {
	t.Helper()
	b := topicstest.Broker(t, 3)
	return brokertest.As(t, b, deidentify.Access().Principal), brokertest.Admin(t, b)
}

// newKeyDir generates a key directory with analytics/v1 and national-return/v1.
func newKeyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	for _, domain := range didi.Domains() {
		if err := didi.GenerateKeyFile(filepath.Join(dir, domain, "v1.key"), "v1"); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// secretsIn lists the hex secrets of every key file under dir.
func secretsIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, secret, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
		out = append(out, secret)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// instance is one deidentify process: its key service, following the log,
// and its stage.
type instance struct {
	keys  *deidentify.KeyService
	stage *deidentify.Stage
	// followErr receives what FollowLog returned.
	followErr chan error
}

func sampleRef(t *testing.T) *refdata.Reference {
	t.Helper()
	ref, err := refdata.LoadDir("../../reference/sample")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// startInstance loads dir and follows the rotation log; it returns once the
// log is replayed, or with the error that stopped the follower.
func startInstance(t *testing.T, ctx context.Context, c kafkaconn.Cluster, dir string) (*instance, error) {
	t.Helper()
	ring, err := didi.LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := sampleRef(t)
	w := kafkapipe.NewWriter(c)
	t.Cleanup(func() { w.Close() })
	keys := deidentify.NewKeyService(ring, kafkalog.New(c, topics.KeyRotations, w),
		deidentify.NewReplayer(kafkapipe.RangeOpener(c), kafkapipe.Sink{W: w}, ref, quiet), quiet, deidentify.WithClock(clocktest.Clock(t)))
	in := &instance{keys: keys, stage: deidentify.New(didi.NewDeidentifier(keys, ref)), followErr: make(chan error, 1)}
	caught := make(chan struct{})
	fctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() { in.followErr <- keys.FollowLog(fctx, func() { close(caught) }) }()
	select {
	case <-caught:
		return in, nil
	case err := <-in.followErr:
		return nil, err
	case <-time.After(20 * time.Second):
		t.Fatal("rotation log not replayed within 20s")
	}
	return nil, nil
}

func mustStart(t *testing.T, ctx context.Context, c kafkaconn.Cluster, dir string) *instance {
	t.Helper()
	in, err := startInstance(t, ctx, c, dir)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return in
}

// activity de-identifies the test APC record (NHS number nhs).
func (in *instance) activity(t *testing.T, nhs string) *dmicv1.DeidentifiedActivity {
	t.Helper()
	v := validated(dmicv1.Dataset_DATASET_APC)
	v.Record.Patient.NhsNumber = nhs
	outs, err := in.stage.Process(context.Background(), message(t, v))
	if err != nil {
		t.Fatal(err)
	}
	var dr dmicv1.DeidentifiedRecord
	if err := proto.Unmarshal(outs[0].Value, &dr); err != nil {
		t.Fatal(err)
	}
	return dr.GetActivity()
}

func nationalPseudonym(a *dmicv1.DeidentifiedActivity) *dmicv1.DomainPseudonym {
	for _, p := range a.GetDomainPseudonyms() {
		if p.GetDomain() == didi.DomainNationalReturn {
			return p
		}
	}
	return nil
}

func listKeys(t *testing.T, in *instance) []string {
	t.Helper()
	resp, err := in.keys.ListKeys(context.Background(), &deidv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range resp.GetKeys() {
		out = append(out, fmt.Sprintf("%s/%s active=%v file=%s", k.GetDomain(), k.GetVersion(), k.GetActive(), k.GetFile()))
	}
	return out
}

// TestRotateKey rotates the analytics key on one instance: new records on it,
// on another instance following the same log, and on a restarted instance
// get pseudonyms of the new version; the national-return key is untouched.
func TestRotateKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, admin := startBroker(t)
	dir := newKeyDir(t)
	a := mustStart(t, ctx, svc, dir)
	b := mustStart(t, ctx, svc, dir)

	before := a.activity(t, nhsNumber)
	if before.GetPseudonymKeyVersion() != "v1" || b.activity(t, nhsNumber).GetPseudoNhsNumber() != before.GetPseudoNhsNumber() {
		t.Fatalf("before rotation: version %q; instances agree: %v", before.GetPseudonymKeyVersion(),
			b.activity(t, nhsNumber).GetPseudoNhsNumber() == before.GetPseudoNhsNumber())
	}

	// The pipeline goroutine keeps de-identifying while the rotation runs
	// (the race detector checks the swap).
	stopPipeline := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	busy := message(t, validated(dmicv1.Dataset_DATASET_APC))
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopPipeline:
				return
			default:
				_, _ = a.stage.Process(context.Background(), busy)
			}
		}
	}()
	resp, err := a.keys.RotateKey(ctx, &deidv1.RotateKeyRequest{Domain: didi.DomainAnalytics, Version: "v2", Generate: true})
	close(stopPipeline)
	wg.Wait()
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if k := resp.GetKey(); k.GetVersion() != "v2" || !k.GetActive() || k.GetFile() != "analytics/v2.key" || resp.GetPreviousVersion() != "v1" {
		t.Errorf("RotateKey = %v, want analytics/v2 active, previously v1", resp)
	}
	st, err := os.Stat(filepath.Join(dir, "analytics", "v2.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("generated key file: %v, mode %v; want 0600", err, st)
	}

	after := a.activity(t, nhsNumber)
	if after.GetPseudonymKeyVersion() != "v2" || after.GetPseudoNhsNumber() == before.GetPseudoNhsNumber() || len(after.GetPseudoNhsNumber()) != 64 {
		t.Errorf("instance A after rotation: version %q, pseudonym changed %v", after.GetPseudonymKeyVersion(), after.GetPseudoNhsNumber() != before.GetPseudoNhsNumber())
	}
	if nationalPseudonym(after).GetPseudonym() != nationalPseudonym(before).GetPseudonym() || nationalPseudonym(after).GetKeyVersion() != "v1" {
		t.Errorf("the national-return pseudonym changed with the analytics key: %v -> %v", nationalPseudonym(before), nationalPseudonym(after))
	}

	// B follows the log; it has no call of its own.
	deadline := time.Now().Add(20 * time.Second)
	for b.activity(t, nhsNumber).GetPseudonymKeyVersion() != "v2" {
		if time.Now().After(deadline) {
			t.Fatal("instance B did not apply the rotation within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := b.activity(t, nhsNumber).GetPseudoNhsNumber(); got != after.GetPseudoNhsNumber() {
		t.Error("instances A and B give different v2 pseudonyms")
	}

	// A restart replays the log before its first record.
	c := mustStart(t, ctx, svc, dir)
	if got := c.activity(t, nhsNumber); got.GetPseudonymKeyVersion() != "v2" || got.GetPseudoNhsNumber() != after.GetPseudoNhsNumber() {
		t.Errorf("restarted instance: version %q, same pseudonym %v; want v2's", got.GetPseudonymKeyVersion(), got.GetPseudoNhsNumber() == after.GetPseudoNhsNumber())
	}
	want := []string{
		"analytics/v1 active=false file=analytics/v1.key",
		"analytics/v2 active=true file=analytics/v2.key",
		"national-return/v1 active=true file=national-return/v1.key",
	}
	for name, in := range map[string]*instance{"A": a, "B": b, "restarted": c} {
		if got := listKeys(t, in); !slices.Equal(got, want) {
			t.Errorf("ListKeys on %s = %v, want %v", name, got, want)
		}
	}

	// Back to v1, which is still loaded, without generating.
	if _, err := a.keys.RotateKey(ctx, &deidv1.RotateKeyRequest{Domain: didi.DomainAnalytics, Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if got := a.activity(t, nhsNumber); got.GetPseudoNhsNumber() != before.GetPseudoNhsNumber() {
		t.Error("rotating back to v1 did not give the v1 pseudonyms back")
	}

	secrets := secretsIn(t, dir)
	for _, tc := range []struct {
		name string
		req  *deidv1.RotateKeyRequest
		code codes.Code
		msg  string
	}{
		{"generate an existing version", &deidv1.RotateKeyRequest{Domain: didi.DomainAnalytics, Version: "v2", Generate: true}, codes.AlreadyExists, "already loaded"},
		{"unknown domain", &deidv1.RotateKeyRequest{Domain: "commissioner-x", Version: "v1", Generate: true}, codes.InvalidArgument, "no domain"},
		{"bad version", &deidv1.RotateKeyRequest{Domain: didi.DomainAnalytics, Version: "../x", Generate: true}, codes.InvalidArgument, "key version"},
		{"no such key file", &deidv1.RotateKeyRequest{Domain: didi.DomainNationalReturn, Version: "v7"}, codes.FailedPrecondition, "v7.key"},
	} {
		_, err := a.keys.RotateKey(ctx, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v mentioning %q", tc.name, err, tc.code, tc.msg)
		}
		for _, s := range secrets {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("%s: error holds a secret", tc.name)
			}
		}
	}
	// A key file refused at load never reaches the log.
	short := filepath.Join(dir, didi.DomainNationalReturn, "v3.key")
	if err := os.WriteFile(short, []byte("v3:"+hex.EncodeToString([]byte("too short"))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.keys.RotateKey(ctx, &deidv1.RotateKeyRequest{Domain: didi.DomainNationalReturn, Version: "v3"}); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "at least 32") {
		t.Errorf("rotate to a short key: %v, want FailedPrecondition", err)
	}
	if got := listKeys(t, a); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "v3") }) {
		t.Errorf("a refused key is listed: %v", got)
	}

	// The log holds versions, never a secret.
	for _, m := range readTopic(t, ctx, admin, topics.KeyRotations) {
		var rot deidentify.Rotation
		if err := json.Unmarshal(m.Value, &rot); err != nil || rot.Domain == "" || rot.Version == "" {
			t.Errorf("log entry %s: %v", m.Value, err)
		}
		// Stamped by the key service's clock, not the wall clock.
		if !rot.Time.Equal(clocktest.Today(t)) {
			t.Errorf("log entry %s: time %v, want the clock's %v", m.Value, rot.Time, clocktest.Today(t))
		}
		for _, s := range secrets {
			if strings.Contains(string(m.Value), s) {
				t.Errorf("log entry %s holds a secret", m.Value)
			}
		}
	}
}

// A rotation the instance cannot apply (its key file is missing here)
// refuses the start, unless a later rotation of the domain supersedes it,
// and stops a running instance.
func TestRotationLogNamesMissingKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, _ := startBroker(t)
	dir := newKeyDir(t)
	w := kafkapipe.NewWriter(svc)
	defer w.Close()
	log := kafkalog.New(svc, topics.KeyRotations, w)
	publish := func(domain, version string) {
		t.Helper()
		doc, _ := json.Marshal(deidentify.Rotation{Domain: domain, Version: version})
		if err := log.Publish(ctx, domain, doc); err != nil {
			t.Fatal(err)
		}
	}

	publish(didi.DomainAnalytics, "gone") // a retired key, superseded below
	if err := didi.GenerateKeyFile(filepath.Join(dir, "analytics", "v2.key"), "v2"); err != nil {
		t.Fatal(err)
	}
	publish(didi.DomainAnalytics, "v2")
	in := mustStart(t, ctx, svc, dir)
	if got := in.activity(t, nhsNumber).GetPseudonymKeyVersion(); got != "v2" {
		t.Errorf("after replay: version %q, want v2", got)
	}

	// Running: a rotation to a key this instance lacks stops it.
	publish(didi.DomainNationalReturn, "elsewhere")
	select {
	case err := <-in.followErr:
		if !errors.Is(err, deidentify.ErrRotationNotApplied) || !strings.Contains(err.Error(), "national-return/elsewhere") {
			t.Errorf("follower stopped with %v, want ErrRotationNotApplied naming national-return/elsewhere", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follower did not stop within 20s")
	}

	// Starting: refused, naming the key file and never a secret.
	_, err := startInstance(t, ctx, svc, dir)
	if !errors.Is(err, deidentify.ErrRotationNotApplied) || !strings.Contains(err.Error(), filepath.Join(dir, "national-return", "elsewhere.key")) {
		t.Fatalf("start = %v, want ErrRotationNotApplied naming the missing file", err)
	}
	for _, s := range secretsIn(t, dir) {
		if strings.Contains(err.Error(), s) {
			t.Error("refusal holds a secret")
		}
	}
}

// readTopic reads every message on every partition of a topic.
func readTopic(t *testing.T, ctx context.Context, c kafkaconn.Cluster, topic string) []kafka.Message {
	t.Helper()
	client := c.Client(10 * time.Second)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for _, p := range meta.Topics[0].Partitions {
		offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p.ID)}}})
		if err != nil {
			t.Fatal(err)
		}
		end := offs.Topics[topic][0].LastOffset
		if end <= 0 {
			continue
		}
		r := c.NewReader(kafka.ReaderConfig{Topic: topic, Partition: p.ID, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset >= end-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// TestRepseudonymise processes validated records with analytics key v1,
// rotates to v2, re-pseudonymises the time range, and finds the v2
// pseudonyms of the same records on dmic.deidentified; a record outside the
// range is not replayed and an unreadable one is dead-lettered again.
func TestRepseudonymise(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, admin := startBroker(t)
	dir := newKeyDir(t)
	a := mustStart(t, ctx, svc, dir)
	// The test feeds dmic.validated as validate would; the stage writes as
	// deidentify.
	feed := kafkapipe.NewWriter(admin)
	defer feed.Close()
	w := kafkapipe.NewWriter(svc)
	defer w.Close()

	from := time.Now().Add(-time.Minute)
	nhs := []string{nhsNumber, "4010232137", nhsNumber} // the first patient twice
	var msgs []kafka.Message
	for i, n := range nhs {
		v := validated(dmicv1.Dataset_DATASET_APC)
		v.Record.CdsUniqueIdentifier = fmt.Sprintf("BRJ7%020d", i)
		v.Header.RecordKey = "RJ7|apc|" + v.Record.CdsUniqueIdentifier
		v.Record.Patient.NhsNumber = n
		m := message(t, v)
		m.Key = []byte(v.Header.RecordKey)
		msgs = append(msgs, kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value})
	}
	msgs = append(msgs, kafka.Message{Topic: topics.Validated, Key: []byte("garbage"), Value: []byte{0x0a, 0x64, 0x01}})
	if err := feed.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	to := time.Now()
	time.Sleep(20 * time.Millisecond) // the next record's time is after to
	late := validated(dmicv1.Dataset_DATASET_APC)
	late.Record.CdsUniqueIdentifier = "BRJ7LATE"
	late.Header.RecordKey = "RJ7|apc|BRJ7LATE"
	lm := message(t, late)
	lm.Key = []byte(late.Header.RecordKey)
	if err := feed.WriteMessages(ctx, kafka.Message{Topic: lm.Topic, Key: lm.Key, Value: lm.Value}); err != nil {
		t.Fatal(err)
	}

	// The stage as the service runs it, with key v1.
	rctx, stopRunner := context.WithCancel(ctx)
	reader := kafkapipe.NewReader(svc, deidentify.Access().Group, topics.Validated)
	runner := pipeline.NewRunner(pipeline.Config{Stage: "deidentify"}, reader, a.stage, kafkapipe.Sink{W: w}, quiet, pipeline.NewMetrics(prometheus.NewRegistry()))
	done := make(chan error, 1)
	go func() { done <- runner.Run(rctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for runner.Processed() < int64(len(msgs)+1) {
		if time.Now().After(deadline) {
			t.Fatalf("first pass: %d of %d processed within 30s", runner.Processed(), len(msgs)+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopRunner()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	reader.Close()
	firstPass := deidentified(t, ctx, admin)
	for key, recs := range firstPass {
		if len(recs) != 1 || recs[0].GetActivity().GetPseudonymKeyVersion() != "v1" {
			t.Fatalf("first pass, %s: %v, want one v1 record", key, recs)
		}
	}

	if _, err := a.keys.RotateKey(ctx, &deidv1.RotateKeyRequest{Domain: didi.DomainAnalytics, Version: "v2", Generate: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := a.keys.Repseudonymise(ctx, &deidv1.RepseudonymiseRequest{From: timestamppb.New(from), To: timestamppb.New(to)})
	if err != nil {
		t.Fatalf("Repseudonymise: %v", err)
	}
	if resp.GetRecords() != int64(len(msgs)) || resp.GetRejected() != 1 ||
		resp.GetKeyVersions()[didi.DomainAnalytics] != "v2" || resp.GetKeyVersions()[didi.DomainNationalReturn] != "v1" {
		t.Errorf("Repseudonymise = %v, want %d records, 1 rejected, analytics v2, national-return v1", resp, len(msgs))
	}

	second := deidentified(t, ctx, admin)
	v2 := map[string]string{} // NHS number -> v2 pseudonym
	for i, n := range nhs {
		key := didi.MatchKey(dmicv1.Dataset_DATASET_APC, "RJ7", fmt.Sprintf("BRJ7%020d", i))
		recs := second[key]
		if len(recs) != 2 {
			t.Fatalf("%s: %d records on %s, want the first pass and the replay", key, len(recs), topics.Deidentified)
		}
		old, replayed := recs[0].GetActivity(), recs[1].GetActivity()
		if old.GetPseudonymKeyVersion() != "v1" || replayed.GetPseudonymKeyVersion() != "v2" ||
			replayed.GetPseudoNhsNumber() == old.GetPseudoNhsNumber() || len(replayed.GetPseudoNhsNumber()) != 64 {
			t.Errorf("%s: versions %q then %q; want v1 then v2 with a new pseudonym", key, old.GetPseudonymKeyVersion(), replayed.GetPseudonymKeyVersion())
		}
		if !proto.Equal(recs[0].GetHeader(), recs[1].GetHeader()) {
			t.Errorf("%s: the replay changed the header (and so the version downstream keys on)", key)
		}
		if nationalPseudonym(replayed).GetPseudonym() != nationalPseudonym(old).GetPseudonym() {
			t.Errorf("%s: the national-return pseudonym changed, its key did not", key)
		}
		if p, ok := v2[n]; ok && p != replayed.GetPseudoNhsNumber() {
			t.Error("one patient got two v2 pseudonyms")
		}
		v2[n] = replayed.GetPseudoNhsNumber()
	}
	if v2[nhs[0]] == v2[nhs[1]] {
		t.Error("two patients got one v2 pseudonym")
	}
	if got := len(second[didi.MatchKey(dmicv1.Dataset_DATASET_APC, "RJ7", "BRJ7LATE")]); got != 1 {
		t.Errorf("the record after the range is on %s %d times, want once (not replayed)", topics.Deidentified, got)
	}
	var deadLetters int
	for _, m := range readTopic(t, ctx, admin, topics.Rejected) {
		var dl dmicv1.DeadLetter
		if err := proto.Unmarshal(m.Value, &dl); err == nil && dl.GetStage() == "deidentify" && string(m.Key) == "garbage" {
			deadLetters++
		}
	}
	if deadLetters != 2 {
		t.Errorf("%d dead letters of the unreadable record, want 2 (first pass and replay)", deadLetters)
	}

	// An empty or inverted range.
	if resp, err := a.keys.Repseudonymise(ctx, &deidv1.RepseudonymiseRequest{From: timestamppb.New(to.Add(time.Hour)), To: timestamppb.New(to.Add(2 * time.Hour))}); err != nil || resp.GetRecords() != 0 {
		t.Errorf("empty range: %v, %v; want 0 records", resp, err)
	}
	if _, err := a.keys.Repseudonymise(ctx, &deidv1.RepseudonymiseRequest{From: timestamppb.New(to), To: timestamppb.New(from)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("inverted range: %v, want InvalidArgument", err)
	}
}

// deidentified reads dmic.deidentified, records per match key in offset order.
func deidentified(t *testing.T, ctx context.Context, c kafkaconn.Cluster) map[string][]*dmicv1.DeidentifiedRecord {
	t.Helper()
	out := map[string][]*dmicv1.DeidentifiedRecord{}
	for _, m := range readTopic(t, ctx, c, topics.Deidentified) {
		var dr dmicv1.DeidentifiedRecord
		if err := proto.Unmarshal(m.Value, &dr); err != nil {
			t.Fatal(err)
		}
		out[string(m.Key)] = append(out[string(m.Key)], &dr)
	}
	return out
}
