// Package market holds the rules of the spot market (SPEC section 3) as a
// deterministic core, shaped like etcd's raft: no goroutines, no I/O, no wall
// clock. The caller hands it the time and reads what happened from Ready.
//
// The live ECI service and the simulator drive this one implementation:
//
//	core := market.New(market.Config{Prices: book})
//	for {
//		now := clock.Now()              // market time: scaled wall time, or virtual
//		core.Advance(now)               // checks, notices and releases due by now
//		rd := core.Ready()
//		persist(rd.Instances, rd.Events, rd.Lines) // one transaction, before acting
//		act(rd.Events)                  // e.g. stop the containers of released instances
//		sleepUntil(core.NextDue())
//	}
//
// Create and Stop are driven the same way: call them, then handle Ready.
//
// Rules, as SPEC section 3 states them:
//   - An instance is created in the cheapest candidate pool (zone and type) of the
//     first preference group that has stock and a market price at or below the bid.
//     SpotAsPriceGo bids the pay-as-you-go price; SpotWithPriceLimit its limit.
//   - During the protection period (whole hours) nothing is checked and the price
//     is the one at purchase.
//   - After it, checks run every CheckInterval on a grid anchored at creation. At a
//     check, a price above the bid or a pool with fewer units of stock than active
//     instances decides the release: the notice (SpotToBeReleased) goes out at the
//     check and the release follows NoticeLead later. Released instances are kept
//     with state Expired.
//   - When no pool has spot stock at or under the bid (short, or priced above
//     the limit) and the bid asks for fallback, the instance is created
//     pay-as-you-go instead (SpotDegraded) and is never reclaimed.
//   - Billing is per second: protection at the purchase price, then the real-time
//     price; pay-as-you-go at the type's price; it stops at release or stop.
//
// Pay-as-you-go instances do not consume spot stock: spot stock is the spare
// capacity a pool sells as spot.
package market
