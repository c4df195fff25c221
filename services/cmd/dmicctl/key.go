package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	deidv1 "github.com/dmic-nhs/dmic/proto/dmic/deid/v1"
)

const keyUsage = "usage: dmicctl key list | key rotate DOMAIN VERSION [-generate] | key repseudonymise [-timeout 1h] FROM TO\n" +
	"       FROM and TO: RFC 3339 (2026-04-01T00:00:00Z) or a date (2026-04-01, midnight UTC); the range is [FROM, TO)"

// key manages the pseudonymisation keys on the deidentify service (no call
// ever sends or shows a secret):
//
//	dmicctl key list
//	dmicctl key rotate DOMAIN VERSION [-generate]
//	dmicctl key repseudonymise [-timeout 1h] FROM TO
func key(ctx context.Context, args []string, svcs []endpoint, w who, stdout, stderr io.Writer, timeout time.Duration) int {
	svc, ok := find(svcs, "deidentify")
	addr := svc.addr
	if !ok {
		fmt.Fprintln(stderr, "dmicctl key: -services names no deidentify service")
		return 2
	}
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch {
	case sub == "list" && len(args) == 1:
		return withKeyService(ctx, addr, w, timeout, stderr, func(ctx context.Context, c deidv1.KeyServiceClient) int {
			resp, err := c.ListKeys(ctx, &deidv1.ListKeysRequest{})
			if err != nil {
				fmt.Fprintln(stderr, "dmicctl key list:", err)
				return 1
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "DOMAIN\tVERSION\tACTIVE\tFILE")
			for _, k := range resp.GetKeys() {
				active := ""
				if k.GetActive() {
					active = "active"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.GetDomain(), k.GetVersion(), active, k.GetFile())
			}
			tw.Flush()
			return 0
		})
	case sub == "rotate":
		req, err := parseRotate(args[1:])
		if err != nil {
			fmt.Fprintf(stderr, "dmicctl key rotate: %v\n%s\n", err, keyUsage)
			return 2
		}
		return withKeyService(ctx, addr, w, timeout, stderr, func(ctx context.Context, c deidv1.KeyServiceClient) int {
			resp, err := c.RotateKey(ctx, req)
			if err != nil {
				fmt.Fprintln(stderr, "dmicctl key rotate:", err)
				return 1
			}
			k := resp.GetKey()
			fmt.Fprintf(stdout, "%s: key %s is active for new records (was %s); key file %s\n", k.GetDomain(), k.GetVersion(), resp.GetPreviousVersion(), k.GetFile())
			fmt.Fprintln(stdout, "Records already de-identified keep their pseudonyms: re-pseudonymise a period with `dmicctl key repseudonymise FROM TO`.")
			return 0
		})
	case sub == "repseudonymise":
		fs := flag.NewFlagSet("dmicctl key repseudonymise", flag.ContinueOnError)
		fs.SetOutput(stderr)
		wait := fs.Duration("timeout", time.Hour, "Longest wait for the replay (it replays up to a week of records).")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() != 2 {
			fmt.Fprintln(stderr, keyUsage)
			return 2
		}
		from, errFrom := parseInstant(fs.Arg(0))
		to, errTo := parseInstant(fs.Arg(1))
		if errFrom != nil || errTo != nil {
			fmt.Fprintf(stderr, "dmicctl key repseudonymise: FROM %v; TO %v\n%s\n", orOK(errFrom), orOK(errTo), keyUsage)
			return 2
		}
		if !from.Before(to) {
			fmt.Fprintf(stderr, "dmicctl key repseudonymise: FROM (%s) must be before TO (%s)\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
			return 2
		}
		return withKeyService(ctx, addr, w, *wait, stderr, func(ctx context.Context, c deidv1.KeyServiceClient) int {
			resp, err := c.Repseudonymise(ctx, &deidv1.RepseudonymiseRequest{From: timestamppb.New(from), To: timestamppb.New(to)})
			if err != nil {
				fmt.Fprintln(stderr, "dmicctl key repseudonymise:", err)
				return 1
			}
			var keys []string
			for _, d := range slices.Sorted(maps.Keys(resp.GetKeyVersions())) {
				keys = append(keys, d+"="+resp.GetKeyVersions()[d])
			}
			fmt.Fprintf(stdout, "re-pseudonymised %d records validated from %s to %s (%d dead-lettered) with keys %s\n",
				resp.GetRecords(), from.Format(time.RFC3339), to.Format(time.RFC3339), resp.GetRejected(), strings.Join(keys, ", "))
			return 0
		})
	}
	fmt.Fprintln(stderr, keyUsage)
	return 2
}

func withKeyService(ctx context.Context, addr string, w who, timeout time.Duration, stderr io.Writer, call func(context.Context, deidv1.KeyServiceClient) int) int {
	// The key service is the key custodian's alone.
	conn, err := w.dial(addr, true)
	if err != nil {
		fmt.Fprintln(stderr, "dmicctl key:", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return call(ctx, deidv1.NewKeyServiceClient(conn))
}

// parseRotate reads "DOMAIN VERSION [-generate]", the flag anywhere.
func parseRotate(args []string) (*deidv1.RotateKeyRequest, error) {
	req := &deidv1.RotateKeyRequest{}
	var pos []string
	for _, a := range args {
		switch a {
		case "-generate", "--generate":
			req.Generate = true
		default:
			if strings.HasPrefix(a, "-") {
				return nil, fmt.Errorf("unknown flag %s", a)
			}
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("want DOMAIN and VERSION, got %d arguments", len(pos))
	}
	req.Domain, req.Version = pos[0], pos[1]
	return req, nil
}

// parseInstant reads RFC 3339 or a date (midnight UTC).
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
}

func orOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
