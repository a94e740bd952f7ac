// Package sim is the spot market on a virtual clock: it drives the one market
// core (internal/market) with the time of the next event instead of the wall
// clock, so a month of market runs in seconds and the same seed gives the same
// result, byte for byte.
//
// This package holds what the simulations share: the rules a market runs
// under (Rules: ECI's or AWS's), trace loading and a progress bar. Prices
// and stock come from the service's own price book (prices.Book: the seeded
// model or fixed snapshot prices, with availability traces as stock). The workloads live in
// sub-packages: deadline (the single deadline job of "Can't Be Late", Wu et
// al., NSDI 2024, and its policies) and jobs (Kubernetes-like Jobs of pods
// bidding with the ECI annotations).
//
// No rule of the market is written here: creation, protection, checks,
// notices, releases and billing all happen in market.Core. A simulation only
// chooses the core's Config and the bids, and reads what the core did from
// Ready.
package sim
