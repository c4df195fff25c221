package deidentify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	deidv1 "github.com/dmic-nhs/dmic/proto/dmic/deid/v1"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
	"github.com/dmic-nhs/dmic/services/internal/access"
	"github.com/dmic-nhs/dmic/services/internal/clock"
	"github.com/dmic-nhs/dmic/services/internal/controllog"
	"github.com/dmic-nhs/dmic/services/internal/identity"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// Rotation is one entry of the key rotation log (topics.KeyRotations, keyed
// by domain): from here on, Version is the active key of Domain. It never
// holds a secret: every instance reads the key itself from its key directory.
type Rotation struct {
	Domain  string `json:"domain"`
	Version string `json:"version"`
	// ID lets the instance that published the entry see its own entry
	// applied.
	ID string `json:"id,omitempty"`
	// Time is when the rotation was requested, for people reading the log.
	Time time.Time `json:"time,omitzero"`
	// By is the key custodian who asked (authenticated), for people reading
	// the log; the audit trail (dmic.audit) has it too.
	By *identity.Identity `json:"by,omitempty"`
}

// ErrRotationNotApplied is wrapped by the error that stops an instance when
// the rotation log makes a key active that this instance cannot load (its
// file is missing or refused): pseudonymising on with the previous key would
// give its records pseudonyms no other instance gives.
var ErrRotationNotApplied = errors.New("key rotation not applied")

// KeyService holds the key ring the stage pseudonymises with, follows the
// rotation log, and serves dmic.deid.v1.KeyService. It is the stage's
// didi.KeySource: the ring is swapped atomically, so the pipeline goroutine
// reads it without a lock while a rotation is applied.
type KeyService struct {
	deidv1.UnimplementedKeyServiceServer

	ring atomic.Pointer[didi.KeyRing]

	// mu serialises changes of the ring and guards next and waiting.
	mu sync.Mutex
	// next is the offset of the next log entry to apply: a follower that
	// restarts (broker trouble) skips what it applied, so the active key
	// never steps back through older rotations on the way.
	next    int64
	waiting map[string]chan error // rotation id -> its RotateKey call

	rotations controllog.Log
	replayer  *Replayer
	lg        *slog.Logger
	clock     clock.Clock
}

// KeyServiceOption configures a KeyService.
type KeyServiceOption func(*KeyService)

// WithClock sets the clock that stamps rotation entries. Without it the key
// service reads the wall clock.
func WithClock(c clock.Clock) KeyServiceOption { return func(s *KeyService) { s.clock = c } }

// NewKeyService starts from ring (as loaded from the key directory),
// publishes rotations to the log rotations, and re-pseudonymises with
// replayer.
func NewKeyService(ring *didi.KeyRing, rotations controllog.Log, replayer *Replayer, lg *slog.Logger, opts ...KeyServiceOption) *KeyService {
	s := &KeyService{rotations: rotations, replayer: replayer, lg: lg, waiting: map[string]chan error{}}
	for _, o := range opts {
		o(s)
	}
	s.ring.Store(ring)
	return s
}

// KeyRing implements didi.KeySource.
func (s *KeyService) KeyRing() *didi.KeyRing { return s.ring.Load() }

