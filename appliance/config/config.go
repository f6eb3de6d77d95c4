// Package config reads and validates the possync TOML configuration.
//
// Defaults come first (Default), the file is decoded over them with unknown
// keys rejected by name, and Validate reports every bad value with its key.
// The commented example in testdata/possync.example.toml documents every key
// and is checked by the tests to match Default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration file.
type Config struct {
	HTTP      HTTP      `toml:"http"`
	Storage   Storage   `toml:"storage"`
	Bus       Bus       `toml:"bus"`
	Orders    Orders    `toml:"orders"`
	Log       Log       `toml:"log"`
	Discovery Discovery `toml:"discovery"`
	Security  Security  `toml:"security"`
	TLS       TLS       `toml:"tls"`
	Admin     Admin     `toml:"admin"`
	Update    Update    `toml:"update"`
}

// HTTP configures the JSON-RPC and long-poll listener.
type HTTP struct {
	Listen       string   `toml:"listen"`         // host:port; ":8079" = every address
	MaxBodyBytes int      `toml:"max_body_bytes"` // larger request bodies get HTTP 413
	PollHold     Duration `toml:"poll_hold"`      // longest a /longpolling/poll waits before answering []
	ReadTimeout  Duration `toml:"read_timeout"`   // time to read one request body
	// HeaderTimeout is the time to read a request head from its first
	// byte: a client sending its headers slowly (slow-loris) is cut off.
	HeaderTimeout Duration `toml:"header_timeout"`
	WriteTimeout  Duration `toml:"write_timeout"` // time to write one response
	IdleTimeout   Duration `toml:"idle_timeout"`  // keep-alive connections idle longer are closed
	MaxConns      int      `toml:"max_conns"`     // concurrent connections (each waiting poll holds one)
}

// Storage configures the Badger store.
type Storage struct {
	Dir        string   `toml:"dir"`         // data directory
	GCInterval Duration `toml:"gc_interval"` // value-log GC period; 0 turns it off
	CacheMiB   int      `toml:"cache_mib"`   // Badger block cache
	ReserveMiB int      `toml:"reserve_mib"` // free space kept on the data file system; 0 = an eighth of it, 4-128 MiB
}

// Bus configures the long-polling bus.
type Bus struct {
	Retention Duration `toml:"retention"` // notifications are kept at least this long (≥ 10m)
	Replay    Duration `toml:"replay"`    // a poll with last=0 gets notifications this young, published since this start
	// MaxRetainedMiB caps the memory of retained notifications (MiB, 8–1024):
	// beyond it the oldest go before their retention ends.
	MaxRetainedMiB int `toml:"max_retained_mib"`
}

