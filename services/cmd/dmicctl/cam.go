package main

import (
	"context"
	"fmt"
	"io"
	"strings"
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
