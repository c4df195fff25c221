package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseServices(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []endpoint
		errs []string // each must be in the error; none: no error
	}{
		{"one", "validate=localhost:9102", []endpoint{{"validate", "localhost:9102"}}, nil},
		{"spaces and empty parts", " validate=localhost:9102 , ,load=h:1,", []endpoint{{"validate", "localhost:9102"}, {"load", "h:1"}}, nil},
		{"address with =", "a=h:1=2", []endpoint{{"a", "h:1=2"}}, nil},
		{"defaults", defaultServices, []endpoint{
			{"ingest", "localhost:9101"}, {"validate", "localhost:9102"}, {"deidentify", "localhost:9103"},
			{"assign", "localhost:9104"}, {"reconcile", "localhost:9105"}, {"load", "localhost:9106"},
		}, nil},
		{"empty", "", nil, []string{"-services: empty"}},
		{"only commas", " , ", nil, []string{"-services: empty"}},
		{"every bad part reported", "validate,=h:1,load=,ok=h:2", []endpoint{{"ok", "h:2"}},
			[]string{`"validate" is not name=host:port`, `"=h:1" is not name=host:port`, `"load=" is not name=host:port`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServices(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("services = %v, want %v", got, tt.want)
			}
			if len(tt.errs) == 0 {
				if err != nil {
					t.Errorf("error = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("error = nil, want %q", tt.errs)
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error %q does not mention %q", err, e)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tt.errs) {
				t.Errorf("error reports %d problems, want %d: %q", n, len(tt.errs), err)
			}
		})
	}
}

func TestNames(t *testing.T) {
	if got := names([]endpoint{{"a", "x"}, {"b", "y"}}); got != "a, b" {
		t.Errorf("names = %q, want %q", got, "a, b")
	}
}
