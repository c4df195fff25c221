package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
)

// spec manages the data specifications on the validate service:
//
//	dmicctl spec list
//	dmicctl spec load FILE
//	dmicctl spec get ID [VERSION]
func spec(ctx context.Context, args []string, svcs []service, stdout, stderr io.Writer, timeout time.Duration) int {
	svc, ok := find(svcs, "validate")
	addr := svc.addr
	if !ok {
		fmt.Fprintln(stderr, "dmicctl spec: -services names no validate service")
		return 2
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(stderr, "dmicctl spec:", err)
		return 1
	}
	defer conn.Close()
	client := validationv1.NewSpecificationServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch {
	case sub == "list" && len(args) == 1:
		resp, err := client.ListSpecifications(ctx, &validationv1.ListSpecificationsRequest{})
		if err != nil {
			fmt.Fprintln(stderr, "dmicctl spec list:", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tVERSION\tEFFECTIVE FROM\tIN EFFECT\tSOURCE\tDATASETS\tRULES\tORIGIN\tTITLE")
		for _, s := range resp.Specifications {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%v\t%d\t%s\t%s\n", s.Id, s.Version, s.EffectiveFrom, s.InEffect, s.Source,
				s.Datasets, s.Rules, s.Origin, s.Title)
		}
		tw.Flush()
		return 0
	case sub == "load" && len(args) == 2:
		doc, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintln(stderr, "dmicctl spec load:", err)
			return 2
		}
		resp, err := client.LoadSpecification(ctx, &validationv1.LoadSpecificationRequest{Document: doc})
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
		return 0
	case sub == "get" && (len(args) == 2 || len(args) == 3):
		req := &validationv1.GetSpecificationRequest{Id: args[1]}
		if len(args) == 3 {
			req.Version = args[2]
		}
		resp, err := client.GetSpecification(ctx, req)
		if err != nil {
			fmt.Fprintln(stderr, "dmicctl spec get:", err)
			return 1
		}
		_, _ = stdout.Write(resp.Document)
		return 0
	}
	fmt.Fprintln(stderr, "usage: dmicctl spec list | spec load FILE | spec get ID [VERSION]")
	return 2
}