// FollowLog applies the rotation log: every entry on it, then new ones,
// until ctx ends, restarting after broker errors. caughtUp is called once,
// when the entries present at start are applied: process no record before
// it. It returns an error wrapping ErrRotationNotApplied, and stops, when an
// entry cannot be applied: at start only if no later entry of the same
// domain could (a key since retired may still be named by an older entry
// not yet compacted away); after start, at once.
func (s *KeyService) FollowLog(ctx context.Context, caughtUp func()) error {
	signal := sync.OnceFunc(caughtUp)
	for {
		err := s.follow(ctx, signal)
		if errors.Is(err, ErrRotationNotApplied) || ctx.Err() != nil {
			return err
		}
		s.lg.Error("following the key rotation log; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

// follow reads the log once from its start.
func (s *KeyService) follow(ctx context.Context, caughtUp func()) error {
	fctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	replaying := true
	pending := map[string]error{} // domain -> why its last entry at start did not apply
	err := controllog.Follow(fctx, s.rotations, func(offset int64, doc []byte) {
		domain, err := s.apply(offset, doc)
		switch {
		case err == nil:
			delete(pending, domain)
		case replaying:
			pending[domain] = err
		default:
			stop(err)
		}
	}, func() {
		replaying = false
		for _, err := range pending {
			stop(err)
			return
		}
		caughtUp()
	})
	if cause := context.Cause(fctx); ctx.Err() == nil && errors.Is(cause, ErrRotationNotApplied) {
		return cause
	}
	return err
}

// apply applies one log entry at offset; an entry applied before is skipped.
// It returns the entry's domain and, if the entry names a key this instance
// cannot use, an error wrapping ErrRotationNotApplied.
func (s *KeyService) apply(offset int64, doc []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset < s.next {
		return "", nil
	}
	s.next = offset + 1
	var rot Rotation
	if err := json.Unmarshal(doc, &rot); err != nil || rot.Domain == "" || rot.Version == "" {
		// Not ours to judge further, and nothing to activate: say so and go on.
		s.lg.Error("key rotation log entry is not a rotation; skipped", "topic", topics.KeyRotations, "offset", offset)
		return "", nil
	}
	cur := s.ring.Load()
	next, err := cur.WithKeyFile(rot.Domain, rot.Version)
	if err == nil {
		next, err = next.WithActive(rot.Domain, rot.Version)
	}
	if err != nil {
		err = fmt.Errorf("%w: %s offset %d makes %s/%s the active key, but this instance cannot use it: %w",
			ErrRotationNotApplied, topics.KeyRotations, offset, rot.Domain, rot.Version, err)
		s.answer(rot.ID, err)
		return rot.Domain, err
	}
	previous := cur.ActiveVersions()[rot.Domain]
	s.ring.Store(next)
	if previous != rot.Version {
		s.lg.Info("pseudonymisation key activated", "domain", rot.Domain, "key_version", rot.Version, "previous_version", previous, "offset", offset)
	}
	s.answer(rot.ID, nil)
	return rot.Domain, nil
}

// answer tells a waiting RotateKey call that its entry was applied (or not).
// Called with mu held.
func (s *KeyService) answer(id string, err error) {
	if ch, ok := s.waiting[id]; ok && id != "" {
		ch <- err
		delete(s.waiting, id)
	}
}

// ListKeys implements the gRPC call.
func (s *KeyService) ListKeys(context.Context, *deidv1.ListKeysRequest) (*deidv1.ListKeysResponse, error) {
	out := &deidv1.ListKeysResponse{}
	for _, k := range s.ring.Load().Keys() {
		out.Keys = append(out.Keys, keyInfo(k))
	}
	return out, nil
}

func keyInfo(k didi.KeyInfo) *deidv1.KeyInfo {
	return &deidv1.KeyInfo{Domain: k.Domain, Version: k.Version, Active: k.Active, File: k.File}
}

// RotateKey implements the gRPC call: (generate,) load and check, publish to
// the rotation log, and return once this instance has applied the entry from
// the log, so that the log's order decides between concurrent rotations on
// several instances.
func (s *KeyService) RotateKey(ctx context.Context, req *deidv1.RotateKeyRequest) (*deidv1.RotateKeyResponse, error) {
	domain, version := req.GetDomain(), req.GetVersion()
	access.SetSubject(ctx, "key "+domain+"/"+version)
	ring := s.ring.Load()
	path, err := ring.KeyFile(domain, version)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetGenerate() {
		if ring.HasVersion(domain, version) {
			return nil, status.Errorf(codes.AlreadyExists, "key %s/%s is already loaded: choose a new version to generate", domain, version)
		}
		if err := didi.GenerateKeyFile(path, version); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, status.Errorf(codes.AlreadyExists, "key file %s exists: rotate to it without -generate, or choose a new version", path)
			}
			return nil, status.Errorf(codes.Internal, "generate key %s/%s: %v", domain, version, err)
		}
		s.lg.Info("pseudonymisation key generated", "domain", domain, "key_version", version, "file", path)
	}
	// Load and check before anything reaches the log: an entry naming a key
	// that cannot be used would stop every instance.
	if _, err := ring.WithKeyFile(domain, version); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "key %s/%s cannot be used: %v", domain, version, err)
	}
	previous := ring.ActiveVersions()[domain]

	rot := Rotation{Domain: domain, Version: version, ID: rotationID(), Time: s.clock.Now().UTC()}
	if id, ok := identity.FromContext(ctx); ok {
		rot.By = &id
	}
	doc, err := json.Marshal(rot)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "rotation entry: %v", err)
	}
	done := make(chan error, 1)
	s.mu.Lock()
	s.waiting[rot.ID] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, rot.ID)
		s.mu.Unlock()
	}()
	if err := s.rotations.Publish(ctx, domain, doc); err != nil {
		msg := fmt.Sprintf("key %s/%s not activated: %v", domain, version, err)
		if req.GetGenerate() {
			msg += "; its key file was written: retry without -generate"
		}
		return nil, status.Error(codes.Unavailable, msg)
	}
	select {
	case err := <-done:
		if err != nil {
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
	case <-ctx.Done():
		return nil, status.Errorf(codes.DeadlineExceeded, "key %s/%s is on the rotation log but this instance has not applied it yet: check again with ListKeys", domain, version)
	}
	s.lg.Info("pseudonymisation key rotated", append([]any{"domain", domain, "key_version", version, "previous_version", previous}, callerAttrs(ctx)...)...)
	for _, k := range s.ring.Load().Keys() {
		if k.Domain == domain && k.Version == version {
			return &deidv1.RotateKeyResponse{Key: keyInfo(k), PreviousVersion: previous}, nil
		}
	}
	return nil, status.Errorf(codes.Internal, "key %s/%s applied but not in the ring", domain, version)
}

