package dsa

import (
	"fmt"
	"time"
)

// Loaded is an agreement version as the log holds it: the document, who
// loaded it and when.
type Loaded struct {
	*Agreement
	Document []byte
	Time     time.Time
	By       string
}

// Revocation ends every version of an agreement.
type Revocation struct {
	ID     string
	Time   time.Time
	By     string
	Reason string
}

// Set is every agreement version loaded, in log order, and the revocations.
// Its methods take "now"; a Set is a value: With and Revoke return a new one.
type Set struct {
	versions []Loaded
	revoked  map[string]Revocation
}

// With adds a version. The same id and version again with the same document
// is no change (created false); with another document, or for another
// recipient than the id's earlier versions, it is refused.
func (s Set) With(l Loaded) (Set, bool, error) {
	for _, v := range s.versions {
		if v.ID != l.ID {
			continue
		}
		if v.Recipient.ODSCode != l.Recipient.ODSCode {
			return s, false, fmt.Errorf("agreement %s is %s's (version %s); version %s names %s: a new recipient needs a new agreement id",
				l.ID, v.Recipient.ODSCode, v.Version, l.Version, l.Recipient.ODSCode)
		}
		if v.Version == l.Version {
			if v.SHA256() == l.SHA256() {
				return s, false, nil
			}
			return s, false, fmt.Errorf("agreement %s is already loaded with other content (sha256 %s): a change is a new version", l.Label(), v.SHA256())
		}
	}
	if _, ok := s.revoked[l.ID]; ok {
		return s, false, fmt.Errorf("agreement %s was revoked: a new agreement needs a new id", l.ID)
	}
	out := Set{versions: append(append([]Loaded(nil), s.versions...), l), revoked: s.revoked}
	return out, true, nil
}

// Revoke ends every version of r.ID.
func (s Set) Revoke(r Revocation) (Set, error) {
	if !s.Known(r.ID) {
		return s, fmt.Errorf("no agreement %q", r.ID)
	}
	out := Set{versions: s.versions, revoked: map[string]Revocation{}}
	for k, v := range s.revoked {
		out.revoked[k] = v
	}
	if _, ok := out.revoked[r.ID]; !ok {
		out.revoked[r.ID] = r
	}
	return out, nil
}

// Known reports whether an agreement of that id was loaded.
func (s Set) Known(id string) bool {
	for _, v := range s.versions {
		if v.ID == id {
			return true
		}
	}
	return false
}

// Revocation of id, if it was revoked.
func (s Set) Revocation(id string) (Revocation, bool) {
	r, ok := s.revoked[id]
	return r, ok
}

// All are the versions in log order.
func (s Set) All() []Loaded { return s.versions }

// Get is one version; version "" is the latest loaded.
func (s Set) Get(id, version string) (Loaded, bool) {
	var out Loaded
	found := false
	for _, v := range s.versions {
		if v.ID == id && (version == "" || v.Version == version) {
			out, found = v, true
		}
	}
	return out, found
}

// State of a version on now: revoked (the id was revoked, whatever the dates
// say), superseded (a version of the same id loaded later has started), or by
// its dates pending, active or expired.
func (s Set) State(l Loaded, now time.Time) string {
	if _, ok := s.revoked[l.ID]; ok {
		return Revoked
	}
	later := false
	for _, v := range s.versions {
		if v.ID == l.ID && v.Version == l.Version {
			later = true
			continue
		}
		if later && v.ID == l.ID && v.DateState(now) != Pending {
			return Superseded
		}
	}
	return l.DateState(now)
}

// InForce are the active versions on now, one per agreement id at most, in
// log order of their ids.
func (s Set) InForce(now time.Time) []Loaded {
	var out []Loaded
	for _, v := range s.versions {
		if s.State(v, now) == Active {
			out = append(out, v)
		}
	}
	return out
}

// Ended are the agreement ids that were in force once and are no more on now
// (expired or revoked, and no version active): their access is removed and
// their data dropped or kept as the latest started version says.
func (s Set) Ended(now time.Time) []Loaded {
	var out []Loaded
	seen := map[string]bool{}
	for i := len(s.versions) - 1; i >= 0; i-- {
		v := s.versions[i]
		if seen[v.ID] {
			continue
		}
		st := s.State(v, now)
		if st == Pending && s.revoked[v.ID].ID == "" {
			continue // a later version not started: an earlier one decides
		}
		seen[v.ID] = true
		if st == Expired || st == Revoked {
			out = append(out, v)
		}
	}
	return out
}
