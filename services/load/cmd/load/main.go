// Command load writes activity, reconciliation results, rejections,
// validation outcomes and submission receipts to ClickHouse, and keeps the
// recipient databases of the data sharing agreements in force
// (dmic.access.v1.AgreementService on its gRPC port; docs/data-access.md).
package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	accessv1 "github.com/dmic-nhs/dmic/proto/dmic/access/v1"
	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/controllog/kafkalog"
	"github.com/dmic-nhs/dmic/services/internal/pipeline"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/load"
)

func main() {
	// Load writes as dmic_writer, which may insert but not change the
	// schema: `dmicctl migrate` (the migrator) makes and migrates it.
	ch := chstore.Config{User: chaccess.Writer}
	// Recipients' databases are made, filled and dropped as a user that may
	// create databases (the migrator by default; docs/data-access.md).
	var share chstore.Config
	var keyDir, usersDir, secretsDir string
	register := func(fs *flag.FlagSet) {
		ch.RegisterFlags(fs)
		fs.StringVar(&keyDir, "recipient-key-dir", "", "Recipients' pseudonym keys: <dir>/<domain>/<version>.key (docs/data-access.md). Without it, no agreement service.")
		fs.StringVar(&usersDir, "recipient-users-dir", "", "ClickHouse's users.d folder, where load writes the recipients' users (rewritten at run time; ClickHouse reloads it).")
		fs.StringVar(&secretsDir, "recipient-secrets-dir", "", "Folder receiving each recipient's password file and clickhouse-client configuration (mode 0600).")
		fs.StringVar(&share.User, "recipient-clickhouse-user", chaccess.Migrator, "ClickHouse user that makes and fills recipients' databases (may create databases).")
		fs.StringVar(&share.PasswordFile, "recipient-clickhouse-password-file", os.Getenv("DMIC_RECIPIENT_CLICKHOUSE_PASSWORD_FILE"), "Its password file, mode 0600.")
	}
	validate := func() error {
		err := ch.Validate()
		if keyDir != "" {
			share.Addr, share.Database = ch.Addr, ch.Database
			if secretsDir == "" {
				err = errors.Join(err, errors.New("-recipient-secrets-dir: required with -recipient-key-dir"))
			}
			err = errors.Join(err, share.Validate())
		}
		return err
	}
	os.Exit(service.Main("load", os.Args[1:], register, validate, func(ctx context.Context, d *service.Daemon) error {
		if err := d.WaitForTopics(ctx, load.Access()); err != nil {
			return err
		}
		w := d.NewWriter()
		defer w.Close()
		var recipients *load.Recipients
		if keyDir != "" {
			keys, err := load.NewRecipientKeys(keyDir)
			if err != nil {
				return err
			}
			ag := load.NewAgreements(kafkalog.New(d.Kafka, topics.Agreements, w), keys, d.Clock, ch.Database, d.Log)
			accessv1.RegisterAgreementServiceServer(d.GRPC, ag)
			if err := controllog.CatchUp(ctx, ag.Follow, func(err error) {
				d.Log.Error("following the agreements log; retrying", "err", err)
			}); err != nil {
				return err
			}
			var sconn driver.Conn
			if err := d.WaitFor(ctx, "clickhouse (recipients)", func(ctx context.Context) error {
				c, err := share.Open(ctx)
				if err == nil {
					sconn = c
				}
				return err
			}); err != nil {
				return err
			}
			defer sconn.Close()
			host, port, _ := net.SplitHostPort(ch.Addr)
			recipients = load.NewRecipients(load.RecipientsConfig{Base: ch.Database, UsersDir: usersDir, SecretsDir: secretsDir,
				ClientHost: host, ClientPort: port, Networks: chaccess.Loopback()}, ag, keys, sconn, d.Clock, d.Registry, d.Log)
			go func() { _ = recipients.Run(ctx) }()
		}
		// ClickHouse may be down at start, or go down later, or hold a schema
		// older than this load (not migrated yet): either way load waits with
		// backoff and says so in its health, and commits nothing it has not
		// written.
		var conn driver.Conn
		inserted := load.InsertMetrics(d.Registry) // once: open may run again after an outage
		open := func(ctx context.Context) (pipeline.Sink, func(), error) {
			var err error
			conn, err = ch.Open(ctx)
			if err != nil {
				return nil, nil, err
			}
			if err := chstore.CheckSchema(ctx, conn, ch.Database); err != nil {
				conn.Close()
				return nil, nil, err
			}
			store := chstore.NewWriter(conn, ch.Database, chstore.WithClock(d.Clock), chstore.WithInsertObserver(inserted))
			sink := load.Sink{Store: store, Kafka: kafkapipe.Sink{W: w}}
			if recipients != nil {
				sink.Recipients = recipients
			}
			return sink, func() { conn.Close() }, nil
		}
		return d.RunStage(ctx, service.Stage{
			Access: load.Access(), Outputs: []string{"clickhouse:" + ch.Database, topics.Rejected},
			// Few, large inserts: ClickHouse wants about one per second per table,
			// and its CPU per record grows as inserts shrink. A batch ends at
			// 16 MiB of messages (about 7,000 records, each an activity, a
			// reconciliation and a verdict) before 50,000 messages. What it keeps
			// live until written is its rows packed (about 550 bytes and one
			// pointer-free object an activity row: load.Row) and the runner's
			// few hundred bytes per message, which its buffers keep at the
			// largest batch's size. With the inserts' own buffers that was 72 MB
			// of the 96 MiB limit at 24 MiB (a heap profile in a bench run, whose
			// peak RSS reached 147 MB); at 16 MiB, with INSERT blocks half the
			// size (chstore.blockRows), load peaked at 116 to 122 MB in bench
			// runs. With the rows decoded, 12 MiB already made the collector run
			// against the limit.
			// Load behind (TestLoadMemory, 100,000 records): decoded rows at
			// 8 MiB, 4,500 to 5,600 activity rows per insert and 0.039 to 0.041
			// CPU-s per 1,000 records; at 24 MiB, 5,300 and 0.052; packed at
			// 16 MiB, 6,300 to 7,700 and 0.022 to 0.024 (docs/performance.md,
			// Memory).
			MaxBatch: 50000, MaxBatchBytes: 16 << 20, BatchWait: time.Second, Processor: load.Processor{Clock: d.Clock},
			OpenSink: open, SinkName: "clickhouse " + ch.String(),
			Probe: func(ctx context.Context) error { return conn.Ping(ctx) },
		})
	}))
}