// callerAttrs are the log attributes of the call's authenticated caller.
func callerAttrs(ctx context.Context) []any {
	if id, ok := identity.FromContext(ctx); ok {
		return id.LogAttrs()
	}
	return nil
}

// rotationID is a random id for a log entry.
func rotationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Repseudonymise implements the gRPC call: the validated records whose
// message time is in [from, to) are de-identified again with the keys
// active now and sent on as if new. It returns when all are written.
func (s *KeyService) Repseudonymise(ctx context.Context, req *deidv1.RepseudonymiseRequest) (*deidv1.RepseudonymiseResponse, error) {
	if req.GetFrom() == nil || req.GetTo() == nil {
		return nil, status.Error(codes.InvalidArgument, "from and to are required")
	}
	from, to := req.GetFrom().AsTime(), req.GetTo().AsTime()
	if !from.Before(to) {
		return nil, status.Errorf(codes.InvalidArgument, "from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	// One ring for the whole replay, even if a rotation lands meanwhile.
	ring := s.ring.Load()
	access.SetSubject(ctx, "validated records received "+from.Format(time.RFC3339)+" to "+to.Format(time.RFC3339))
	s.lg.Info("re-pseudonymising", append([]any{"from", from, "to", to, "key_versions", ring.ActiveVersions()}, callerAttrs(ctx)...)...)
	res, err := s.replayer.Replay(ctx, ring, from, to)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "re-pseudonymise %s to %s: %v (after %d records; replaying again is harmless)",
			from.Format(time.RFC3339), to.Format(time.RFC3339), err, res.Records)
	}
	s.lg.Info("re-pseudonymised", "from", from, "to", to, "records", res.Records, "rejected", res.Rejected)
	return &deidv1.RepseudonymiseResponse{Records: res.Records, Rejected: res.Rejected, KeyVersions: ring.ActiveVersions()}, nil
}
