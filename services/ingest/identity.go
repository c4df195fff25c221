package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	validationv1 "github.com/dmic-nhs/dmic/proto/dmic/validation/v1"
	"github.com/dmic-nhs/dmic/services/internal/dqreport"
	"github.com/dmic-nhs/dmic/services/internal/envelope"
	"github.com/dmic-nhs/dmic/services/internal/record"
)

// Where a client names its idempotency key over HTTP (either, or both with
// the same value).
const (
	KeyParameter = "idempotency_key"
	KeyHeader    = "Idempotency-Key"
)

// keyPattern admits what clients use as keys (UUIDs, file names, batch
// references) and nothing that needs escaping in a URL, a log or SQL.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// checkKey says what is wrong with an idempotency key; "" is no key.
func checkKey(key string) error {
	if key != "" && !keyPattern.MatchString(key) {
		return fmt.Errorf("idempotency key: must be 1 to 128 letters, digits or . _ : -")
	}
	return nil
}

// httpKey is the idempotency key of a request: the query parameter or the
// header, which must agree when both are given.
func httpKey(query, header string) (string, error) {
	header = strings.TrimSpace(header)
	if query != "" && header != "" && query != header {
		return "", fmt.Errorf("idempotency key: the query parameter %s and the header %s differ", KeyParameter, KeyHeader)
	}
	key := query
	if key == "" {
		key = header
	}
	return key, checkKey(key)
}

// submissionIdentity is what makes a resend the same submission: who sends what data
// set from which source (the scope), and the idempotency key, or without one
// the content itself.
type submissionIdentity struct {
	submitter string // as named by the request (upper case), empty when each record names its provider
	dataset   dmicv1.Dataset
	source    dmicv1.Source
	key       string
	digest    string // hex SHA-256 of the content
}

// receipt is the start receipt of an attempt to store the submission.
func (i submissionIdentity) receipt() *validationv1.SubmissionReceipt {
	return &validationv1.SubmissionReceipt{
		SubmissionId: i.submissionID(), Dataset: i.dataset, Source: i.source, SubmitterOrgCode: i.submitter,
		IdempotencyKey: i.key, ContentSha256: i.digest, State: validationv1.SubmissionState_SUBMISSION_STATE_RECEIVING,
	}
}

// scopeOf is the scope and identity a receipt names, as dqreport and the
// store's submission_status compare them: one key (or one content) per
// submitter, data set and source is one submission.
func scopeOf(r *validationv1.SubmissionReceipt) string {
	return strings.Join([]string{r.GetSubmitterOrgCode(), record.DatasetName(r.GetDataset()),
		envelope.SourceName(r.GetSource()), dqreport.Identity(r)}, "\x00")
}

// submissionID is derived from the scope, the key and the content, so that
// a resend gets the id of the first attempt even where the attempt log does
// not know it, and two files can never share an id (the same key with other
// content is refused, but were it not, the files would not mix).
func (i submissionIdentity) submissionID() string {
	sum := sha256.Sum256([]byte("dmic-submission/v1\x00" + scopeOf(&validationv1.SubmissionReceipt{
		SubmitterOrgCode: i.submitter, Dataset: i.dataset, Source: i.source, IdempotencyKey: i.key, ContentSha256: i.digest,
	}) + "\x00" + i.digest))
	return "sub-" + hex.EncodeToString(sum[:12])
}
