package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Issue makes a server certificate (ECDSA P-256) for names and ips, signed
// by ca, with the fixed leaf window.
func (ca *CA) Issue(names []string, ips []net.IP) (*tls.Certificate, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate server key: %w", err)
	}
	cn := "possync"
	if len(names) > 0 {
		cn = names[0]
	}
	// What a till's certificate viewer shows first: the box's own name
	// rather than "localhost".
	if slices.Contains(names, "possync.local") {
		cn = "possync.local"
	} else if i := slices.IndexFunc(names, func(n string) bool { return strings.HasSuffix(n, ".local") }); i >= 0 {
		cn = names[i]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"possync"}},
		NotBefore:             LeafNotBefore,
		NotAfter:              LeafNotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create server certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode server key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certPEM = append(certPEM, ca.PEM...)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("server key pair: %w", err)
	}
	return &pair, certPEM, keyPEM, nil
}

// Auto serves a server certificate issued by the local CA for the box's
// current names and addresses and re-issues it when they change.
type Auto struct {
	ca  *CA
	dir string

	// mu guards the fields that follow.
	mu    sync.Mutex
	cert  *tls.Certificate
	names []string
	ips   []string
}

// NewAuto loads or creates the CA in dir and issues a first certificate.
func NewAuto(dir, caName string, names []string, ips []net.IP) (*Auto, error) {
	ca, err := LoadOrCreateCA(dir, caName)
	if err != nil {
		return nil, err
	}
	a := &Auto{ca: ca, dir: dir}
	if _, err := a.Update(names, ips); err != nil {
		return nil, err
	}
	return a, nil
}

// CA returns the local CA.
func (a *Auto) CA() *CA { return a.ca }

// Update re-issues the server certificate if names or ips differ from the
// current ones (order does not matter) and reports whether it did.
func (a *Auto) Update(names []string, ips []net.IP) (bool, error) {
	names = normNames(names)
	ipStrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		if ip != nil {
			ipStrs = append(ipStrs, ip.String())
		}
	}
	slices.Sort(ipStrs)
	ipStrs = slices.Compact(ipStrs)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cert != nil && slices.Equal(names, a.names) && slices.Equal(ipStrs, a.ips) {
		return false, nil
	}
	parsed := make([]net.IP, len(ipStrs))
	for i, s := range ipStrs {
		parsed[i] = net.ParseIP(s)
	}
	cert, certPEM, keyPEM, err := a.ca.Issue(names, parsed)
	if err != nil {
		return false, err
	}
	if err := writeFile(filepath.Join(a.dir, ServerKey), keyPEM); err != nil {
		return false, err
	}
	if err := writeFile(filepath.Join(a.dir, ServerFile), certPEM); err != nil {
		return false, err
	}
	a.cert, a.names, a.ips = cert, names, ipStrs
	return true, nil
}

// Names returns the DNS names and IP addresses of the current certificate.
func (a *Auto) Names() (names, ips []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.names), slices.Clone(a.ips)
}

// GetCertificate is for tls.Config.GetCertificate.
func (a *Auto) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cert, nil
}

func normNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
