package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// positionPattern is how operators name a message: topic/partition@offset,
// as logs, health reasons and dead letters show it.
var positionPattern = regexp.MustCompile(`^([A-Za-z0-9._-]+)/(\d+)@(\d+)$`)

func parsePosition(s string) (*dmicv1.MessagePosition, error) {
	m := positionPattern.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("%q is not TOPIC/PARTITION@OFFSET (e.g. dmic.raw/3@1207)", s)
	}
	p, err1 := strconv.ParseInt(m[2], 10, 32)
	o, err2 := strconv.ParseInt(m[3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return &dmicv1.MessagePosition{Topic: m[1], Partition: int32(p), Offset: o}, nil
}

// message runs "skip SERVICE POSITION -reason TEXT" or "replay ...": an
// operator's way past a record that holds a partition, or to process one
// again. The service records both on dmic.operator-audit.
func message(ctx context.Context, cmd string, args []string, svcs []endpoint, w who, stdout, stderr io.Writer, timeout time.Duration) int {
	fs := flag.NewFlagSet("dmicctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	reason := fs.String("reason", "", "Why (required; kept in the audit log"+map[bool]string{true: " and the dead letter", false: ""}[cmd == "skip"]+").")
	var problems []error
	var name, pos string
	// SERVICE POSITION first, flags after them or before.
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		switch {
		case name == "":
			name = rest[0]
		case pos == "":
			pos = rest[0]
		default:
			problems = append(problems, fmt.Errorf("unexpected argument %q", rest[0]))
		}
		rest = rest[1:]
	}
	s, ok := find(svcs, name)
	if !ok {
		problems = append(problems, fmt.Errorf("unknown service %q (known: %s)", name, names(svcs)))
	}
	p, err := parsePosition(pos)
	if err != nil {
		problems = append(problems, err)
	}
	if *reason == "" {
		problems = append(problems, errors.New("-reason: required"))
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "usage: dmicctl %s SERVICE TOPIC/PARTITION@OFFSET -reason TEXT\ndmicctl %s: %v\n", cmd, cmd, errors.Join(problems...))
		return 2
	}
	c, closeFn, err := dial(s, w)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl: %s at %s: %v\n", s.name, s.addr, err)
		return 1
	}
	defer closeFn()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if cmd == "skip" {
		r, err := c.SkipMessage(cctx, &dmicv1.SkipMessageRequest{Position: p, Reason: *reason})
		if err != nil {
			fmt.Fprintf(stderr, "dmicctl: skip on %s: %v\n", s.name, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: %s will be dead-lettered (OPERATOR-SKIP) by every instance; audit %s\n", s.name, pos, r.GetAuditId())
		return 0
	}
	r, err := c.ReplayMessage(cctx, &dmicv1.ReplayMessageRequest{Position: p, Reason: *reason})
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl: replay on %s: %v\n", s.name, err)
		return 1
	}
	verdict := "processed"
	if r.GetRejected() {
		verdict = "rejected again (dead letter written)"
	}
	fmt.Fprintf(stdout, "%s: %s %s, %d outputs written; audit %s\n", s.name, pos, verdict, r.GetOutputs(), r.GetAuditId())
	return 0
}