// Orders configures order retention.
type Orders struct {
	Retention     Duration `toml:"retention"`      // deleted/unpaid orders of old runs are purged after this
	PurgeInterval Duration `toml:"purge_interval"` // how often retention runs
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// Discovery configures the mDNS/DNS-SD announcement.
type Discovery struct {
	Enabled    bool     `toml:"enabled"`
	Instance   string   `toml:"instance"`   // DNS-SD instance name; "" = possync-<short id>
	Hostname   string   `toml:"hostname"`   // the .local host name answered when no OS responder runs
	Interfaces []string `toml:"interfaces"` // [] = all up, multicast-capable, non-loopback interfaces
}

// Security configures who is served and the limits that keep one client
// from starving others or exhausting the box.
type Security struct {
	// AllowedNetworks are the CIDR ranges clients may connect from; others
	// get HTTP 403. Default: loopback, RFC 1918, link-local, IPv6 ULA.
	AllowedNetworks []string `toml:"allowed_networks"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) served;
	// empty = any. A request or preflight from another Origin gets 403.
	AllowedOrigins []string `toml:"allowed_origins"`
	// AllowedDatabases are the Odoo database names served; empty = any.
	AllowedDatabases []string `toml:"allowed_databases"`
	// MaxDatabases, MaxMultiSessions and MaxTerminals bound the state the
	// box tracks; a request that would add one more is refused.
	MaxDatabases     int `toml:"max_databases"`
	MaxMultiSessions int `toml:"max_multi_sessions"`
	MaxTerminals     int `toml:"max_terminals"`

	// MaxPollsPerClient caps the waiting long-polls of one client address;
	// a new poll beyond it answers that address's oldest waiting poll at
	// once with a LimitReached error (the client then waits 10-30 s).
	// The server lowers it to half of http.max_conns. 0 = no limit.
	MaxPollsPerClient int `toml:"max_polls_per_client"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Listen:        ":8079",
			MaxBodyBytes:  8 << 20,
			PollHold:      Duration(50 * time.Second),
			ReadTimeout:   Duration(30 * time.Second),
			HeaderTimeout: Duration(10 * time.Second),
			WriteTimeout:  Duration(30 * time.Second),
			IdleTimeout:   Duration(120 * time.Second),
			MaxConns:      4096,
		},
		Storage: Storage{
			Dir:        "./possync-data",
			GCInterval: Duration(10 * time.Minute),
			CacheMiB:   16,
		},
		Bus: Bus{
			Retention:      Duration(10 * time.Minute),
			Replay:         Duration(50 * time.Second),
			MaxRetainedMiB: 64,
		},
		Orders: Orders{
			Retention:     Duration(7 * 24 * time.Hour),
			PurgeInterval: Duration(time.Minute),
		},
		Log: Log{Level: "info", Format: "text"},
		Discovery: Discovery{
			Enabled:    true,
			Hostname:   "possync",
			Interfaces: []string{},
		},
		Security: Security{
			AllowedNetworks:   DefaultAllowedNetworks(),
			AllowedOrigins:    []string{},
			AllowedDatabases:  []string{},
			MaxDatabases:      16,
			MaxMultiSessions:  256,
			MaxTerminals:      1024,
			MaxPollsPerClient: 32,
		},
		TLS:    DefaultTLS(),
		Admin:  DefaultAdmin(),
		Update: DefaultUpdate(),
	}
}

// DefaultAllowedNetworks returns the networks served by default: loopback,
// RFC 1918, link-local (169.254/16, fe80::/10) and IPv6 unique-local
// (fc00::/7) — a shop's LAN, never the internet.
func DefaultAllowedNetworks() []string {
	return []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
		"169.254.0.0/16", "fe80::/10", "fc00::/7"}
}

// Parse decodes TOML from r over the defaults and validates the result.
// name is used in error messages (usually the file path).
func Parse(r io.Reader, name string) (Config, error) {
	cfg := Default()
	data, err := io.ReadAll(r)
	if err != nil {
		return cfg, fmt.Errorf("read config %s: %w", name, err)
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", name, decodeError(err))
	}
	errs := unknownKeys(md, data)
	if err := cfg.Validate(); err != nil {
		var ve Errors
		if errors.As(err, &ve) {
			errs = append(errs, ve...)
		} else {
			errs = append(errs, &FieldError{Msg: err.Error()})
		}
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("config %s: %w", name, errs)
	}
	return cfg, nil
}

// Load reads and validates the file at path.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Default(), fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

func decodeError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := strings.TrimSpace(pe.ErrorWithPosition())
		return errors.New(msg)
	}
	return err
}

// FieldError is one problem with one key.
type FieldError struct {
	Field string // dotted key, e.g. "http.poll_hold"
	Value any    // the bad value, if any
	Msg   string
}

func (e *FieldError) Error() string {
	switch {
	case e.Field == "":
		return e.Msg
	case e.Value == nil:
		return fmt.Sprintf("%s: %s", e.Field, e.Msg)
	default:
		return fmt.Sprintf("%s = %s: %s", e.Field, formatValue(e.Value), e.Msg)
	}
}

func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case Duration:
		return fmt.Sprintf("%q", v.String())
	case []string:
		return fmt.Sprintf("%q", v)
	default:
		return fmt.Sprint(v)
	}
}

// Errors is every problem found in a configuration, one per line.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
