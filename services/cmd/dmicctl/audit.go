package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
)

// auditOutcomes are what -outcome accepts.
var auditOutcomes = []string{audit.Refused, audit.Allowed, audit.Done, audit.Failed}

// maxAuditLimit bounds -limit: the command shows recent entries; a longer
// look is a query of the table (docs/analytics.md).
const maxAuditLimit = 10000

// auditCommand prints the most recent entries of the security audit trail
// (the audit table, which load fills from dmic.audit), newest first. It
// reads as the analyst, who may read the trail and not change it.
func auditCommand(ctx context.Context, args []string, stdout, stderr io.Writer, timeout time.Duration, now time.Time) int {
	fs := flag.NewFlagSet("dmicctl audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ch := chstore.Config{User: chaccess.Analyst}
	ch.RegisterFlags(fs)
	since := fs.String("since", "24h", "Entries of this long ago or later (a duration: 90m, 24h, 7d), or since a time (2026-11-22, 2026-11-22T12:00:00Z); 0 for all.")
	outcome := fs.String("outcome", "", "Only this outcome: "+strings.Join(auditOutcomes, ", ")+".")
	org := fs.String("org", "", "Only callers of this organisation (ODS code, e.g. 0DC).")
	action := fs.String("action", "", "Only actions whose name contains this (Pause, KeyService, /v1/submissions).")
	limit := fs.Int("limit", 50, fmt.Sprintf("The most recent N entries (at most %d).", maxAuditLimit))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmicctl audit: unexpected arguments %q\n", fs.Args())
		return 2
	}
	f := chstore.AuditFilter{Outcome: strings.ToLower(strings.TrimSpace(*outcome)), Org: strings.ToUpper(strings.TrimSpace(*org)),
		Action: strings.TrimSpace(*action), Limit: *limit}
	var errs []error
	from, err := parseSince(*since, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("-since: %w", err))
	}
	f.Since = from
	if f.Outcome != "" && !slices.Contains(auditOutcomes, f.Outcome) {
		errs = append(errs, fmt.Errorf("-outcome %q: want one of %s", *outcome, strings.Join(auditOutcomes, ", ")))
	}
	if *limit < 1 || *limit > maxAuditLimit {
		errs = append(errs, fmt.Errorf("-limit %d: want 1 to %d", *limit, maxAuditLimit))
	}
	if err := errors.Join(append(errs, ch.Validate())...); err != nil {
		fmt.Fprintf(stderr, "dmicctl audit: %v\n", err)
		return 2
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := ch.Open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl audit: %v\n", err)
		return 1
	}
	defer conn.Close()
	rows, err := chstore.ReadAudit(ctx, conn, ch.Database, f)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl audit: %v\n", err)
		return 1
	}
	if len(rows) == 0 {
		when := "at all"
		if !from.IsZero() {
			when = "since " + from.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "No audit entries %s%s.\n", describeAuditFilter(f), when)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSERVICE\tOUTCOME\tACTION\tCALLER\tSERIAL\tREASON\tSUBJECT\tPEER\tDETAIL")
	for _, r := range rows {
		caller := "-"
		if r.CallerRole != "" || r.CallerOrg != "" {
			caller = r.CallerRole + ":" + r.CallerOrg
			if r.CallerName != "" {
				caller += " (" + r.CallerName + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), orDash(r.Service), orDash(r.Outcome),
			orDash(r.Action), caller, orDash(r.CallerSerial), orDash(r.Reason), orDash(r.Subject), orDash(r.Peer), orDash(oneLine(r.Detail)))
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

// parseSince reads -since: a duration back from now (d for days), a date or
// an RFC 3339 time; "0" or "" is no bound.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == days {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a duration (90m, 24h, 7d), a date (2026-11-22) or a time (2026-11-22T12:00:00Z)", s)
}

// describeAuditFilter names what was asked for, for "no entries" answers.
func describeAuditFilter(f chstore.AuditFilter) string {
	var parts []string
	if f.Outcome != "" {
		parts = append(parts, f.Outcome)
	}
	if f.Org != "" {
		parts = append(parts, "of "+f.Org)
	}
	if f.Action != "" {
		parts = append(parts, "for actions containing "+f.Action)
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + ", "
}

// oneLine keeps a detail on its row of the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
