package memstore_test

import (
	"testing"

	"possync/appliance"
	"possync/storage/memstore"
	"possync/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, dir string) appliance.Store {
		return memstore.New()
	})
}
