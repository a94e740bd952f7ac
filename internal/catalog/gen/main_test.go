package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCatalogUpToDate regenerates the catalog and compares it with the committed one, so a
// change to the generator or the data cannot go unnoticed. The data lives beside the
// repository (shared/data), so the test is skipped where it is absent.
func TestCatalogUpToDate(t *testing.T) {
	data := filepath.Join("..", "..", "..", "..", "shared", "data", "alibaba")
	if _, err := os.Stat(filepath.Join(data, priceFile)); err != nil {
		t.Skipf("data not available: %v", err)
	}
	got, _, err := generate(data, strings.Split(defaultRegions, ","))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("catalog.json is stale: run go generate ./internal/catalog")
	}
	again, _, err := generate(data, strings.Split(defaultRegions, ","))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, again) {
		t.Error("generator output is not deterministic")
	}
}

func TestRound(t *testing.T) {
	tests := []struct {
		in   float64
		dec  int
		want float64
	}{
		{3.431999921798706, 4, 3.432},
		{0.09000000357627869, 4, 0.09},
		{0.622 * 0.094 / 0.39, 3, 0.15},
		{0.622 * 0.082 / 0.39, 3, 0.131},
	}
	for _, tt := range tests {
		if got := round(tt.in, tt.dec); got != tt.want {
			t.Errorf("round(%v, %d) = %v, want %v", tt.in, tt.dec, got, tt.want)
		}
	}
}
