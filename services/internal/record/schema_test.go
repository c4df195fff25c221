package record

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// The JSON Schema and the decoder describe the same format; this test keeps
// them from drifting apart.
func TestSchemaMatchesDecoder(t *testing.T) {
	data, err := os.ReadFile("../../../docs/record.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Schema string `json:"$schema"`
		OneOf  []struct {
			Properties           map[string]json.RawMessage `json:"properties"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
			Required             []string                   `json:"required"`
		} `json:"oneOf"`
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("schema is not valid JSON: %v", err)
	}
	if schema.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %q, want draft 2020-12", schema.Schema)
	}
	if len(schema.OneOf) != 4 {
		t.Fatalf("oneOf has %d branches, want one per dataset", len(schema.OneOf))
	}
	union := map[string]bool{}
	seenDatasets := map[string]bool{}
	for i, b := range schema.OneOf {
		var ds struct {
			Const string `json:"const"`
		}
		if err := json.Unmarshal(b.Properties["dataset"], &ds); err != nil || ds.Const == "" {
			t.Fatalf("branch %d: dataset is not a const discriminator", i)
		}
		d, err := ParseDataset(ds.Const)
		if err != nil || DatasetName(d) != ds.Const {
			t.Fatalf("branch %d: dataset %q is not a canonical dataset name", i, ds.Const)
		}
		seenDatasets[ds.Const] = true
		if b.AdditionalProperties == nil || *b.AdditionalProperties {
			t.Errorf("%s: additionalProperties is not false", ds.Const)
		}
		if !slices.Contains(b.Required, "dataset") {
			t.Errorf("%s: dataset is not required", ds.Const)
		}
		var names []string
		for name, raw := range b.Properties {
			names = append(names, name)
			union[name] = true
			var ref struct {
				Ref string `json:"$ref"`
			}
			if json.Unmarshal(raw, &ref) == nil && ref.Ref != "" {
				if _, ok := schema.Defs[strings.TrimPrefix(ref.Ref, "#/$defs/")]; !ok || !strings.HasPrefix(ref.Ref, "#/$defs/") {
					t.Errorf("%s: property %s refers to missing %s", ds.Const, name, ref.Ref)
				}
			}
		}
		want := FieldNames(d)
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("%s: schema properties\n%v\ndecoder fields\n%v", ds.Const, names, want)
		}
	}
	if len(seenDatasets) != 4 {
		t.Errorf("datasets in schema: %v", seenDatasets)
	}
	var all []string
	for n := range union {
		all = append(all, n)
	}
	want := FieldNames(0)
	slices.Sort(all)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("schema property names\n%v\ndecoder field names\n%v", all, want)
	}
}

// The provider documentation must mention every field and every decode rule.
func TestDocsCoverFormat(t *testing.T) {
	data, err := os.ReadFile("../../../docs/record-format.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, name := range FieldNames(0) {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("record-format.md does not mention field `%s`", name)
		}
	}
	for _, rule := range []string{RuleJSON, RuleDataset, RuleUnknownField, RuleFieldDataset, RuleType, RuleValue, RuleTooLong, RuleCSV, RuleColumns, RuleCSVHeader, RuleRead} {
		if !strings.Contains(doc, rule) {
			t.Errorf("record-format.md does not explain rule %s", rule)
		}
	}
}

// DocExamples returns the JSON example records of record-format.md, one per
// line of its json code blocks.
func docExamples(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile("../../../docs/record-format.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "```json":
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && strings.TrimSpace(line) != "":
			out = append(out, line)
		}
	}
	return out
}

func TestDocExamplesDecode(t *testing.T) {
	examples := docExamples(t)
	if len(examples) < 4 {
		t.Fatalf("found %d examples in record-format.md", len(examples))
	}
	seen := map[string]bool{}
	for i, ex := range examples {
		r, d, err := DecodeJSON([]byte(ex), 0)
		if err != nil {
			t.Errorf("example %d: %v", i+1, err)
			continue
		}
		seen[DatasetName(d)] = true
		// Examples are written in canonical form.
		if out, _ := EncodeJSON(d, r); string(out) != ex {
			t.Errorf("example %d is not canonical:\n%s\n%s", i+1, out, ex)
		}
	}
	if len(seen) != 4 {
		t.Errorf("examples cover %v, want all four datasets", seen)
	}
}
