package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
)

const specUsage = "usage: dmicctl spec list | spec show ID [VERSION] | spec get ID [VERSION] | spec load [--allow-backdated --reason TEXT] FILE"

// spec manages the data specifications on the validate service:
//
//	dmicctl spec list
//	dmicctl spec show ID [VERSION]
//	dmicctl spec get ID [VERSION]
//	dmicctl spec load [--allow-backdated --reason TEXT] FILE
func specCommand(ctx context.Context, args []string, svcs []endpoint, w who, stdout, stderr io.Writer, timeout time.Duration) int {
	svc, ok := find(svcs, "validate")
	addr := svc.addr
	if !ok {
		fmt.Fprintln(stderr, "dmicctl spec: -services names no validate service")
		return 2
	}
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	var load *validationv1.LoadSpecificationRequest
	if sub == "load" {
		var err error
		if load, err = parseLoad(args[1:]); err != nil {
			fmt.Fprintf(stderr, "dmicctl spec load: %v\n%s\n", err, specUsage)
			return 2
		}
	}
	conn, err := w.dial(addr, false)
	if err != nil {
		fmt.Fprintln(stderr, "dmicctl spec:", err)
		return 1
	}
	defer conn.Close()
	client := validationv1.NewSpecificationServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case sub == "list" && len(args) == 1:
		resp, err := client.ListSpecifications(ctx, &validationv1.ListSpecificationsRequest{})
		if err != nil {
			fmt.Fprintln(stderr, "dmicctl spec list:", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tVERSION\tEFFECTIVE FROM\tIN EFFECT\tSOURCE\tDATASETS\tRULES\tORIGIN\tLOADED\tBACKDATED\tTITLE")
		for _, s := range resp.Specifications {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%v\t%d\t%s\t%s\t%s\t%s\n", s.Id, s.Version, s.EffectiveFrom, s.InEffect, s.Source,
				s.Datasets, s.Rules, s.Origin, loadedAt(s), yesNo(s.GetLoad().GetBackdated()), s.Title)
		}
		tw.Flush()
		return 0
	case sub == "load":
		resp, err := client.LoadSpecification(ctx, load)
		if err != nil {
			fmt.Fprintln(stderr, "dmicctl spec load:", err)
			return 1
		}
		s := resp.Summary
		verb := "loaded"
		if !resp.Created {
			verb = "already loaded (no change)"
		}
		fmt.Fprintf(stdout, "%s/%s %s: applies to records received from %s (in effect now: %v)\n", s.Id, s.Version, verb, s.EffectiveFrom, s.InEffect)
		if l := s.GetLoad(); l.GetBackdated() {
			fmt.Fprintf(stdout, "BACKDATED by override, recorded with the load: %q\n", l.GetReason())
		}
		return 0
	case (sub == "get" || sub == "show") && (len(args) == 2 || len(args) == 3):
		req := &validationv1.GetSpecificationRequest{Id: args[1]}
		if len(args) == 3 {
			req.Version = args[2]
		}
		resp, err := client.GetSpecification(ctx, req)
		if err != nil {
			fmt.Fprintf(stderr, "dmicctl spec %s: %v\n", sub, err)
			return 1
		}
		if sub == "show" {
			show(stdout, resp.GetSummary())
			return 0
		}
		_, _ = stdout.Write(resp.Document)
		return 0
	}
	fmt.Fprintln(stderr, specUsage)
	return 2
}

// parseLoad reads `spec load`'s flags and FILE (flags before or after it).
func parseLoad(args []string) (*validationv1.LoadSpecificationRequest, error) {
	fs := flag.NewFlagSet("dmicctl spec load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	allow := fs.Bool("allow-backdated", false, "Load a version effective before today (it judges records already received). Needs --reason; audited.")
	reason := fs.String("reason", "", "Why the backdated load is needed, kept with the load.")
	var files []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if args = fs.Args(); len(args) > 0 {
			files, args = append(files, args[0]), args[1:]
		}
	}
	if len(files) != 1 {
		return nil, errors.New("give exactly one FILE")
	}
	if *allow != (*reason != "") {
		return nil, errors.New("--allow-backdated and --reason go together")
	}
	doc, err := os.ReadFile(files[0])
	if err != nil {
		return nil, err
	}
	return &validationv1.LoadSpecificationRequest{Document: doc, AllowBackdated: *allow, Reason: *reason}, nil
}

// requestedBy says who loaded a version: the authenticated caller, or for a
// load recorded before callers were authenticated, the name its client
// claimed.
func requestedBy(l *validationv1.SpecificationLoad) string {
	where := fmt.Sprintf("from %s, user agent %s", orDash(l.GetPeer()), orDash(l.GetUserAgent()))
	if c := l.GetCaller(); c != nil {
		return fmt.Sprintf("%s:%s (%s), certificate serial %s, %s", c.GetRole(), c.GetOrg(), c.GetName(), orDash(c.GetSerial()), where)
	}
	//lint:ignore SA1019 the claim is all a load recorded before authentication has
	return fmt.Sprintf("operator %s (as the client said, before callers were authenticated), %s", orDash(l.GetOperator()), where)
}

// show prints one specification version and how it was loaded.
func show(w io.Writer, s *validationv1.SpecificationSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	p("Specification", s.GetId()+"/"+s.GetVersion())
	p("Title", s.GetTitle())
	p("Effective from", s.GetEffectiveFrom())
	p("In effect", s.GetInEffect())
	p("Source", s.GetSource())
	p("Datasets", strings.Join(s.GetDatasets(), ", "))
	p("Rules", s.GetRules())
	p("Origin", s.GetOrigin())
	p("SHA-256", s.GetSha256())
	p("Loaded", loadedAt(s))
	if l := s.GetLoad(); l != nil {
		p("Requested by", requestedBy(l))
		switch {
		case l.GetBackdated():
			p("Backdated", "yes, by override: "+l.GetReason())
		case l.GetReason() != "":
			p("Backdated", "no (the override was given but not needed: "+l.GetReason()+")")
		default:
			p("Backdated", "no")
		}
	}
	tw.Flush()
}

func loadedAt(s *validationv1.SpecificationSummary) string {
	if t := s.GetLoadedTime(); t != nil {
		return t.AsTime().UTC().Format(time.RFC3339)
	}
	return "-"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}
