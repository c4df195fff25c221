package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	assignmentv1 "github.com/dmic-nhs/dmic/proto/dmic/assignment/v1"
	"github.com/dmic-nhs/dmic/services/assign/cam"
)

const explainUsage = "usage: dmicctl explain RECORD_KEY"

// explain shows how one record's commissioner was decided, from the assign
// service's AssignmentService:
//
//	dmicctl explain 'RCD|apc|A1234'
func explain(ctx context.Context, args []string, svcs []endpoint, w who, stdout, stderr io.Writer, timeout time.Duration) int {
	if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
		fmt.Fprintln(stderr, explainUsage)
		return 2
	}
	client, closeFn, code := assignmentClient(svcs, w, stderr, "explain")
	if client == nil {
		return code
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := client.ExplainAssignment(ctx, &assignmentv1.ExplainAssignmentRequest{RecordKey: args[0]})
	if err != nil {
		fmt.Fprintln(stderr, "dmicctl explain:", err)
		return 1
	}
	fmt.Fprint(stdout, cam.ExplainRecord(resp))
	return 0
}

// assignmentClient is the assign service's AssignmentService.
func assignmentClient(svcs []endpoint, w who, stderr io.Writer, cmd string) (assignmentv1.AssignmentServiceClient, func(), int) {
	svc, ok := find(svcs, "assign")
	if !ok {
		fmt.Fprintf(stderr, "dmicctl %s: -services names no assign service\n", cmd)
		return nil, nil, 2
	}
	conn, err := w.dial(svc.addr, false)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl %s: %v\n", cmd, err)
		return nil, nil, 1
	}
	return assignmentv1.NewAssignmentServiceClient(conn), func() { conn.Close() }, 0
}

const camUsage = "usage: dmicctl cam rerun -from YYYY-MM-DD -to YYYY-MM-DD -version 2024/25 [-label TEXT]"

// camCommand re-runs commissioner assignment of a period under a chosen CAM
// version, on the assign service (operators); the rows are in ClickHouse's
// cam_rerun table, and the summary is printed:
//
//	dmicctl cam rerun -from 2025-04-01 -to 2025-06-30 -version 2024/25
func camCommand(ctx context.Context, args []string, svcs []endpoint, w who, stdout, stderr io.Writer, timeout time.Duration) int {
	if len(args) == 0 || args[0] != "rerun" {
		fmt.Fprintln(stderr, camUsage)
		return 2
	}
	fs := flag.NewFlagSet("dmicctl cam rerun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	req := &assignmentv1.RerunAssignmentsRequest{}
	fs.StringVar(&req.From, "from", "", "First CAM date of the period (YYYY-MM-DD).")
	fs.StringVar(&req.To, "to", "", "Last CAM date of the period (YYYY-MM-DD), included.")
	fs.StringVar(&req.CamVersion, "version", "", "CAM version to apply: 2024/25, 2025/26.")
	fs.StringVar(&req.Label, "label", "", "A label kept with the run's rows.")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if req.From == "" || req.To == "" || req.CamVersion == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, camUsage)
		return 2
	}
	client, closeFn, code := assignmentClient(svcs, w, stderr, "cam rerun")
	if client == nil {
		return code
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := client.RerunAssignments(ctx, req)
	if err != nil {
		fmt.Fprintln(stderr, "dmicctl cam rerun:", err)
		return 1
	}
	fmt.Fprintf(stdout, "run %s: CAM %s on CAM dates %s to %s: %d records read, %d move commissioner (%d activities, %s), %d change step only\n",
		resp.GetRunId(), resp.GetCamVersion(), req.From, req.To, resp.GetRecords(), resp.GetMoved(), resp.GetMovedActivity(),
		pounds(resp.GetMovedPricePence()), resp.GetStepChanged())
	if len(resp.GetMoves()) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FROM\tSTEP\tTO\tSTEP\tRECORDS\tACTIVITY\tPRICE")
		for _, m := range resp.GetMoves() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", orDash(m.GetFromCommissioner()), m.GetFromStep(), orDash(m.GetToCommissioner()),
				m.GetToStep(), m.GetRecords(), m.GetActivity(), pounds(m.GetPricePence()))
		}
		tw.Flush()
	}
	if n := resp.GetGroupsOmitted(); n > 0 {
		fmt.Fprintf(stdout, "(%d more groups in the table)\n", n)
	}
	fmt.Fprintf(stdout, "rows: SELECT * FROM dmic.cam_rerun FINAL WHERE run_id = '%s' (docs/commissioner-assignment.md)\n", resp.GetRunId())
	return 0
}

func pounds(pence int64) string { return fmt.Sprintf("£%d.%02d", pence/100, pence%100) }
