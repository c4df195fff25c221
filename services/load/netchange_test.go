package load_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
	"github.com/dmic-nhs/dmic/services/reconcile/match"
)

// The CDS net change protocol, as analysts see it in activity_current
// (domain brief §3, "Submission protocol" [C]; docs/record-format.md,
// Replacing and deleting records):
//
//   - CDS UPDATE TYPE 9 is an original or a replacement, 1 a delete;
//   - CDS APPLICABLE DATE/TIME orders the versions ("SUS applies versions in
//     time order"), whatever order they arrive in;
//   - the CDS UNIQUE IDENTIFIER keys the record for its life, scoped by its
//     sender and data set.
//
// Each revision is made as the pipeline makes it: the provider's JSON line
// decoded by the format's decoder, its version computed by envelope.Header
// from its applicable date/time and its position on dmic.raw (arrival
// order), its match key by de-identification's MatchKey; reconciliation
// folds it in by match.Entry, and load writes both to a real ClickHouse. The
// choices where the text is silent (an equal applicable time, a replacement
// after a delete) are docs/record-format.md's.
func TestNetChangeInActivityCurrent(t *testing.T) {
	p, conn, db := newNetChange(t, "dmic_load_netchange")
	// Arrival order is the order of the calls: each revision is one batch.
	// ORIG: original, then replacement.
	p.send(provider("RJ7", "BRJ7ORIG", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7ORIG", "9", t2, "HN12B"))
	// LATE: the replacement arrives before the original it replaces.
	p.send(provider("RJ7", "BRJ7LATE", "9", t2, "HN12B"))
	p.send(provider("RJ7", "BRJ7LATE", "9", t1, "HN12A"))
	// DEL: a delete newer than the original removes the record.
	p.send(provider("RJ7", "BRJ7DEL", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7DEL", "1", t2, ""))
	// OLDDEL: a delete older than the current version deletes nothing.
	p.send(provider("RJ7", "BRJ7OLDDEL", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7OLDDEL", "9", t3, "HN12B"))
	p.send(provider("RJ7", "BRJ7OLDDEL", "1", t2, ""))
	// EARLYDEL: a delete that arrives before its original, which it post-dates.
	p.send(provider("RJ7", "BRJ7EARLYDEL", "1", t2, ""))
	p.send(provider("RJ7", "BRJ7EARLYDEL", "9", t1, "HN12A"))
	// TIEDEL / TIEORIG: an equal applicable time: the later arrival wins.
	p.send(provider("RJ7", "BRJ7TIEDEL", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7TIEDEL", "1", t1, ""))
	p.send(provider("RJ7", "BRJ7TIEORIG", "1", t1, ""))
	p.send(provider("RJ7", "BRJ7TIEORIG", "9", t1, "HN12A"))
	// REVIVE: a replacement after a delete, applicable after it, is the
	// record again (an original under the same identifier).
	p.send(provider("RJ7", "BRJ7REVIVE", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7REVIVE", "1", t2, ""))
	p.send(provider("RJ7", "BRJ7REVIVE", "9", t3, "HN12C"))
	// RESENT: the same record sent again (a re-sent submission) counts once.
	p.send(provider("RJ7", "BRJ7RESENT", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7RESENT", "9", t1, "HN12A"))
	// SAME: two providers using one identifier are two records.
	p.send(provider("RJ7", "BSAME1", "9", t1, "HN12A"))
	p.send(provider("RTH", "BSAME1", "9", t1, "HN12B"))
	// NOTIME: without an applicable date/time, the time of receipt orders
	// the versions: a later receipt replaces an earlier applicable time.
	p.send(provider("RJ7", "BRJ7NOTIME", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7NOTIME", "9", "", "HN12B"))
	// YEAR: last year's episode, deleted in the new year: the delete (no
	// activity date: stored at its received date) lies in another partition
	// of activity, which no background merge crosses.
	p.send(inYear2025(provider("RJ7", "BRJ7YEAR", "9", t1, "HN12A")))
	p.send(provider("RJ7", "BRJ7YEAR", "1", t2, ""))
	// MOVED: a replacement that moves the episode into another year, and a
	// late copy of the first version after it.
	p.send(inYear2025(provider("RJ7", "BRJ7MOVED", "9", t1, "HN12A")))
	p.send(provider("RJ7", "BRJ7MOVED", "9", t2, "HN12B"))
	p.send(inYear2025(provider("RJ7", "BRJ7MOVED", "9", t1, "HN12A")))
	for _, uid := range []string{"BRJ7YEAR", "BRJ7MOVED"} {
		if got := p.query(conn, "SELECT toString(toYear(activity_date)) FROM "+db+".activity WHERE cds_unique_identifier = ? GROUP BY activity_date", uid); !slices.Contains(got, "2025") || !slices.Contains(got, "2026") {
			t.Fatalf("%s: versions in the years %v, want 2025 and 2026 (two partitions)", uid, got)
		}
	}
	// Merges, as far as ClickHouse goes (within a partition): the answer
	// must not depend on when they happen.
	if err := conn.Exec(p.ctx, "OPTIMIZE TABLE "+db+".activity FINAL"); err != nil {
		t.Logf("OPTIMIZE: %v", err)
	}

	for _, c := range []struct {
		uid  string
		want []string // provider:hrg of each current row, sorted
	}{
		{"BRJ7ORIG", []string{"RJ7:HN12B"}},
		{"BRJ7LATE", []string{"RJ7:HN12B"}},
		{"BRJ7DEL", nil},
		{"BRJ7OLDDEL", []string{"RJ7:HN12B"}},
		{"BRJ7EARLYDEL", nil},
		{"BRJ7TIEDEL", nil},
		{"BRJ7TIEORIG", []string{"RJ7:HN12A"}},
		{"BRJ7REVIVE", []string{"RJ7:HN12C"}},
		{"BRJ7RESENT", []string{"RJ7:HN12A"}},
		{"BSAME1", []string{"RJ7:HN12A", "RTH:HN12B"}},
		{"BRJ7NOTIME", []string{"RJ7:HN12B"}},
		{"BRJ7YEAR", nil},
		{"BRJ7MOVED", []string{"RJ7:HN12B"}},
	} {
		got := p.current(conn, db, c.uid)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: activity_current = %v, want %v", c.uid, got, c.want)
		}
	}
}

// The same lives with the national copy alongside: what reconciliation
// says of each in activity_current (docs/reconciliation.md, Statuses).
func TestNetChangeReconciliationInActivityCurrent(t *testing.T) {
	p, conn, db := newNetChange(t, "dmic_load_netchange_rec")
	// MATCH: both copies agree.
	p.send(provider("RJ7", "BRJ7MATCH", "9", t1, "HN12A"))
	p.send(national("RJ7", "BRJ7MATCH", "9", t1, "HN12A"))
	// MIS: the national copy groups to another HRG.
	p.send(provider("RJ7", "BRJ7MIS", "9", t1, "HN12A"))
	p.send(national("RJ7", "BRJ7MIS", "9", t1, "HN12B"))
	// FIXED: a late older local version does not undo the fix.
	p.send(national("RJ7", "BRJ7FIXED", "9", t2, "HN12B"))
	p.send(provider("RJ7", "BRJ7FIXED", "9", t2, "HN12B"))
	p.send(provider("RJ7", "BRJ7FIXED", "9", t1, "HN12A"))
	// LDEL: the provider deleted its copy; the national one is left alone.
	p.send(provider("RJ7", "BRJ7LDEL", "9", t1, "HN12A"))
	p.send(national("RJ7", "BRJ7LDEL", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7LDEL", "1", t2, ""))
	// LREV: deleted then sent again: matched again.
	p.send(provider("RJ7", "BRJ7LREV", "9", t1, "HN12A"))
	p.send(national("RJ7", "BRJ7LREV", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7LREV", "1", t2, ""))
	p.send(provider("RJ7", "BRJ7LREV", "9", t3, "HN12A"))
	// NEARLY: the local delete arrived first; the original it post-dates
	// changes nothing.
	p.send(national("RJ7", "BRJ7NEARLY", "9", t1, "HN12A"))
	p.send(provider("RJ7", "BRJ7NEARLY", "1", t2, ""))
	p.send(provider("RJ7", "BRJ7NEARLY", "9", t1, "HN12A"))
	// NSAME: the national exchange sends two providers' records under one
	// identifier: two records, each matched with its own provider's copy.
	p.send(provider("RJ7", "BNSAME", "9", t1, "HN12A"))
	p.send(provider("RTH", "BNSAME", "9", t1, "HN12B"))
	p.send(national("RJ7", "BNSAME", "9", t1, "HN12A"))
	p.send(national("RTH", "BNSAME", "9", t1, "HN12B"))
	// DUPA / DUPB: one activity of one patient sent again under a changed
	// identifier: two records, which the match key cannot pair.
	p.send(withPseudonym(provider("RJ7", "BRJ7DUPA", "9", t1, "HN12A"), "p1"))
	p.send(withPseudonym(provider("RJ7", "BRJ7DUPB", "9", t2, "HN12A"), "p1"))
	// CHGL / CHGN: the national copy carries another identifier than the
	// provider's (changed after the first submission): local only beside
	// national only, one activity.
	p.send(withPseudonym(provider("RJ7", "BRJ7CHGL", "9", t1, "HN12A"), "p2"))
	p.send(withPseudonym(national("RJ7", "BRJ7CHGN", "9", t1, "HN12A"), "p2"))
	// COMM: submitted to 15N; CAM (here: the assignment) says 36L.
	p.send(submittedTo(provider("RJ7", "BRJ7COMM", "9", t1, "HN12A"), "15N"))
	// LATEMONTH: December's episode first sent in February.
	p.send(inYear2025(provider("RJ7", "BRJ7LATEMONTH", "9", t1, "HN12A")))
	// PRIV: a private patient (CAM step A) the provider submitted to 36L.
	priv := submittedTo(provider("RJ7", "BRJ7PRIV", "9", t1, "HN12A"), "36L")
	priv.assignment = &dmicv1.Assignment{CommissionerCode: "VPP00", CommissionerType: "Private", AssignmentMethod: "Private Patient"}
	p.send(priv)
	// SPEC: specialised activity (NHS England's hub) submitted to 36L.
	spec := submittedTo(provider("RJ7", "BRJ7SPEC", "9", t1, "HN12A"), "36L")
	spec.assignment = &dmicv1.Assignment{CommissionerCode: "13R", CommissionerType: "NHS England", AssignmentMethod: "NHSE (Contracted Specialised)"}
	p.send(spec)

	for _, c := range []struct {
		uid  string
		want []string // source:provider:hrg:status of each current row, sorted
	}{
		{"BRJ7MATCH", []string{"national:RJ7:HN12A:matched", "provider:RJ7:HN12A:matched"}},
		{"BRJ7MIS", []string{"national:RJ7:HN12B:mismatched", "provider:RJ7:HN12A:mismatched"}},
		{"BRJ7FIXED", []string{"national:RJ7:HN12B:matched", "provider:RJ7:HN12B:matched"}},
		{"BRJ7LDEL", []string{"national:RJ7:HN12A:national_only"}},
		{"BRJ7LREV", []string{"national:RJ7:HN12A:matched", "provider:RJ7:HN12A:matched"}},
		{"BRJ7NEARLY", []string{"national:RJ7:HN12A:national_only"}},
		{"BNSAME", []string{"national:RJ7:HN12A:matched", "national:RTH:HN12B:matched",
			"provider:RJ7:HN12A:matched", "provider:RTH:HN12B:matched"}},
		{"BRJ7DUPA", []string{"provider:RJ7:HN12A:local_only"}},
		{"BRJ7DUPB", []string{"provider:RJ7:HN12A:local_only"}},
		{"BRJ7CHGL", []string{"provider:RJ7:HN12A:local_only"}},
		{"BRJ7CHGN", []string{"national:RJ7:HN12A:national_only"}},
	} {
		got := p.currentWithStatus(conn, db, c.uid)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: activity_current = %v, want %v", c.uid, got, c.want)
		}
	}

	// The discrepancy queries of docs/reconciliation.md run, and find what
	// they say they find.
	queries := docQueries(t, "../../docs/reconciliation.md", "## Discrepancies")
	if len(queries) != 6 {
		t.Fatalf("docs/reconciliation.md, Discrepancies: %d queries, want 6 (A to F)", len(queries))
	}
	for i := range queries {
		queries[i] = strings.ReplaceAll(queries[i], "dmic.", db+".")
		p.run(conn, queries[i]) // each runs
	}
	if got := p.query(conn, "SELECT concat(submitted_commissioner_code, '>', commissioner_code) FROM ("+queries[0]+")"); !slices.Equal(got, []string{"15N>36L", "36L>13R", "36L>VPP00"}) {
		t.Errorf("query A (submitted commissioner differs from CAM) = %v, want [15N>36L 36L>13R 36L>VPP00]", got)
	}
	if got := p.query(conn, "SELECT concat(toString(sent_month), ':', toString(months_after), ':', toString(records)) FROM ("+queries[2]+")"); !slices.Equal(got, []string{"2026-02-01:2:1"}) {
		t.Errorf("query C (activity outside its reporting month) = %v, want [2026-02-01:2:1]", got)
	}
	if got := p.query(conn, "SELECT concat(assignment_method, ':', submitted_commissioner_code) FROM ("+queries[3]+")"); !slices.Equal(got, []string{"Private Patient:36L"}) {
		t.Errorf("query D (private, OSV or devolved submitted to a commissioner) = %v, want [Private Patient:36L]", got)
	}
	if got := p.query(conn, "SELECT concat(commissioner_code, ':', submitted_commissioner_code) FROM ("+queries[4]+")"); !slices.Equal(got, []string{"13R:36L"}) {
		t.Errorf("query E (specialised submitted to an ICB) = %v, want [13R:36L]", got)
	}
	if got := p.query(conn, "SELECT arrayStringConcat(arraySort(identifiers), ',') FROM ("+queries[1]+")"); !slices.Equal(got, []string{"BRJ7DUPA,BRJ7DUPB"}) {
		t.Errorf("query B (probable duplicates) = %v, want [BRJ7DUPA,BRJ7DUPB]", got)
	}
	if got := p.query(conn, "SELECT concat(local_identifier, '~', national_identifier) FROM ("+queries[5]+")"); !slices.Equal(got, []string{"BRJ7CHGL~BRJ7CHGN"}) {
		t.Errorf("query F (one activity under two identifiers) = %v, want [BRJ7CHGL~BRJ7CHGN]", got)
	}
}

// docQueries are the SQL examples of the section of a document that begins
// with heading.
func docQueries(t *testing.T, path, heading string) []string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(doc), heading)
	if start < 0 {
		t.Fatalf("%s has no section %q", path, heading)
	}
	section := string(doc)[start+len(heading):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	return out
}

// inYear2025 is s with its episode in December 2025 (activity year 2025),
// not January 2026.
func inYear2025(s sent) sent {
	s.line = strings.NewReplacer(`"start_date_episode":"2026-01-02"`, `"start_date_episode":"2025-12-27"`,
		`"end_date_episode":"2026-01-05"`, `"end_date_episode":"2025-12-30"`).Replace(s.line)
	return s
}

// submittedTo is s with the commissioner the provider submitted it to.
func submittedTo(s sent, commissioner string) sent {
	s.line = strings.Replace(s.line, `"provider_code"`, `"commissioner_code":"`+commissioner+`","provider_code"`, 1)
	return s
}

// withPseudonym is s with a pseudonymised NHS number, as deidentify makes it.
func withPseudonym(s sent, pseudonym string) sent {
	s.pseudonym = pseudonym
	return s
}

// The applicable date/times the tests' revisions name, in order.
const (
	t1 = "2026-01-06T09:00:00Z"
	t2 = "2026-01-07T09:00:00Z"
	t3 = "2026-01-08T09:00:00Z"
)

// newNetChange is a fresh dmic database and a netChange loading into it.
func newNetChange(t *testing.T, prefix string) (*netChange, driver.Conn, string) {
	t.Helper()
	conn, cfg := chstoretest.Database(t, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	p := &netChange{t: t, ctx: ctx, entries: map[string]*match.Entry{},
		sink: load.Sink{Store: chstore.NewWriter(conn, cfg.Database), Kafka: &fakeKafka{}}}
	return p, conn, cfg.Database
}

// sent is one record as a submitter sent it.
type sent struct {
	source    dmicv1.Source
	submitter string
	line      string
	pseudonym string
	// assignment is CAM's (assign's) result; nil: 36L by the usual route.
	assignment *dmicv1.Assignment
}

// provider is an APC record provider sent itself; an empty applicable
// date/time is left out of the line.
func provider(prov, uid, updateType, applicable, hrg string) sent {
	return sent{source: dmicv1.Source_SOURCE_PROVIDER, submitter: prov, line: apcLine(prov, uid, updateType, applicable, hrg)}
}

// national is the national exchange's (SUS) copy of provider prov's record.
func national(prov, uid, updateType, applicable, hrg string) sent {
	return sent{source: dmicv1.Source_SOURCE_NATIONAL, submitter: envelope.NationalSubmitter, line: apcLine(prov, uid, updateType, applicable, hrg)}
}

func apcLine(prov, uid, updateType, applicable, hrg string) string {
	s := fmt.Sprintf(`{"dataset":"apc","cds_unique_identifier":%q,"cds_update_type":%q,"provider_code":%q`, uid, updateType, prov)
	if applicable != "" {
		s += fmt.Sprintf(`,"cds_applicable_date_time":%q`, applicable)
	}
	if updateType == "9" {
		s += fmt.Sprintf(`,"cds_type":"130","start_date_episode":"2026-01-02","end_date_episode":"2026-01-05","admission_method_code":"21","treatment_function_code":"300","hrg_code":%q`, hrg)
	}
	return s + "}"
}

// netChange runs revisions through what decides their fate: the version
// (envelope), reconciliation (match.Entry) and load, into ClickHouse.
type netChange struct {
	t       *testing.T
	ctx     context.Context
	sink    load.Sink
	entries map[string]*match.Entry
	offset  int64
	outs    []pipeline.Output
}

// received is when each revision is received: a day apart, in arrival
// order, after every applicable time the tests name.
func (p *netChange) received() time.Time {
	return time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(p.offset) * time.Hour)
}

// send makes s the de-identified, assigned record the pipeline would make
// of it, reconciles it, and loads both as one batch of their own.
func (p *netChange) send(s sent) {
	t := p.t
	t.Helper()
	rec, ds, err := record.DecodeJSON([]byte(s.line), dmicv1.Dataset_DATASET_UNSPECIFIED)
	if err != nil {
		t.Fatalf("%s: %v", s.line, err)
	}
	p.offset++
	received := p.received()
	raw := envelope.Raw{Dataset: ds, Source: s.source, Submitter: s.submitter, SubmissionID: fmt.Sprintf("sub-%d", p.offset), Received: received, Line: 1}
	hdr, err := envelope.Header(raw, rec, pipeline.Message{Topic: topics.Raw, Offset: p.offset, Time: received}, "apc/2026.1")
	if err != nil {
		t.Fatal(err)
	}
	apc := rec.GetApc()
	act := &dmicv1.DeidentifiedActivity{CdsUniqueIdentifier: rec.GetCdsUniqueIdentifier(), UpdateType: rec.GetUpdateType(),
		ApplicableDateTime: rec.GetApplicableDateTime(), ProviderCode: rec.GetProviderCode(), ActivityDate: apc.GetEndDateEpisode(),
		SubmittedCommissionerCode: rec.GetCommissionerCode(), PseudoNhsNumber: s.pseudonym,
		Activity: &dmicv1.DeidentifiedActivity_Apc{Apc: &dmicv1.ApcEpisode{CdsType: apc.GetCdsType(), HrgCode: apc.GetHrgCode(),
			StartDateEpisode: apc.GetStartDateEpisode(), EndDateEpisode: apc.GetEndDateEpisode(),
			AdmissionMethodCode: apc.GetAdmissionMethodCode(), TreatmentFunctionCode: apc.GetTreatmentFunctionCode()}}}
	asg := s.assignment
	if asg == nil {
		asg = &dmicv1.Assignment{CommissionerCode: "36L", CommissionerType: "Sub-ICB", AssignmentMethod: "Sub-ICB (Practice Mapped)"}
	}
	out := &dmicv1.DeidentifiedRecord{Header: hdr, Activity: act, MatchKey: didi.MatchKey(ds, act.GetProviderCode(), act.GetCdsUniqueIdentifier()),
		Assignment: asg}
	b, err := proto.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []pipeline.Message{{Topic: topics.Assigned, Offset: p.offset, Key: []byte(out.MatchKey), Value: b}}

	var rv match.Revision
	if err := match.Read(b, &rv); err != nil {
		t.Fatal(err)
	}
	e := p.entries[rv.MatchKey]
	if e == nil {
		e = &match.Entry{}
		p.entries[rv.MatchKey] = e
	}
	if e.Apply(&rv) != match.Stale {
		res, err := proto.Marshal(e.Result(rv.MatchKey))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, pipeline.Message{Topic: topics.Reconciled, Offset: p.offset, Key: []byte(rv.MatchKey), Value: res})
	}
	for _, m := range msgs {
		o, err := load.Processor{Clock: clock.Fixed(loadTime)}.Process(p.ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		p.outs = append(p.outs, o...)
	}
	p.flush()
}

// flush writes what was sent since the last flush, as one batch.
func (p *netChange) flush() {
	p.t.Helper()
	if len(p.outs) == 0 {
		return
	}
	if err := p.sink.Write(p.ctx, p.outs); err != nil {
		p.t.Fatal(err)
	}
	p.outs = nil
}

// current is provider:hrg of each row of activity_current with the
// identifier, sorted.
func (p *netChange) current(conn driver.Conn, db, uid string) []string {
	p.t.Helper()
	return p.query(conn, "SELECT concat(provider_code, ':', hrg_code) FROM "+db+".activity_current WHERE cds_unique_identifier = ?", uid)
}

// currentWithStatus is source:provider:hrg:reconciliation status of each
// row of activity_current with the identifier, sorted.
func (p *netChange) currentWithStatus(conn driver.Conn, db, uid string) []string {
	p.t.Helper()
	return p.query(conn, "SELECT concat(source, ':', provider_code, ':', hrg_code, ':', reconciliation_status) FROM "+db+
		".activity_current WHERE cds_unique_identifier = ?", uid)
}

// run runs q, reading every row.
func (p *netChange) run(conn driver.Conn, q string) {
	p.t.Helper()
	rows, err := conn.Query(p.ctx, q)
	if err != nil {
		p.t.Fatalf("%s\n=> %v", q, err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		p.t.Fatalf("%s\n=> %v", q, err)
	}
}

// query is the one String column of q's rows, sorted (18.16 reads ORDER BY 1
// as a constant, not as the first column).
func (p *netChange) query(conn driver.Conn, q string, args ...any) []string {
	p.t.Helper()
	rows, err := conn.Query(p.ctx, q, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			p.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		p.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
