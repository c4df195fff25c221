package kafkatopics_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
)

// aclsOf lists the ACLs the broker holds for principal, as "op resource name".
func aclsOf(t *testing.T, ctx context.Context, admin kafkaconn.Cluster, principal string) []string {
	t.Helper()
	resp, err := admin.Client(10*time.Second).DescribeACLs(ctx, &kafka.DescribeACLsRequest{Filter: kafka.ACLFilter{
		ResourceTypeFilter: kafka.ResourceTypeAny, ResourcePatternTypeFilter: kafka.PatternTypeAny,
		PrincipalFilter: "User:" + principal, Operation: kafka.ACLOperationTypeAny, PermissionType: kafka.ACLPermissionTypeAny}})
	if err != nil || resp.Error != nil {
		t.Fatalf("describe ACLs: %v %v", err, resp.Error)
	}
	var out []string
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			out = append(out, a.Operation.String()+" "+r.ResourceType.String()+" "+r.ResourceName)
		}
	}
	slices.Sort(out)
	return out
}

func grant(t *testing.T, principal string) topics.Access {
	t.Helper()
	g, ok := topics.GrantOf(principal)
	if !ok {
		t.Fatalf("no grant for %s", principal)
	}
	return g
}

// The broker holds exactly the table's ACLs after Setup, whatever it held
// before: a grant added by hand is removed, one removed by hand is back.
func TestSetupMakesTheTable(t *testing.T) {
	b := brokertest.New(t, broker.WithDefaultPartitions(2))
	ctx := testContext(t)
	admin := brokertest.Admin(t, b)
	assign := topics.ServicePrincipal("assign")
	want := aclsOf(t, ctx, admin, assign)
	if len(want) != len(grant(t, assign).ACLs()) {
		t.Fatalf("assign holds %v, want the table's %v", want, grant(t, assign).ACLs())
	}

	client := admin.Client(10 * time.Second)
	extra := kafka.ACLEntry{ResourceType: kafka.ResourceTypeTopic, ResourceName: topics.Raw, ResourcePatternType: kafka.PatternTypeLiteral,
		Principal: "User:" + assign, Host: "*", Operation: kafka.ACLOperationTypeRead, PermissionType: kafka.ACLPermissionTypeAllow}
	if resp, err := client.CreateACLs(ctx, &kafka.CreateACLsRequest{ACLs: []kafka.ACLEntry{extra}}); err != nil || errors.Join(resp.Errors...) != nil {
		t.Fatalf("add a grant by hand: %v %v", err, resp)
	}
	if _, err := client.DeleteACLs(ctx, &kafka.DeleteACLsRequest{Filters: []kafka.DeleteACLsFilter{{
		ResourceTypeFilter: kafka.ResourceTypeGroup, ResourceNameFilter: "dmic-assign", ResourcePatternTypeFilter: kafka.PatternTypeLiteral,
		PrincipalFilter: "User:" + assign, HostFilter: "*", Operation: kafka.ACLOperationTypeRead, PermissionType: kafka.ACLPermissionTypeAllow}}}); err != nil {
		t.Fatal(err)
	}
	changed := aclsOf(t, ctx, admin, assign)
	if !slices.Contains(changed, "Read Topic "+topics.Raw) || slices.Contains(changed, "Read Group dmic-assign") {
		t.Fatalf("the changes by hand did not take: %v", changed)
	}

	// A second Setup: the passwords it sets are new ones.
	pw := secret.Of("a-new-password-for-assign", "test")
	if err := kafkatopics.Setup(ctx, admin, kafkatopics.SetupConfig{Partitions: 2, Mechanism: broker.Mechanism,
		Passwords: map[string]secret.Secret{assign: pw}}); err != nil {
		t.Fatalf("Setup again: %v", err)
	}
	if got := aclsOf(t, ctx, admin, assign); !slices.Equal(got, want) {
		t.Errorf("after Setup assign holds %v, want %v", got, want)
	}
	c, err := kafkaconn.New([]string{b.Addr()}, kafkaconn.Auth{Mechanism: broker.Mechanism, User: assign, Password: pw}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if conn, err := c.Dial(ctx); err != nil {
		t.Errorf("assign cannot connect with the password Setup set: %v", err)
	} else {
		conn.Close()
	}
}

// A service finds the topics it uses; one it may not use is named, with the
// remedy.
func TestRequire(t *testing.T) {
	b := brokertest.New(t, broker.WithDefaultPartitions(2))
	ctx := testContext(t)
	assign := brokertest.As(t, b, topics.ServicePrincipal("assign"))
	g := grant(t, topics.ServicePrincipal("assign"))
	if err := kafkatopics.Require(ctx, assign, 2, g.Topics()...); err != nil {
		t.Fatalf("Require of assign's topics: %v", err)
	}
	err := kafkatopics.Require(ctx, assign, 2, topics.Raw)
	if err == nil || !strings.Contains(err.Error(), topics.Raw) || !strings.Contains(err.Error(), "dmicctl kafka-setup") {
		t.Errorf("Require of %s as assign = %v, want a refusal naming the topic and the remedy", topics.Raw, err)
	}
}

// On a broker without ACLs a service creates the topics it lacks, and can
// write to them at once.
func TestRequireCreatesWhereAllowed(t *testing.T) {
	b := brokertest.New(t, broker.WithoutAuth(), broker.WithoutTopics())
	ctx := testContext(t)
	c := brokertest.Admin(t, b)
	if err := kafkatopics.Require(ctx, c, 2, topics.Raw, topics.Rejected); err != nil {
		t.Fatalf("Require: %v", err)
	}
	produce(t, ctx, c, topics.Raw, 3)
	got := partitionCounts(t, ctx, c)
	if got[topics.Raw] != 2 || got[topics.Rejected] != 2 || len(got) != 2 {
		t.Errorf("topics after Require: %v, want raw and rejected with 2 partitions", got)
	}
}
