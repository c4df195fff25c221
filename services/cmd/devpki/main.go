// Command devpki writes a development PKI: an authority and a certificate
// for each dmic service, the operator, the key custodian, an analyst, the
// national exchange and each provider of the reference data, as `make run`
// keeps under var/pki (docs/security.md, "Development"). For the compose
// stack (deploy/secrets/README.md); never for real data: a real deployment's
// certificates come from the data centre's own authority.
//
//	devpki -dir deploy/secrets/pki -reference-dir reference/sample -group 65532
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/ports"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("devpki", flag.ContinueOnError)
	dir := fs.String("dir", "var/pki", "Folder to write the certificates to (kept if current; missing or ending ones are issued).")
	refDir := fs.String("reference-dir", "reference/sample", "Reference data: a provider certificate for each of its trusts.")
	group := fs.Int("group", -1, "Give the private keys to this group, mode 0640, so that a container running as that group reads them (the services refuse a key file other users may read). -1: leave them 0600.")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ref, err := refdata.LoadDir(*refDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devpki:", err)
		return 1
	}
	d := devpki.Dir{Path: *dir}
	wrote, err := d.Ensure(time.Now(), devpki.Subjects(ports.Services, ref.TrustCodes()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "devpki:", err)
		return 1
	}
	if *group >= 0 {
		keys, _ := filepath.Glob(filepath.Join(*dir, "*.key"))
		for _, k := range keys {
			if strings.HasSuffix(k, string(filepath.Separator)+"ca.key") {
				continue // the authority's key stays the owner's
			}
			if err := os.Chown(k, -1, *group); err != nil {
				fmt.Fprintln(os.Stderr, "devpki:", err)
				return 1
			}
			if err := os.Chmod(k, 0o640); err != nil {
				fmt.Fprintln(os.Stderr, "devpki:", err)
				return 1
			}
		}
	}
	fmt.Printf("devpki: %s holds the development certificates (%d written now)\n", *dir, len(wrote))
	return 0
}
