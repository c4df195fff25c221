package topics_test

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Who may touch the patient-identifiable topics: the services that need
// them and the operators' tools, nobody else (issue 12).
func TestIdentifiableTopicsAreClosed(t *testing.T) {
	svc := topics.ServicePrincipal
	want := map[string]struct{ read, write []string }{
		topics.Raw: {
			read:  []string{svc("validate"), topics.Operator},
			write: []string{svc("ingest"), topics.Operator},
		},
		topics.Validated: {
			read:  []string{svc("deidentify"), topics.Operator},
			write: []string{svc("validate")},
		},
		topics.Rejected: {
			read:  []string{svc("load"), topics.Operator},
			write: []string{svc("assign"), svc("deidentify"), svc("ingest"), svc("load"), svc("reconcile"), svc("validate")},
		},
	}
	var identifiable []string
	for _, s := range topics.All() {
		if s.Identifiable {
			identifiable = append(identifiable, s.Name)
		}
	}
	if got := slices.Sorted(maps.Keys(want)); !slices.Equal(slices.Sorted(slices.Values(identifiable)), got) {
		t.Fatalf("identifiable topics %v, the test covers %v", identifiable, got)
	}
	for topic, w := range want {
		var readers, writers []string
		for _, g := range topics.Grants() {
			if slices.Contains(g.Read(), topic) {
				readers = append(readers, g.Principal)
			}
			if slices.Contains(g.Write(), topic) {
				writers = append(writers, g.Principal)
			}
		}
		slices.Sort(readers)
		slices.Sort(writers)
		if !slices.Equal(readers, slices.Sorted(slices.Values(w.read))) {
			t.Errorf("%s is read by %v, want %v", topic, readers, w.read)
		}
		if !slices.Equal(writers, slices.Sorted(slices.Values(w.write))) {
			t.Errorf("%s is written by %v, want %v", topic, writers, w.write)
		}
	}
}

// The table is well formed: one row per principal, every topic it names
// exists, the superuser is in no row, every consumer group is its own
// service's, and every topic has a writer and a reader.
func TestGrantsAreConsistent(t *testing.T) {
	seen := map[string]bool{}
	read, written := map[string]bool{}, map[string]bool{}
	for _, g := range topics.Grants() {
		if seen[g.Principal] {
			t.Errorf("%s has two rows", g.Principal)
		}
		seen[g.Principal] = true
		if g.Principal == topics.Admin {
			t.Errorf("the superuser %s is in the table", topics.Admin)
		}
		if g.Group != "" && (g.Group != g.Principal || !strings.HasPrefix(g.Group, topics.GroupPrefix)) {
			t.Errorf("%s consumes in group %q, not its own", g.Principal, g.Group)
		}
		if g.Group == "" && len(g.Inputs) > 0 {
			t.Errorf("%s has inputs but no consumer group", g.Principal)
		}
		for _, tp := range g.Topics() {
			if !slices.Contains(topics.Names(), tp) {
				t.Errorf("%s is granted %s, which is not a dmic topic", g.Principal, tp)
			}
		}
		for _, tp := range g.Read() {
			read[tp] = true
		}
		for _, tp := range g.Write() {
			written[tp] = true
		}
	}
	for _, tp := range topics.Names() {
		if !written[tp] {
			t.Errorf("nobody may write %s", tp)
		}
		if !read[tp] {
			t.Errorf("nobody may read %s", tp)
		}
	}
	for _, s := range []string{"ingest", "validate", "deidentify", "assign", "reconcile", "load"} {
		if !seen[topics.ServicePrincipal(s)] {
			t.Errorf("service %s has no row", s)
		}
	}
}

// docs/security.md shows the table as it is.
func TestACLTableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), topics.ACLTable()) {
		t.Errorf("docs/security.md does not hold the current ACL table; put this in its Kafka section:\n%s", topics.ACLTable())
	}
}
