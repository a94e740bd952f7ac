//go:build tools

// Package kwok pins sigs.k8s.io/kwok, the fake-node peer that the e2e
// benchmark runs beside the virtual node (make kwok builds bin/kwok). Its own
// module keeps kwok's dependencies out of spoteci's go.mod.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
