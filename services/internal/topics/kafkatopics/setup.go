package kafkatopics

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

// SetupConfig is what Setup makes.
type SetupConfig struct {
	// Partitions of every topic created (topics.Spec.Partitions overrides).
	Partitions int
	// Mechanism of the SCRAM credentials made: kafkaconn.ScramSHA512 or
	// kafkaconn.ScramSHA256.
	Mechanism string
	// Passwords of the principals whose SCRAM credential is set, by
	// principal. A principal of the ACL table without a password here gets
	// its ACLs but no credential (one managed elsewhere keeps its own).
	Passwords map[string]secret.Secret
}

// Setup makes the cluster ready for dmic, as its administrator (admin
// must be a superuser): every topic, a SCRAM credential for each principal
// in cfg.Passwords, and the ACL table of package topics. It can be run again
// at any time (the embedded broker does at every start): it creates what is
// missing, sets every password given, and removes any ACL of a table
// principal that the table no longer grants, so the cluster ends up as the
// table says whatever it held before.
func Setup(ctx context.Context, admin kafkaconn.Cluster, cfg SetupConfig) error {
	if err := Ensure(ctx, admin, cfg.Partitions); err != nil {
		return err
	}
	if err := SetPasswords(ctx, admin, cfg.Mechanism, cfg.Passwords); err != nil {
		return err
	}
	return ApplyACLs(ctx, admin, topics.Principals(), topics.ACLs())
}

// scramIterations is Kafka's default and minimum for a SCRAM credential.
const scramIterations = 4096

// SetPasswords creates or replaces the SCRAM credential of each principal.
// The broker is sent a salted hash (RFC 5802's SaltedPassword), never the
// password.
func SetPasswords(ctx context.Context, admin kafkaconn.Cluster, mechanism string, passwords map[string]secret.Secret) error {
	if len(passwords) == 0 {
		return nil
	}
	var mech kafka.ScramMechanism
	var h func() hash.Hash
	var size int
	switch mechanism {
	case kafkaconn.ScramSHA512:
		mech, h, size = kafka.ScramMechanismSha512, sha512.New, sha512.Size
	case kafkaconn.ScramSHA256:
		mech, h, size = kafka.ScramMechanismSha256, sha256.New, sha256.Size
	default:
		return fmt.Errorf("set passwords: mechanism %q is not %s or %s", mechanism, kafkaconn.ScramSHA512, kafkaconn.ScramSHA256)
	}
	var ups []kafka.UserScramCredentialsUpsertion
	for _, user := range slices.Sorted(maps.Keys(passwords)) {
		salt := make([]byte, 32)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("set passwords: salt: %w", err)
		}
		salted, err := pbkdf2.Key(h, passwords[user].Reveal(), salt, scramIterations, size)
		if err != nil {
			return fmt.Errorf("set the password of %s: %w", user, err)
		}
		ups = append(ups, kafka.UserScramCredentialsUpsertion{Name: user, Mechanism: mech, Iterations: scramIterations, Salt: salt, SaltedPassword: salted})
	}
	resp, err := admin.Client(30*time.Second).AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{Upsertions: ups})
	if err != nil {
		return fmt.Errorf("set passwords: %w", err)
	}
	var errs []error
	for _, r := range resp.Results {
		if r.Error != nil {
			errs = append(errs, fmt.Errorf("set the password of %s: %w", r.User, r.Error))
		}
	}
	return errors.Join(errs...)
}

// ApplyACLs makes the ACLs of principals exactly want: it creates the
// rules that are missing and deletes the other rules of those principals.
// Rules of other principals are left alone.
func ApplyACLs(ctx context.Context, admin kafkaconn.Cluster, principals []string, want []topics.ACL) error {
	client := admin.Client(30 * time.Second)
	wanted := map[kafka.ACLEntry]bool{}
	for _, a := range want {
		if !slices.Contains(principals, a.Principal) {
			return fmt.Errorf("apply ACLs: %s names a principal outside %v", a, principals)
		}
		wanted[entry(a)] = true
	}
	have := map[kafka.ACLEntry]bool{}
	for _, p := range principals {
		resp, err := client.DescribeACLs(ctx, &kafka.DescribeACLsRequest{Filter: kafka.ACLFilter{
			ResourceTypeFilter:        kafka.ResourceTypeAny,
			ResourcePatternTypeFilter: kafka.PatternTypeAny,
			PrincipalFilter:           "User:" + p,
			Operation:                 kafka.ACLOperationTypeAny,
			PermissionType:            kafka.ACLPermissionTypeAny,
		}})
		if err != nil {
			return fmt.Errorf("describe the ACLs of %s: %w", p, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("describe the ACLs of %s: %w", p, resp.Error)
		}
		for _, r := range resp.Resources {
			for _, d := range r.ACLs {
				have[kafka.ACLEntry{ResourceType: r.ResourceType, ResourceName: r.ResourceName, ResourcePatternType: r.PatternType,
					Principal: d.Principal, Host: d.Host, Operation: d.Operation, PermissionType: d.PermissionType}] = true
			}
		}
	}
	var stale []kafka.DeleteACLsFilter
	for e := range have {
		if !wanted[e] {
			stale = append(stale, kafka.DeleteACLsFilter{ResourceTypeFilter: e.ResourceType, ResourceNameFilter: e.ResourceName,
				ResourcePatternTypeFilter: e.ResourcePatternType, PrincipalFilter: e.Principal, HostFilter: e.Host,
				Operation: e.Operation, PermissionType: e.PermissionType})
		}
	}
	if len(stale) > 0 {
		resp, err := client.DeleteACLs(ctx, &kafka.DeleteACLsRequest{Filters: stale})
		if err != nil {
			return fmt.Errorf("delete %d stale ACLs: %w", len(stale), err)
		}
		var errs []error
		for _, r := range resp.Results {
			if r.Error != nil {
				errs = append(errs, fmt.Errorf("delete a stale ACL: %w", r.Error))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	var missing []kafka.ACLEntry
	for _, a := range want {
		if e := entry(a); !have[e] && !slices.Contains(missing, e) {
			missing = append(missing, e)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	resp, err := client.CreateACLs(ctx, &kafka.CreateACLsRequest{ACLs: missing})
	if err != nil {
		return fmt.Errorf("create %d ACLs: %w", len(missing), err)
	}
	var errs []error
	for i, e := range resp.Errors {
		if e != nil {
			errs = append(errs, fmt.Errorf("create ACL %s %s %s: %w", missing[i].Principal, missing[i].ResourceName, missing[i].Operation, e))
		}
	}
	return errors.Join(errs...)
}

// entry is a's rule as Kafka stores it: allowed from any host.
func entry(a topics.ACL) kafka.ACLEntry {
	e := kafka.ACLEntry{ResourceType: kafka.ResourceTypeTopic, ResourceName: a.Name, ResourcePatternType: kafka.PatternTypeLiteral,
		Principal: "User:" + a.Principal, Host: "*", PermissionType: kafka.ACLPermissionTypeAllow}
	if a.Resource == topics.GroupResource {
		e.ResourceType = kafka.ResourceTypeGroup
	}
	if a.Prefixed {
		e.ResourcePatternType = kafka.PatternTypePrefixed
	}
	switch a.Operation {
	case topics.ReadOp:
		e.Operation = kafka.ACLOperationTypeRead
	case topics.WriteOp:
		e.Operation = kafka.ACLOperationTypeWrite
	case topics.DescribeOp:
		e.Operation = kafka.ACLOperationTypeDescribe
	}
	return e
}
