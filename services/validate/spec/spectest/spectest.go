// Package spectest builds specification documents for tests of the
// components that load and apply them.
package spectest

import (
	"encoding/json"
	"testing"

	"github.com/dmic-nhs/dmic/services/validate/spec"
)

// Version is the built-in specification name as a new version, effective from
// effective (YYYY-MM-DD), after edit (nil: none) has changed its decoded
// document.
func Version(t testing.TB, name, version, effective string, edit func(doc map[string]any)) []byte {
	t.Helper()
	b, err := spec.BuiltInDocument(name)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["version"], doc["effective_from"] = version, effective
	if edit != nil {
		edit(doc)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
