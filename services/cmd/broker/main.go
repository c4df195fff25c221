// Command broker runs the embedded Kafka-protocol broker (kfake) with disk
// persistence, for development and `make run`. Any Kafka client (kafka-go,
// kcat) can use it; production uses a real Kafka cluster instead.
//
// It authenticates with SASL/SCRAM-SHA-512 and authorises by dmic's ACL
// table, as production does: one principal per service, passwords
// generated at first start into -credentials-dir (one file each, mode 0600),
// where the services read theirs. -insecure-no-auth turns both off.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	port := fs.Int("port", 9092, "TCP port to listen on (127.0.0.1).")
	dataDir := fs.String("data-dir", "var/kafka", "Folder for persisted topics, groups and offsets (empty: memory only).")
	credDir := fs.String("credentials-dir", "var/kafka-credentials",
		"Folder of the SCRAM passwords, <principal>.password (mode 0600), generated where missing; also a kcat configuration for the operators' principal.")
	noAuth := fs.Bool("insecure-no-auth", false, "No SASL and no ACLs: anyone who reaches the port may read and write everything (development without credentials only).")
	partitions := fs.Int("partitions", topics.DefaultPartitions, "Partitions of every dmic topic.")
	sync := fs.Bool("sync-writes", false, "fsync every produced batch (durable across a machine crash; slower).")
	httpAddr := fs.String("http-addr", "", "Listen address of /debug/pprof (empty: off).")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", "broker")
	opts := []broker.Option{broker.WithPort(*port), broker.WithDefaultPartitions(*partitions)}
	if *dataDir != "" {
		if err := os.MkdirAll(*dataDir, 0o750); err != nil {
			log.Error("data dir", "err", err)
			return 1
		}
		opts = append(opts, broker.WithDataDir(*dataDir))
	}
	if *sync {
		opts = append(opts, broker.WithSyncWrites())
	}
	if *noAuth {
		opts = append(opts, broker.WithoutAuth())
	} else {
		opts = append(opts, broker.WithCredentialsDir(*credDir))
	}
	b, err := broker.Start(opts...)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !*noAuth {
		if err := broker.WriteKcatConfig(*credDir, b.Addr()); err != nil {
			log.Error("kcat configuration", "err", err)
			b.Close()
			return 1
		}
	}
	if *httpAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		srv := &http.Server{Addr: *httpAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("pprof endpoint", "err", err)
			}
		}()
		defer srv.Close()
	}
	if *noAuth {
		log.Warn("embedded Kafka broker listening WITHOUT authentication or ACLs", "addr", b.Addr(), "data_dir", *dataDir, "pprof", *httpAddr)
	} else {
		log.Info("embedded Kafka broker listening", "addr", b.Addr(), "data_dir", *dataDir, "sasl", broker.Mechanism,
			"credentials_dir", *credDir, "principals", topics.Principals(), "pprof", *httpAddr,
			"kcat", "kcat -b "+b.Addr()+" -F "+broker.KcatConfigFile(*credDir)+" -L")
	}
	fmt.Println(b.Addr())
	<-ctx.Done()
	log.Info("shutting down")
	b.Close()
	return 0
}
