package queue

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// pki is a CA and the server and client certificates it signed, as PEM
// files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "friendflow test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (cert, keyFile string) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	p := pki{ca: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return p
}

// startSecureServer runs a JetStream server on loopback that requires TLS
// with a client certificate, configured further by edit (authentication).
func startSecureServer(t *testing.T, p pki, edit func(*server.Options)) string {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: p.serverCert, KeyFile: p.serverKey, CaFile: p.ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := &server.Options{
		ServerName: "secure", Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		TLS: true, TLSVerify: true, TLSConfig: tc, NoLog: true, NoSigs: true,
	}
	edit(opts)
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("secure server not ready")
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", ns.Addr().(*net.TCPAddr).Port)
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var secureJobs atomic.Int64

// openSecure opens a queue on url and runs one job through it.
func openSecure(t *testing.T, url string, auth Auth, tls TLS, log *slog.Logger) error {
	t.Helper()
	s := newScript()
	reg := &actions.Registry{}
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := Open(ctx, Config{URL: url, Auth: auth, TLS: tls, SdkAppid: 1400000001, Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	defer q.Stop(5 * time.Second)
	runTest(t, q)
	id := fmt.Sprintf("tls-job-%d", secureJobs.Add(1))
	enqueue(t, q, id, mkJob(id, "ok"))
	eventually(t, 10*time.Second, "the job done over TLS", func() bool { return s.doneCount(id) == 1 })
	return nil
}

// TestTLSAndEachKindOfAuthentication connects to servers that require TLS
// with a client certificate and, in turn, a user and password, an NKey,
// and a credentials file (operator mode: user JWT signed by an account
// signed by the operator the server trusts).
func TestTLSAndEachKindOfAuthentication(t *testing.T) {
	p := newPKI(t)
	tls := TLS{CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey}
	dir := t.TempDir()

	t.Run("user and password", func(t *testing.T) {
		url := startSecureServer(t, p, func(o *server.Options) { o.Username, o.Password = "ff", "s3cret-pw" })
		if err := openSecure(t, url, Auth{User: "ff", Password: "s3cret-pw"}, tls, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		if err := openSecure(t, url, Auth{User: "ff", Password: "wrong"}, tls, testLogger(t)); err == nil ||
			!strings.Contains(err.Error(), "Authorization Violation") {
			t.Errorf("a wrong password = %v, want an authorization violation", err)
		}
		if err := openSecure(t, url, Auth{User: "ff", Password: "s3cret-pw"}, TLS{CAFile: p.ca}, testLogger(t)); err == nil {
			t.Error("connected without the client certificate the server requires")
		}
		if err := openSecure(t, url, Auth{User: "ff", Password: "s3cret-pw"}, TLS{}, testLogger(t)); err == nil {
			t.Error("connected without trusting the server's CA")
		}
		// A password in the URL works, and never reaches the log.
		var logs lockedBuffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		withPass := strings.Replace(url, "nats://", "nats://ff:s3cret-pw@", 1)
		if err := openSecure(t, withPass, Auth{}, tls, log); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs.String(), "s3cret-pw") || !strings.Contains(logs.String(), "connected to NATS") {
			t.Errorf("log shows the password, or not the connection:\n%s", logs.String())
		}
		err := openSecure(t, strings.Replace(withPass, "s3cret-pw", "wrong-pw", 1), Auth{}, tls, testLogger(t))
		if err == nil || strings.Contains(err.Error(), "wrong-pw") || !strings.Contains(err.Error(), "ff:xxxxx@") {
			t.Errorf("error for a wrong password in the URL: %v; want the URL redacted", err)
		}
	})

	t.Run("nkey", func(t *testing.T) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		seedFile := filepath.Join(dir, "user.nk")
		if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		url := startSecureServer(t, p, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
		if err := openSecure(t, url, Auth{NKeyFile: seedFile}, tls, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		if err := openSecure(t, url, Auth{}, tls, testLogger(t)); err == nil {
			t.Error("connected without the NKey")
		}
	})

	t.Run("credentials file", func(t *testing.T) {
		op, _ := nkeys.CreateOperator()
		opPub, _ := op.PublicKey()
		opClaims := jwt.NewOperatorClaims(opPub)
		opJWT, err := opClaims.Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		opDecoded, err := jwt.DecodeOperatorClaims(opJWT)
		if err != nil {
			t.Fatal(err)
		}
		acc, _ := nkeys.CreateAccount()
		accPub, _ := acc.PublicKey()
		accClaims := jwt.NewAccountClaims(accPub)
		accClaims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		accJWT, err := accClaims.Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		user, _ := nkeys.CreateUser()
		userPub, _ := user.PublicKey()
		userJWT, err := jwt.NewUserClaims(userPub).Encode(acc)
		if err != nil {
			t.Fatal(err)
		}
		userSeed, _ := user.Seed()
		creds, err := jwt.FormatUserConfig(userJWT, userSeed)
		if err != nil {
			t.Fatal(err)
		}
		credsFile := filepath.Join(dir, "user.creds")
		if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
			t.Fatal(err)
		}
		sys, _ := nkeys.CreateAccount()
		sysPub, _ := sys.PublicKey()
		sysJWT, err := jwt.NewAccountClaims(sysPub).Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		resolver := &server.MemAccResolver{}
		for pub, claims := range map[string]string{accPub: accJWT, sysPub: sysJWT} {
			if err := resolver.Store(pub, claims); err != nil {
				t.Fatal(err)
			}
		}
		url := startSecureServer(t, p, func(o *server.Options) {
			o.TrustedOperators = []*jwt.OperatorClaims{opDecoded}
			o.AccountResolver = resolver
			o.SystemAccount = sysPub
		})
		if err := openSecure(t, url, Auth{CredsFile: credsFile}, tls, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		if err := openSecure(t, url, Auth{}, tls, testLogger(t)); err == nil {
			t.Error("connected without credentials")
		}
	})
}

func TestAuthAndTLSSettingsThatCannotWork(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"two methods", Config{URL: "nats://127.0.0.1:1", Auth: Auth{CredsFile: "a", NKeyFile: "b"}}, "use one of"},
		{"user without password", Config{URL: "nats://127.0.0.1:1", Auth: Auth{User: "u"}}, "needs a password"},
		{"cert without key", Config{URL: "nats://127.0.0.1:1", TLS: TLS{CertFile: "c"}}, "needs its key"},
		{"embedded", Config{DataDir: t.TempDir(), Auth: Auth{User: "u", Password: "p"}}, "external cluster"},
		{"namespace", Config{DataDir: t.TempDir(), Namespace: "Bad.Name"}, "namespace"},
	} {
		_, err := Open(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open = %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"nats://a:1":                             "nats://a:1",
		"nats://u:pw@a:1,tls://v:pw2@b:2":        "nats://u:xxxxx@a:1,tls://v:xxxxx@b:2",
		"nats://tok3n@a:1":                       "nats://xxxxx@a:1",
		"u:pw@a:1":                               "nats://u:xxxxx@a:1",
		"nats://u:p%zz@a:1":                      "<unparsable URL>",
		"nats://a:1, nats://user:hunter2@b:4222": "nats://a:1,nats://user:xxxxx@b:4222",
	} {
		if got := RedactURLs(in); got != want {
			t.Errorf("RedactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}
