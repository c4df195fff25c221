package kafkaconn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dmic-nhs/dmic/services/internal/broker"
	"github.com/dmic-nhs/dmic/services/internal/broker/brokertest"
	"github.com/dmic-nhs/dmic/services/internal/kafkaconn"
	"github.com/dmic-nhs/dmic/services/internal/pipeline/kafkapipe"
	"github.com/dmic-nhs/dmic/services/internal/secret"
	"github.com/dmic-nhs/dmic/services/internal/topics"
)

func writeFile(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "s3cret\n", 0o600)
	open := writeFile(t, dir, "open", "s3cret\n", 0o644)
	notPEM := writeFile(t, dir, "ca.pem", "not a certificate\n", 0o644)
	tests := []struct {
		name string
		cfg  kafkaconn.Config
		env  string
		want []string // one line each; none: valid
	}{
		{"SCRAM from a file", kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512, User: "dmic-load", PasswordFile: pw}, "", nil},
		{"SCRAM from the environment", kafkaconn.Config{Mechanism: kafkaconn.ScramSHA256, User: "dmic-load"}, "s3cret", nil},
		{"none", kafkaconn.Config{Mechanism: kafkaconn.None, User: "dmic-load"}, "", nil},
		{"no password", kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512, User: "dmic-load"}, "",
			[]string{"-kafka-sasl-password-file: required with SASL (or the environment variable DMIC_KAFKA_SASL_PASSWORD)"}},
		{"a password file others may read", kafkaconn.Config{Mechanism: kafkaconn.ScramSHA512, User: "dmic-load", PasswordFile: open}, "",
			[]string{"chmod 600"}},
		{"a password file with no SASL", kafkaconn.Config{Mechanism: kafkaconn.None, PasswordFile: pw}, "",
			[]string{"-kafka-sasl-password-file: given with -kafka-sasl-mechanism none"}},
		{"everything at once", kafkaconn.Config{Mechanism: "PLAIN", TLSCA: notPEM, TLSServerName: "kafka"}, "",
			[]string{`-kafka-sasl-mechanism: "PLAIN"`, "-kafka-sasl-user: required", "-kafka-sasl-password-file: required", "-kafka-tls-ca: " + notPEM + " holds no PEM certificate"}},
		{"a server name without TLS", kafkaconn.Config{Mechanism: kafkaconn.None, TLSServerName: "kafka"}, "",
			[]string{"-kafka-tls-server-name: given without"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv(kafkaconn.PasswordEnv, tt.env)
			}
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				if _, err := tt.cfg.Cluster([]string{"localhost:9092"}); err != nil {
					t.Fatalf("Cluster = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to mention %q", err, w)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tt.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", n, len(tt.want), err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Error("an error holds the password")
			}
		})
	}
}

// There is no flag that takes a password: a command line is readable by
// every user of the machine.
func TestNoPasswordFlag(t *testing.T) {
	var c kafkaconn.Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Name, "password") && !strings.HasSuffix(f.Name, "-file") {
			t.Errorf("flag -%s takes a password", f.Name)
		}
	})
	if err := fs.Parse([]string{"-kafka-sasl-password", "x"}); err == nil {
		t.Error("-kafka-sasl-password was accepted")
	}
}

func TestNewRefuses(t *testing.T) {
	pw := secret.Of("p", "test")
	for name, tt := range map[string]struct {
		brokers []string
		auth    kafkaconn.Auth
	}{
		"no brokers":           {nil, kafkaconn.Auth{Mechanism: kafkaconn.None}},
		"SCRAM without user":   {[]string{"b:1"}, kafkaconn.Auth{Mechanism: kafkaconn.ScramSHA512, Password: pw}},
		"SCRAM without pass":   {[]string{"b:1"}, kafkaconn.Auth{Mechanism: kafkaconn.ScramSHA512, User: "u"}},
		"a user without SASL":  {[]string{"b:1"}, kafkaconn.Auth{Mechanism: kafkaconn.None, User: "u"}},
		"an unknown mechanism": {[]string{"b:1"}, kafkaconn.Auth{Mechanism: "GSSAPI", User: "u", Password: pw}},
		"no mechanism at all":  {[]string{"b:1"}, kafkaconn.Auth{}},
	} {
		if _, err := kafkaconn.New(tt.brokers, tt.auth, nil); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestStringHidesThePassword(t *testing.T) {
	c, err := kafkaconn.New([]string{"k1:9092", "k2:9092"}, kafkaconn.Auth{Mechanism: kafkaconn.ScramSHA512, User: "dmic-load", Password: secret.Of("hunter2", "test")}, &tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.String(), "k1:9092,k2:9092 as dmic-load (SCRAM-SHA-512, TLS)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// newCA makes a CA and a certificate for 127.0.0.1 signed by it: the
// broker's TLS, and the CA file a client verifies it with.
func newCA(t *testing.T, dir string) (server *tls.Config, caFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kafka"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"kafka"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = writeFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), 0o644)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, caFile
}

// SASL/SCRAM over TLS, as production runs, configured as a service is
// (password file, CA file); without the CA, or without TLS, nothing gets in.
func TestSCRAMOverTLS(t *testing.T) {
	dir := t.TempDir()
	server, caFile := newCA(t, dir)
	creds := filepath.Join(dir, "creds")
	cfg := kafkaconn.Config{Mechanism: broker.Mechanism, User: topics.ServicePrincipal("ingest"), TLSCA: caFile}
	cfg.PasswordFile = broker.PasswordFile(creds, cfg.User)
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	b := brokertest.New(t, broker.WithCredentialsDir(creds), broker.WithTLS(server, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Cluster([]string{b.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS() {
		t.Fatal("a CA file did not turn TLS on")
	}
	produce := func(c kafkaconn.Cluster) error {
		w := kafkapipe.NewWriter(c, kafkapipe.WithMaxAttempts(1))
		defer w.Close()
		return w.WriteMessages(ctx, kafka.Message{Topic: topics.Raw, Value: []byte(`{}`)})
	}
	if err := produce(c); err != nil {
		t.Fatalf("ingest over SASL_SSL: %v", err)
	}
	// The superuser reads it back over TLS too.
	r := brokertest.Admin(t, b).NewReader(kafka.ReaderConfig{GroupID: "dmic-tls-test", Topic: topics.Raw, StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if _, err := r.ReadMessage(ctx); err != nil {
		t.Fatalf("read back over TLS: %v", err)
	}

	plain := cfg
	plain.TLSCA = ""
	pc, err := plain.Cluster([]string{b.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := produce(pc); err == nil {
		t.Error("a client without TLS got in")
	}
	_, otherCA := newCA(t, t.TempDir())
	wrong := cfg
	wrong.TLSCA = otherCA
	wc, err := wrong.Cluster([]string{b.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := produce(wc); err == nil {
		t.Error("a client trusting another CA got in")
	}
}
