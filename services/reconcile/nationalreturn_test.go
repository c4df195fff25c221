package reconcile

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

var (
	analyticsPseudonym = strings.Repeat("a1", 32)
	nationalPseudonym  = strings.Repeat("b2", 32)
)

// withPseudonyms is rec as deidentify and assign leave it: the analytics
// pseudonym, and the national-return one among the domain pseudonyms.
func withPseudonyms(src dmicv1.Source) *dmicv1.DeidentifiedRecord {
	r := rec(src, 1, "HN12A", false)
	a := r.Activity
	a.PseudoNhsNumber, a.PseudonymKeyVersion, a.PseudonymDomain = analyticsPseudonym, "av1", didi.DomainAnalytics
	a.DomainPseudonyms = []*dmicv1.DomainPseudonym{{Domain: didi.DomainNationalReturn, Pseudonym: nationalPseudonym, KeyVersion: "nv1"}}
	return r
}

// byTopic is what a new reconcile instance makes of r, by topic.
func byTopic(t *testing.T, r *dmicv1.DeidentifiedRecord) map[string][][]byte {
	t.Helper()
	e := newEnv(t)
	outs := e.process(e.open(t.TempDir()), msg(t, r))
	m := map[string][][]byte{}
	for _, o := range outs {
		m[o.Topic] = append(m[o.Topic], o.Value)
	}
	return m
}

// The national return carries the national-return pseudonym only; reconcile's
// other outputs carry neither pseudonym; the assigned record it read (what
// load stores) keeps the analytics one.
func TestNationalReturnCarriesItsDomainPseudonymOnly(t *testing.T) {
	in := withPseudonyms(local)
	assigned := proto.Clone(in).(*dmicv1.DeidentifiedRecord)
	outs := byTopic(t, in)
	if len(outs[topics.NationalReturn]) != 1 {
		t.Fatalf("outputs %v, want one national return", outs)
	}
	var nr dmicv1.DeidentifiedRecord
	if err := proto.Unmarshal(outs[topics.NationalReturn][0], &nr); err != nil {
		t.Fatal(err)
	}
	a := nr.GetActivity()
	if a.GetPseudoNhsNumber() != nationalPseudonym || a.GetPseudonymKeyVersion() != "nv1" || a.GetPseudonymDomain() != didi.DomainNationalReturn {
		t.Errorf("national return: pseudonym %q version %q domain %q; want the national-return one", a.GetPseudoNhsNumber(), a.GetPseudonymKeyVersion(), a.GetPseudonymDomain())
	}
	if len(a.GetDomainPseudonyms()) != 0 || a.GetPseudonymAbsentReason() != "" {
		t.Errorf("national return: domain pseudonyms %v, absent reason %q; want none", a.GetDomainPseudonyms(), a.GetPseudonymAbsentReason())
	}
	if bytes.Contains(outs[topics.NationalReturn][0], []byte(analyticsPseudonym)) {
		t.Error("the national return holds the analytics pseudonym")
	}
	// Apart from the pseudonym, the record is the one read.
	want := proto.Clone(assigned).(*dmicv1.DeidentifiedRecord)
	want.Activity.PseudoNhsNumber, want.Activity.PseudonymKeyVersion, want.Activity.PseudonymDomain = nationalPseudonym, "nv1", didi.DomainNationalReturn
	want.Activity.DomainPseudonyms = nil
	if !proto.Equal(&nr, want) {
		t.Errorf("national return = %v\nwant %v", &nr, want)
	}
	for topic, vals := range outs {
		if topic == topics.NationalReturn {
			continue
		}
		for _, v := range vals {
			if bytes.Contains(v, []byte(nationalPseudonym)) || bytes.Contains(v, []byte(analyticsPseudonym)) {
				t.Errorf("%s output holds a pseudonym", topic)
			}
		}
	}
	if a := assigned.GetActivity(); a.GetPseudoNhsNumber() != analyticsPseudonym || a.GetPseudonymDomain() != didi.DomainAnalytics {
		t.Errorf("assigned record: %q in %q, want the analytics pseudonym", a.GetPseudoNhsNumber(), a.GetPseudonymDomain())
	}

	// A national (SUS) copy does not go back to the national return.
	if got := byTopic(t, withPseudonyms(national))[topics.NationalReturn]; len(got) != 0 {
		t.Errorf("a national copy went to the national return")
	}
}

