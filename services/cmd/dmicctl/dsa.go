package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"

	accessv1 "github.com/dmic-nhs/dmic/proto/dmic/access/v1"
)

const dsaUsage = "usage: dmicctl dsa list | dsa show ID [VERSION] | dsa load FILE... | dsa revoke ID -reason TEXT | dsa key DOMAIN [VERSION] | access report"

// dsaCommand manages data sharing agreements on the load service:
//
//	dmicctl dsa list
//	dmicctl dsa show ID [VERSION]
//	dmicctl dsa load FILE...
//	dmicctl dsa revoke ID -reason TEXT
//	dmicctl dsa key DOMAIN [VERSION]     (as the key custodian)
//	dmicctl access report
func dsaCommand(ctx context.Context, cmd string, args []string, svcs []endpoint, w who, stdout, stderr io.Writer, timeout time.Duration) int {
	svc, ok := find(svcs, "load")
	if !ok {
		fmt.Fprintln(stderr, "dmicctl dsa: -services names no load service")
		return 2
	}
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	if cmd == "access" {
		if sub != "report" || len(args) != 1 {
			fmt.Fprintln(stderr, dsaUsage)
			return 2
		}
		sub = "report"
	}
	conn, err := w.dial(svc.addr, sub == "key")
	if err != nil {
		fmt.Fprintln(stderr, "dmicctl "+cmd+":", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := runDSA(ctx, accessv1.NewAgreementServiceClient(conn), sub, args, stdout); err != nil {
		fmt.Fprintf(stderr, "dmicctl %s %s: %v\n", cmd, sub, err)
		if _, usage := err.(usageError); usage {
			fmt.Fprintln(stderr, dsaUsage)
			return 2
		}
		return 1
	}
	return 0
}

type usageError string

func (e usageError) Error() string { return string(e) }

func runDSA(ctx context.Context, c accessv1.AgreementServiceClient, sub string, args []string, stdout io.Writer, opts ...grpc.CallOption) error {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	switch {
	case sub == "list" && len(args) == 1:
		r, err := c.ListAgreements(ctx, &accessv1.ListAgreementsRequest{}, opts...)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tVERSION\tRECIPIENT\tSTATE\tSTART\tEXPIRY\tDATASETS\tCOMMISSIONERS\tK\tDATABASE")
		for _, s := range r.GetAgreements() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Id, s.Version, s.Recipient, s.State, s.StartDate, s.ExpiryDate,
				strings.Join(s.Datasets, ","), strings.Join(s.Commissioners, ","), s.SmallNumberThreshold, s.Database)
		}
		return nil
	case sub == "show" && (len(args) == 2 || len(args) == 3):
		req := &accessv1.GetAgreementRequest{Id: args[1]}
		if len(args) == 3 {
			req.Version = args[2]
		}
		r, err := c.GetAgreement(ctx, req, opts...)
		if err != nil {
			return err
		}
		s := r.GetSummary()
		fmt.Fprintf(tw, "agreement\t%s version %s\nrecipient\t%s\nstate\t%s\npurpose\t%s\nperiod of access\t%s to %s\ndatasets\t%s\ncommissioners\t%s\ncolumns\t%s\npseudonym domain\t%s\nsmall-number threshold\t%d\ndatabase and user\t%s\nloaded by\t%s\nsha256\t%s\n",
			s.Id, s.Version, s.Recipient, s.State, s.Purpose, s.StartDate, s.ExpiryDate, strings.Join(s.Datasets, ", "),
			strings.Join(s.Commissioners, ", "), strings.Join(s.Columns, ", "), s.PseudonymDomain, s.SmallNumberThreshold, s.Database, s.LoadedBy, s.Sha256)
		if s.RevokedBy != "" {
			fmt.Fprintf(tw, "revoked by\t%s: %s\n", s.RevokedBy, s.RevokeReason)
		}
		return nil
	case sub == "load" && len(args) >= 2:
		for _, f := range args[1:] {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			r, err := c.LoadAgreement(ctx, &accessv1.LoadAgreementRequest{Document: b}, opts...)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			verb := "loaded"
			if !r.GetCreated() {
				verb = "already loaded (no change)"
			}
			s := r.GetSummary()
			fmt.Fprintf(stdout, "%s version %s %s: %s, %s (database %s)\n", s.Id, s.Version, verb, s.Recipient, s.State, s.Database)
		}
		return nil
	case sub == "revoke" && len(args) == 4 && (args[2] == "-reason" || args[2] == "--reason"):
		r, err := c.RevokeAgreement(ctx, &accessv1.RevokeAgreementRequest{Id: args[1], Reason: args[3]}, opts...)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s revoked: %s's access is removed (database %s)\n", r.GetSummary().GetId(), r.GetSummary().GetRecipient(), r.GetSummary().GetDatabase())
		return nil
	case sub == "key" && (len(args) == 2 || len(args) == 3):
		version := "v1"
		if len(args) == 3 {
			version = args[2]
		}
		r, err := c.CreatePseudonymKey(ctx, &accessv1.CreatePseudonymKeyRequest{Domain: args[1], Version: version}, opts...)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s/%s created (the secret stays in load's recipient key directory)\n", r.Domain, r.Version)
		return nil
	case sub == "report":
		r, err := c.AccessReport(ctx, &accessv1.AccessReportRequest{}, opts...)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "RECIPIENT\tAGREEMENT\tVERSION\tSTATE\tUSER\tQUERIES\tFAILED\tROWS READ\tLAST ACCESS")
		for _, a := range r.GetRecipients() {
			last := "never"
			if a.LastAccess != nil {
				last = a.LastAccess.AsTime().UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", a.Recipient, a.AgreementId, a.AgreementVersion, a.State, a.User,
				a.Queries, a.FailedQueries, a.RowsRead, last)
		}
		return nil
	}
	return usageError("bad arguments")
}
