// Command specdoc writes the provider documentation of the built-in data
// specifications (markdown) to standard output:
//
//	cd services && go run ./cmd/specdoc > ../docs/specifications.md
//
// A test in services/validate/spec fails when docs/specifications.md differs
// from what this writes, so the page cannot drift from the specifications.
package main

import (
	"fmt"
	"os"

	"github.com/dmic-nhs/dmic/services/validate/spec"
)

func main() {
	reg, err := spec.BuiltIn()
	if err != nil {
		fmt.Fprintln(os.Stderr, "specdoc:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.WriteString(spec.Document(reg.List())); err != nil {
		fmt.Fprintln(os.Stderr, "specdoc:", err)
		os.Exit(1)
	}
}
