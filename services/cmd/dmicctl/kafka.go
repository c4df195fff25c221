package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/service"
	"github.com/dmic-nhs/dmic/services/internal/topics"
	"github.com/dmic-nhs/dmic/services/internal/topics/kafkatopics"
)

// kafkaSetup makes a Kafka cluster ready for dmic, as its administrator:
// every topic, a SCRAM credential for each principal of the ACL table
// (passwords from -passwords-dir, <principal>.password), and the ACL table,
// removing any other ACL of those principals (kafkatopics.Setup). It can be
// run again at any time, after a password rotation or a change of the table.
// With -print it shows the ACLs and connects to nothing, for a cluster whose
// ACLs are kept by other tools.
//
// Every flag can also be set as DMIC_<FLAG> (docker-compose's init job).
func kafkaSetup(ctx context.Context, args []string, stdout, stderr io.Writer, timeout time.Duration) int {
	fs := flag.NewFlagSet("dmicctl kafka-setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "localhost:9092", "Kafka bootstrap brokers, comma-separated.")
	partitions := fs.Int("partitions", topics.DefaultPartitions, "Partitions of every topic created.")
	passwordsDir := fs.String("passwords-dir", "",
		"Folder of the principals' SCRAM passwords, <principal>.password (mode 0600; "+topics.Admin+".password too, to change the administrator's); empty: leave the users' credentials as they are.")
	print := fs.Bool("print", false, "Print the ACL table's rules and stop, connecting to nothing.")
	// The administrator is the cluster's superuser (Kafka's super.users).
	admin := kafkaconn.Config{User: topics.Admin}
	admin.RegisterFlags(fs)
	if err := service.ParseFlags(fs, args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmicctl kafka-setup: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *print {
		for _, a := range topics.ACLs() {
			fmt.Fprintln(stdout, a)
		}
		return 0
	}
	var errs []error
	if err := admin.Validate(); err != nil {
		errs = append(errs, err)
	}
	if *partitions < 1 {
		errs = append(errs, fmt.Errorf("-partitions: %d must be at least 1", *partitions))
	}
	mechanism := admin.Mechanism
	if mechanism == kafkaconn.None && *passwordsDir != "" {
		errs = append(errs, fmt.Errorf("-passwords-dir: SCRAM users need a SCRAM mechanism, not -kafka-sasl-mechanism %s", kafkaconn.None))
	}
	passwords, err := readPasswords(*passwordsDir)
	if err != nil {
		errs = append(errs, err)
	}
	var list []string
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			list = append(list, b)
		}
	}
	if len(list) == 0 {
		errs = append(errs, errors.New("-brokers: at least one broker is required"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "dmicctl kafka-setup: invalid configuration:\n%v\n", err)
		return 2
	}
	c, err := admin.Cluster(list)
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl kafka-setup: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = kafkatopics.Setup(ctx, c, kafkatopics.SetupConfig{Partitions: *partitions, Mechanism: mechanism, Passwords: passwords})
	if err != nil {
		fmt.Fprintf(stderr, "dmicctl kafka-setup: %s: %v\n", c, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d topics present; %d ACLs for %s", c, len(topics.All()), len(topics.ACLs()), strings.Join(topics.Principals(), ", "))
	if len(passwords) > 0 {
		fmt.Fprintf(stdout, "; %s passwords set", mechanism)
	}
	fmt.Fprintln(stdout)
	return 0
}

// readPasswords reads every principal's password file in dir; every file
// missing or unsafe is named. The administrator's (topics.Admin) is read too
// if it is there: a rotation of the administrator's password. Nothing when
// dir is "".
func readPasswords(dir string) (map[string]secret.Secret, error) {
	if dir == "" {
		return nil, nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("-passwords-dir: %q is not a folder", dir)
	}
	out := map[string]secret.Secret{}
	var errs []error
	for _, p := range topics.Principals() {
		s, err := secret.FromFile(filepath.Join(dir, p+".password"))
		if err != nil {
			errs = append(errs, fmt.Errorf("-passwords-dir: %s: %w", p, err))
			continue
		}
		out[p] = s
	}
	adminFile := filepath.Join(dir, topics.Admin+".password")
	if _, err := os.Stat(adminFile); err == nil {
		s, err := secret.FromFile(adminFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("-passwords-dir: %s: %w", topics.Admin, err))
		} else {
			out[topics.Admin] = s
		}
	}
	return out, errors.Join(errs...)
}