// A record with no national-return pseudonym (made before that domain had a
// key) leaves for the national return with no pseudonym, never another
// domain's; one without any keeps its absent reason.
func TestNationalReturnWithoutDomainPseudonym(t *testing.T) {
	analyticsOnly := withPseudonyms(local)
	analyticsOnly.Activity.DomainPseudonyms = nil
	noNumber := rec(local, 1, "HN12A", false)
	noNumber.Activity.PseudoNhsNumber, noNumber.Activity.PseudonymAbsentReason = "", didi.AbsentMissing
	for name, tc := range map[string]struct {
		in     *dmicv1.DeidentifiedRecord
		reason string
	}{
		"analytics only": {analyticsOnly, didi.AbsentNoDomainPseudonym},
		"no NHS number":  {noNumber, didi.AbsentMissing},
	} {
		outs := byTopic(t, tc.in)
		var nr dmicv1.DeidentifiedRecord
		if err := proto.Unmarshal(outs[topics.NationalReturn][0], &nr); err != nil {
			t.Fatal(err)
		}
		a := nr.GetActivity()
		if a.GetPseudoNhsNumber() != "" || a.GetPseudonymKeyVersion() != "" || a.GetPseudonymAbsentReason() != tc.reason || a.GetPseudonymDomain() != didi.DomainNationalReturn {
			t.Errorf("%s: pseudonym %q version %q reason %q domain %q; want none, reason %q", name,
				a.GetPseudoNhsNumber(), a.GetPseudonymKeyVersion(), a.GetPseudonymAbsentReason(), a.GetPseudonymDomain(), tc.reason)
		}
	}
}

// The fields the national return rewrites are those of the generated
// messages, by name.
func TestNationalReturnWireNumbers(t *testing.T) {
	rec := (&dmicv1.DeidentifiedRecord{}).ProtoReflect().Descriptor()
	act := (&dmicv1.DeidentifiedActivity{}).ProtoReflect().Descriptor()
	dp := (&dmicv1.DomainPseudonym{}).ProtoReflect().Descriptor()
	for _, c := range []struct {
		msg  protoreflect.MessageDescriptor
		name protoreflect.Name
		num  protowire.Number
	}{
		{rec, "activity", recActivity}, {act, "pseudo_nhs_number", actPseudoNHSNumber},
		{act, "pseudonym_key_version", actPseudonymKeyVersion}, {act, "pseudonym_absent_reason", actPseudonymAbsent},
		{act, "pseudonym_domain", actPseudonymDomain}, {act, "domain_pseudonyms", actDomainPseudonyms},
		{dp, "domain", dpDomain}, {dp, "pseudonym", dpPseudonym}, {dp, "key_version", dpKeyVersion},
	} {
		if f := c.msg.Fields().ByName(c.name); f == nil || f.Number() != c.num {
			t.Errorf("%s.%s: the national return takes it as field %d", c.msg.FullName(), c.name, c.num)
		}
	}
}

// reKeyed is the national return's rule applied to the decoded record, as
// reconcile applied it before it rewrote the bytes.
func reKeyed(r *dmicv1.DeidentifiedRecord) *dmicv1.DeidentifiedRecord {
	r = proto.Clone(r).(*dmicv1.DeidentifiedRecord)
	a := r.GetActivity()
	if a == nil {
		return r
	}
	var nr *dmicv1.DomainPseudonym
	for _, p := range a.GetDomainPseudonyms() {
		if p.GetDomain() == didi.DomainNationalReturn {
			nr = p
		}
	}
	had := a.GetPseudoNhsNumber() != ""
	a.PseudonymDomain = didi.DomainNationalReturn
	a.PseudoNhsNumber, a.PseudonymKeyVersion = nr.GetPseudonym(), nr.GetKeyVersion()
	if nr.GetPseudonym() == "" && had {
		a.PseudonymAbsentReason = didi.AbsentNoDomainPseudonym
	}
	a.DomainPseudonyms = nil
	return r
}

// The rewritten bytes decode to the record re-keyed, for records with and
// without each pseudonym, several domain pseudonyms, no activity, and two
// records' bytes one after the other (which a decoder merges).
func TestNationalReturnAgreesWithDecoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 12))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	random := func() []byte {
		r := fullRecord(local, "B"+strconv.Itoa(rng.IntN(100)))
		a := r.Activity
		a.PseudoNhsNumber = pick("", analyticsPseudonym)
		a.PseudonymKeyVersion = pick("", "av1")
		a.PseudonymAbsentReason = pick("", didi.AbsentMissing)
		a.PseudonymDomain = pick("", didi.DomainAnalytics)
		a.DomainPseudonyms = nil
		for range rng.IntN(3) {
			a.DomainPseudonyms = append(a.DomainPseudonyms, &dmicv1.DomainPseudonym{
				Domain: pick(didi.DomainNationalReturn, "other"), Pseudonym: pick("", nationalPseudonym, "c3"), KeyVersion: pick("", "nv1", "nv2")})
		}
		if rng.IntN(10) == 0 {
			r.Activity = nil
		}
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i := range 2000 {
		in := random()
		if i%2 == 1 {
			in = append(in, random()...)
		}
		var r dmicv1.DeidentifiedRecord
		if err := proto.Unmarshal(in, &r); err != nil {
			t.Fatal(err)
		}
		out, err := nationalReturn(nil, in)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		var got dmicv1.DeidentifiedRecord
		if err := proto.Unmarshal(out, &got); err != nil {
			t.Fatalf("case %d: the national return does not decode: %v", i, err)
		}
		if want := reKeyed(&r); !proto.Equal(&got, want) {
			t.Fatalf("case %d:\n got %v\nwant %v", i, &got, want)
		}
	}
}
