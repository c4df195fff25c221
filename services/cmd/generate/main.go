// Command generate makes deterministic synthetic commissioning records and
// submits them to ingest over HTTP (grouped into submissions per submitter,
// source and data set), or writes them as NDJSON for kcat.
//
//	generate -records 2000 -ingest https://localhost:8080 -pki var/pki
//	generate -records 100 -out - | kcat -P -b localhost:9092 -t dmic.raw
//
// Each submission is sent with the certificate of its submitter: a
// provider's records with that provider's (provider-<ODS>.crt of -pki), the
// national copies with the national exchange's (national.crt), because a
// provider may send only its own records (docs/security.md).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/internal/refdata"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

func main() { os.Exit(run()) }

type options struct {
	records     int
	seed        int64
	badShare    float64
	refDir      string
	ingestURL   string
	pki         string
	out         string
	chunk       int
	repeatEvery time.Duration
	expect      string
}

func run() int {
	var o options
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.IntVar(&o.records, "records", 2000, "Activities to generate (national copies come on top).")
	fs.Int64Var(&o.seed, "seed", 1, "Random seed: the same seed gives the same records.")
	fs.Float64Var(&o.badShare, "bad-share", 0.05, "Share of provider records made deliberately bad.")
	fs.StringVar(&o.refDir, "reference-dir", "reference/sample", "Reference data to draw practices, postcodes and providers from.")
	fs.StringVar(&o.ingestURL, "ingest", "https://localhost:8080", "Ingest base URL to submit to.")
	fs.StringVar(&o.pki, "pki", "var/pki", "Folder of the certificates to submit with (as make run writes it): ca.crt, national.crt/.key and provider-<ODS>.crt/.key for each provider.")
	fs.StringVar(&o.out, "out", "", "Write NDJSON to this file ('-' for stdout) instead of submitting.")
	fs.IntVar(&o.chunk, "submission-size", 1000, "Records per submission.")
	fs.DurationVar(&o.repeatEvery, "repeat-every", 0, "After the first run, generate again with the next seed at this interval (0: once).")
	fs.StringVar(&o.expect, "expect", "", "Write the expected final counts (JSON) to this file.")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", "generate")
	ref, err := refdata.LoadDir(o.refDir)
	if err != nil {
		log.Error("reference data", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for seed := o.seed; ; seed++ {
		cfg := synth.Config{Seed: seed, Records: o.records, BadShare: o.badShare,
			Practices: ref.PracticeCodes(), Postcodes: ref.Postcodes(), Providers: ref.TrustCodes()}
		if err := generateOnce(ctx, log, o, cfg); err != nil {
			log.Error("generate", "seed", seed, "err", err)
			return 1
		}
		if o.repeatEvery <= 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(o.repeatEvery):
		}
	}
}

func generateOnce(ctx context.Context, log *slog.Logger, o options, cfg synth.Config) error {
	items, err := synth.Generate(cfg)
	if err != nil {
		return err
	}
	if o.expect != "" {
		b, _ := json.MarshalIndent(synth.Expect(items), "", "  ")
		if err := os.WriteFile(o.expect, b, 0o644); err != nil {
			return err
		}
	}
	if o.out != "" {
		return writeNDJSON(o.out, items)
	}
	return submit(ctx, log, o, devpki.NewSubmitters(devpki.Dir{Path: o.pki}, 2), items)
}

func writeNDJSON(path string, items []synth.Item) error {
	var w io.Writer = os.Stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	for _, it := range items {
		bw.Write(it.JSON)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

type batchKey struct {
	source    dmicv1.Source
	submitter string
	dataset   dmicv1.Dataset
}

// submit posts items in submissions of up to o.chunk records, each to its
// submitter, keeping the generator's order within a submitter.
func submit(ctx context.Context, log *slog.Logger, o options, clients *devpki.Submitters, items []synth.Item) error {
	pending := map[batchKey]*bytes.Buffer{}
	counts := map[batchKey]int{}
	// A record id goes at most once into a submission (rule DUP-001): a
	// revision of a record still pending starts a new submission, as a
	// provider's system must.
	ids := map[batchKey]map[string]bool{}
	var order []batchKey
	var accepted, rejected int64
	flush := func(k batchKey) error {
		buf := pending[k]
		if buf == nil || buf.Len() == 0 {
			return nil
		}
		client, err := clients.For(k.submitter, k.source == dmicv1.Source_SOURCE_NATIONAL)
		if err != nil {
			return err
		}
		a, r, err := post(ctx, client, o.ingestURL, k, buf.Bytes())
		if err != nil {
			return err
		}
		accepted += a
		rejected += r
		buf.Reset()
		counts[k] = 0
		clear(ids[k])
		return nil
	}
	for _, it := range items {
		k := batchKey{it.Source, it.Submitter, it.Dataset}
		if pending[k] == nil {
			pending[k] = &bytes.Buffer{}
			ids[k] = map[string]bool{}
			order = append(order, k)
		}
		if it.RecordID != "" {
			if ids[k][it.RecordID] {
				if err := flush(k); err != nil {
					return err
				}
			}
			ids[k][it.RecordID] = true
		}
		pending[k].Write(it.JSON)
		pending[k].WriteByte('\n')
		counts[k]++
		if counts[k] >= o.chunk {
			if err := flush(k); err != nil {
				return err
			}
		}
	}
	for _, k := range order {
		if err := flush(k); err != nil {
			return err
		}
	}
	log.Info("submitted", "items", len(items), "accepted_at_ingest", accepted, "rejected_at_ingest", rejected)
	return nil
}

// post sends one submission with client (its submitter's certificate: the
// submitter and the source are the certificate's, so the query names
// neither).
func post(ctx context.Context, client *http.Client, base string, k batchKey, body []byte) (accepted, rejected int64, err error) {
	q := url.Values{}
	q.Set("dataset", record.DatasetName(k.dataset))
	q.Set("results", "errors")
	u := base + "/v1/submissions?" + q.Encode()
	for attempt := 1; ; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := client.Do(req)
		if err == nil {
			var out struct {
				Accepted json.Number `json:"accepted"`
				Rejected json.Number `json:"rejected"`
				Error    string      `json:"error"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && derr == nil {
				a, _ := out.Accepted.Int64()
				r, _ := out.Rejected.Int64()
				return a, r, nil
			}
			err = fmt.Errorf("ingest answered %s: %s", resp.Status, out.Error)
		}
		// Ingest may still be starting, or paused: retry for a while. A
		// refusal (401, 403) will not change: say it at once.
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return 0, 0, fmt.Errorf("%s's submission: %w", k.submitter, err)
		}
		if attempt >= 60 || ctx.Err() != nil {
			return 0, 0, err
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
