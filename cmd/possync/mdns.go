package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"possync/appliance"
	"possync/appliance/config"
	"possync/discovery"
)

// stopTimeout bounds how long stop waits for the mDNS goodbye.
const stopTimeout = time.Second

// startAdvertiser announces the box over mDNS on port. It never makes the
// server fail: when mDNS cannot start it logs one warning and returns a
// no-op stop and a nil advertiser. stop sends the goodbyes (TTL 0) and
// returns within about a second; it is safe to call more than once.
func startAdvertiser(ctx context.Context, cfg config.Discovery, port int, dataDir string, logger *slog.Logger) (stop func(), adv *discovery.Advertiser) {
	log := logger.With("component", "discovery")
	noop := func() {}
	if !cfg.Enabled {
		log.Info("mDNS discovery is off (discovery.enabled = false or -mdns=false); find the box by its IP address")
		return noop, nil
	}
	id, source, err := discovery.BoxID(discovery.MachineIDPath, dataDir)
	if id == "" {
		log.Warn("mDNS announcement off: no box id; the Sync Server keeps serving HTTP, find the box by its IP address", "err", err)
		return noop, nil
	}
	if err != nil {
		log.Warn("box id not stored; the instance name will change on restart", "id", id, "err", err)
	}
	adv, err = discovery.NewAdvertiser(discovery.Options{
		Port:       port,
		ID:         id,
		Version:    appliance.Version,
		Instance:   cfg.Instance,
		Hostname:   cfg.Hostname,
		Interfaces: cfg.Interfaces,
		Logger:     logger,
	})
	if err == nil {
		err = adv.Start()
	}
	if err != nil {
		log.Warn("mDNS announcement off: the Sync Server keeps serving HTTP, find the box by its IP address", "err", err)
		return noop, nil
	}
	log.Debug("box id", "id", id, "source", source)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := adv.Run(runCtx); err != nil {
			log.Warn("mDNS announcement stopped: the Sync Server keeps serving HTTP, find the box by its IP address", "err", err)
		}
	}()
	return sync.OnceFunc(func() {
		cancel()
		t := time.NewTimer(stopTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			log.Warn("mDNS goodbye still running after 1s; shutting down anyway")
		}
	}), adv
}
