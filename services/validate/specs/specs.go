// Package specs holds the data specifications shipped in every binary: one
// JSON document per data set, read by the specification engine (validate/spec)
// and published as docs/specifications.md. The documents sit in their own
// folder, apart from the engine's code, because they are data that changes by
// release of the specification, not by release of the engine.
package specs

import "embed"

// FS holds the documents, one per data set, named <data set>.json.
//
//go:embed *.json
var FS embed.FS
