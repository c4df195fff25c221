package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

func TestKafkaSetupPrint(t *testing.T) {
	var out, errb bytes.Buffer
	if code := kafkaSetup(context.Background(), []string{"-print"}, &out, &errb, time.Second); code != 0 {
		t.Fatalf("kafka-setup -print: %d %s", code, errb.String())
	}
	for _, want := range []string{"User:dmic-validate read topic dmic.raw", "User:dmic-ingest write topic dmic.raw",
		"User:dmic-load read group dmic-load", "User:dmic-operator describe group dmic-*"} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("kafka-setup -print lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "User:dmic-assign read topic dmic.raw") {
		t.Error("assign may read dmic.raw")
	}
}

// kafka-setup as the administrator sets every principal's password from a
// folder (a rotation: the old ones stop working) and the ACL table.
func TestKafkaSetupRotatesPasswords(t *testing.T) {
	creds := t.TempDir()
	b := brokertest.New(t, broker.WithCredentialsDir(creds), broker.WithDefaultPartitions(2))
	fresh := t.TempDir()
	for _, p := range topics.Principals() {
		if err := os.WriteFile(filepath.Join(fresh, p+".password"), []byte("rotated-"+p+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	code := kafkaSetup(context.Background(), []string{"-brokers", b.Addr(), "-partitions", "2",
		"-kafka-sasl-password-file", broker.PasswordFile(creds, topics.Admin), "-passwords-dir", fresh}, &out, &errb, time.Minute)
	if code != 0 {
		t.Fatalf("kafka-setup: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "SCRAM-SHA-512 passwords set") || strings.Contains(out.String()+errb.String(), "rotated-") {
		t.Errorf("kafka-setup said %q %q", out.String(), errb.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	validate := topics.ServicePrincipal("validate")
	connect := func(pw string) error {
		c, err := kafkaconn.New([]string{b.Addr()}, kafkaconn.Auth{Mechanism: broker.Mechanism, User: validate, Password: secret.Of(pw, "test")}, nil)
		if err != nil {
			return err
		}
		conn, err := c.Dial(ctx)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := connect("rotated-" + validate); err != nil {
		t.Errorf("the new password does not work: %v", err)
	}
	old, err := secret.FromFile(broker.PasswordFile(creds, validate))
	if err != nil {
		t.Fatal(err)
	}
	if err := connect(old.Reveal()); err == nil {
		t.Error("the old password still works")
	}

	// A folder missing a principal's file is refused before anything is done.
	if err := os.Remove(filepath.Join(fresh, validate+".password")); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	code = kafkaSetup(context.Background(), []string{"-brokers", b.Addr(),
		"-kafka-sasl-password-file", broker.PasswordFile(creds, topics.Admin), "-passwords-dir", fresh}, &out, &errb, time.Minute)
	if code != 2 || !strings.Contains(errb.String(), validate) {
		t.Errorf("kafka-setup without %s's password: %d %q", validate, code, errb.String())
	}
}
