package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/internal/record"
	"github.com/dmic-nhs/dmic/services/tools/devpki"
	"github.com/dmic-nhs/dmic/services/tools/synth"
)

// subKey is what one submission shares: ingest takes a submission from one
// submitter, for one source and one data set.
type subKey struct {
	source    dmicv1.Source
	submitter string
	dataset   dmicv1.Dataset
}

func keyOf(it *synth.Item) subKey { return subKey{it.Source, it.Submitter, it.Dataset} }

// workload is a generated set of records held once, as raw lines, with what
// each line is submitted under and the expected final state.
type workload struct {
	lines [][]byte
	keys  []subKey
	keyOf []uint16 // index into keys, per line
	// idOf is a hash of each line's record id (0: none), so that a
	// submission carries a record id at most once (rule DUP-001).
	idOf []uint64
	// rows is the number of distinct record identities (submitter, data set,
	// CDS unique identifier) among the good lines: the fewest rows the
	// activity table can hold once all are loaded, because ReplacingMergeTree
	// merges collapse a record's revisions and delete into one row per
	// partition, but never below one.
	rows   int
	expect synth.Expectation
	// dateMin and dateMax bound the records' activity dates (YYYY-MM-DD).
	dateMin, dateMax string
}

// bytes is the size of the lines.
func (w *workload) bytes() int {
	n := 0
	for _, l := range w.lines {
		n += len(l)
	}
	return n
}

var errEnough = errors.New("enough records")

