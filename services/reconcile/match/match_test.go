package match

import "testing"

// The compared fields are named once and sorted, so that Differences is.
func TestComparedFieldsAreNamedAndSorted(t *testing.T) {
	for i, name := range comparedFields {
		if name == "" {
			t.Errorf("compared field %d has no name", i)
		}
		if i > 0 && comparedFields[i-1] >= name {
			t.Errorf("compared fields not sorted at %q, %q: Differences would not be sorted", comparedFields[i-1], name)
		}
	}
}
