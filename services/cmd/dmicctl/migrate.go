package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
)

// migrate creates dmic's ClickHouse database, tables and views, or brings
// older ones up to date (chstore.ApplySchema), as the migrator: the only
// user that may change the schema. The services never do: load checks the
// schema at start and waits, NOT SERVING, until it is current. Run it before
// a new version of load starts (docker-compose runs it as a job first; make
// run before the services).
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer, timeout time.Duration) int {
	fs := flag.NewFlagSet("dmicctl migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ch := chstore.Config{User: chaccess.Migrator}
	ch.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmicctl migrate: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := ch.Validate(); err != nil {
		fmt.Fprintf(stderr, "dmicctl migrate: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := ch.Open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl migrate: %v\n", err)
		return 1
	}
	defer conn.Close()
	if err := chstore.ApplySchema(ctx, conn, ch.Database); err != nil {
		fmt.Fprintf(stderr, "dmicctl migrate: %v\n", err)
		return 1
	}
	if err := chstore.CheckSchema(ctx, conn, ch.Database); err != nil {
		fmt.Fprintf(stderr, "dmicctl migrate: after migrating: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Schema of %s is current.\n", ch)
	return 0
}