// generate streams cfg and keeps exactly n items (cfg.Records must be large
// enough). Items are made slim for synth.Expect, which needs only their
// identity and fate, so that each line's JSON is held once.
func generate(cfg synth.Config, n int) (*workload, error) {
	w := &workload{lines: make([][]byte, 0, n), keyOf: make([]uint16, 0, n)}
	slim := make([]synth.Item, 0, n)
	index := map[subKey]uint16{}
	identities := map[uint64]struct{}{} // hashes, to hold 1M identities in little memory
	err := synth.Stream(cfg, func(it synth.Item) error {
		if len(w.lines) == n {
			return errEnough
		}
		k := keyOf(&it)
		ki, ok := index[k]
		if !ok {
			if len(w.keys) == 1<<16-1 {
				return fmt.Errorf("more than %d submission keys", 1<<16-1)
			}
			ki = uint16(len(w.keys))
			index[k] = ki
			w.keys = append(w.keys, k)
		}
		w.lines = append(w.lines, it.JSON)
		w.keyOf = append(w.keyOf, ki)
		h := fnv.New64a()
		h.Write([]byte(it.Submitter + "|" + strconv.Itoa(int(it.Dataset)) + "|" + it.RecordID))
		id := h.Sum64()
		if len(it.Bad) == 0 {
			identities[id] = struct{}{}
		}
		if it.RecordID == "" {
			id = 0
		}
		w.idOf = append(w.idOf, id)
		if d := it.ActivityDate; d != "" {
			if w.dateMin == "" || d < w.dateMin {
				w.dateMin = d
			}
			if d > w.dateMax {
				w.dateMax = d
			}
		}
		it.JSON = nil
		it.NHSNumber, it.BirthDate, it.Postcode, it.LocalPatientID, it.ActivityDate = "", "", "", "", ""
		slim = append(slim, it)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	if len(w.lines) < n {
		return nil, fmt.Errorf("generator gave %d records, want %d", len(w.lines), n)
	}
	w.rows = len(identities)
	w.expect = synth.Expect(slim)
	return w, nil
}

// chunk is one planned submission: line indices sharing a key.
type chunk struct {
	key   subKey
	lines []int32
}

// plan groups lines into submissions of at most size lines per key, in the
// order of each submission's first line, so the submission sequence follows
// the generator's stream as closely as grouping allows. A record id goes at
// most once into a submission: a revision of a line still in an open
// submission closes it first, as a provider's system must (rule DUP-001).
func plan(w *workload, size int) []chunk {
	open := make([]*chunk, len(w.keys))
	ids := make([]map[uint64]bool, len(w.keys))
	var out []chunk
	for i, k := range w.keyOf {
		c := open[k]
		if c != nil && w.idOf[i] != 0 && ids[k][w.idOf[i]] {
			out = append(out, *c)
			c = nil
		}
		if c == nil {
			c = &chunk{key: w.keys[k]}
			open[k] = c
			ids[k] = map[uint64]bool{}
		}
		c.lines = append(c.lines, int32(i))
		if w.idOf[i] != 0 {
			ids[k][w.idOf[i]] = true
		}
		if len(c.lines) == size {
			out = append(out, *c)
			open[k] = nil
		}
	}
	for _, c := range open {
		if c != nil {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b chunk) int { return int(a.lines[0] - b.lines[0]) })
	return out
}

// ingestClient posts NDJSON submissions to ingest, each with the
// certificate of its submitter (a provider's own, or the national
// exchange's for national copies): ingest takes the submitter and the
// source from the certificate.
type ingestClient struct {
	base    string
	certs   *devpki.Submitters
	retries atomic.Int64 // submissions sent more than once
}

func newIngestClient(base string, pki devpki.Dir, conns int) *ingestClient {
	return &ingestClient{base: base, certs: devpki.NewSubmitters(pki, conns)}
}

// ack is ingest's answer to one submission.
type ack struct {
	ID       string
	Accepted int64
	Rejected int64
	At       time.Time
}

// post sends one submission and returns ingest's answer. A refused or failed
// submission is retried (ingest may be briefly unable to reach the broker);
// resending is harmless for the final state because records keep their keys.
func (c *ingestClient) post(ctx context.Context, k subKey, body []byte) (ack, error) {
	q := url.Values{}
	q.Set("dataset", record.DatasetName(k.dataset))
	q.Set("results", "errors")
	u := c.base + "/v1/submissions?" + q.Encode()
	client, err := c.certs.For(k.submitter, k.source == dmicv1.Source_SOURCE_NATIONAL)
	if err != nil {
		return ack{}, err
	}
	var lastErr error
	for attempt := 1; attempt <= 30; attempt++ {
		if attempt > 1 {
			c.retries.Add(1)
			select {
			case <-ctx.Done():
				return ack{}, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return ack{}, fmt.Errorf("submission request: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ack{}, ctx.Err()
			}
			lastErr = err
			continue
		}
		var out struct {
			SubmissionID string      `json:"submission_id"`
			Accepted     json.Number `json:"accepted"`
			Rejected     json.Number `json:"rejected"`
			Error        string      `json:"error"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		at := time.Now()
		if resp.StatusCode == http.StatusOK && derr == nil {
			a := ack{ID: out.SubmissionID, At: at}
			if out.Accepted != "" {
				a.Accepted, _ = out.Accepted.Int64()
			}
			if out.Rejected != "" {
				a.Rejected, _ = out.Rejected.Int64()
			}
			return a, nil
		}
		lastErr = fmt.Errorf("ingest answered %s: %s", resp.Status, out.Error)
	}
	return ack{}, fmt.Errorf("submission to %s not accepted after retries: %w", k.submitter, lastErr)
}

// body joins lines into one NDJSON submission body, reusing buf.
func body(buf *bytes.Buffer, lines [][]byte, idx []int32) []byte {
	buf.Reset()
	for _, i := range idx {
		buf.Write(lines[i])
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// submitAll posts every chunk with workers concurrent submissions and returns
// the time the first one started and the time the last answer came.
func submitAll(ctx context.Context, c *ingestClient, w *workload, chunks []chunk, workers int) (start, end time.Time, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan chunk)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for ch := range next {
				if _, err := c.post(ctx, ch.key, body(&buf, w.lines, ch.lines)); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	start = time.Now()
feed:
	for _, ch := range chunks {
		select {
		case next <- ch:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	end = time.Now()
	if firstErr != nil {
		return start, end, firstErr
	}
	return start, end, ctx.Err()
}
