package main

import (
	"context"
	"log/slog"

	"possync/appliance/config"
)

// startAdvertiser announces the box over mDNS. The discovery work (issue 4)
// replaces this body; until then the server logs that it is not announced.
func startAdvertiser(ctx context.Context, cfg config.Discovery, port int, dataDir string, logger *slog.Logger) (stop func()) {
	if cfg.Enabled {
		logger.Warn("mDNS announcement is not available in this build; find the box by its IP address")
	}
	return func() {}
}
