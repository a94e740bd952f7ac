// Package charts holds spoteci's Helm chart, embedded so that `spoteci up`
// and the tests install the very files a cluster's admin installs.
package charts

import "embed"

// Spoteci is the chart charts/spoteci.
//
//go:embed all:spoteci
var Spoteci embed.FS
