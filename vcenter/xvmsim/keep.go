package xvmsim

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WithPort serves the lab's vCenters on fixed loopback ports: the first (vc-east) on
// port, the next on port+1, and so on. The default, 0, takes any free ports.
func WithPort(port int) Option {
	return func(o *options) {
		if port > 0 {
			o.port = port
		}
	}
}

// WithStateDir keeps each vCenter's certificate and key (NAME.pem) and password
// (NAME.password) in dir: made on the first start, reused after. With WithPort, a
// restarted lab has the same URLs, thumbprints and passwords, so a config written for
// it stays valid.
func WithStateDir(dir string) Option {
	return func(o *options) { o.stateDir = dir }
}

// keptCertLife is how long a kept certificate is valid; an expired one is replaced.
const keptCertLife = 365 * 24 * time.Hour

// frontAddr is where the front door of the vCenter that starts index-th listens.
func (l *Lab) frontAddr(index int) string {
	if l.opt.port == 0 {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.opt.port+index))
}

// credentials returns the vCenter's certificate and password: kept ones when a state dir
// holds them, new ones otherwise (written there when there is a state dir).
func (l *Lab) credentials(name string) (*tls.Config, string, error) {
	if l.opt.stateDir == "" {
		cfg, _, err := selfSignedCert(name, 24*time.Hour)
		if err != nil {
			return nil, "", err
		}
		pw, err := randomPassword()
		return cfg, pw, err
	}
	if err := os.MkdirAll(l.opt.stateDir, 0o700); err != nil {
		return nil, "", err
	}
	pwFile := filepath.Join(l.opt.stateDir, name+".password")
	pw, err := os.ReadFile(pwFile)
	password := strings.TrimSpace(string(pw))
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && password == ""):
		if password, err = randomPassword(); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
			return nil, "", err
		}
	case err != nil:
		return nil, "", err
	}
	certFile := filepath.Join(l.opt.stateDir, name+".pem")
	if cfg, err := loadCert(certFile); err == nil {
		return cfg, password, nil
	} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errExpired) {
		return nil, "", fmt.Errorf("kept certificate %s: %w (remove it to make a new one)", certFile, err)
	}
	cfg, pemBytes, err := selfSignedCert(name, keptCertLife)
	if err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
		return nil, "", err
	}
	return cfg, password, nil
}

var errExpired = errors.New("certificate expired")

func loadCert(file string) (*tls.Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(b, b)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	if time.Now().Add(time.Hour).After(leaf.NotAfter) {
		return nil, errExpired
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// encodePEM is the certificate and its key, as one file.
func encodePEM(der []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...), nil
}
