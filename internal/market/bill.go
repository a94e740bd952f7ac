package market

import "time"

// Bill returns the bill lines of in from its creation to until (or to its end,
// if earlier): per second, protection at the purchase price, then one line per
// stretch of constant real-time price; pay-as-you-go at its price throughout.
// It is the one place billing is computed: for the lines written when an
// instance ends and for the running total of a live one.
func Bill(prices Prices, in *Instance, until time.Time) []BillLine {
	if !in.Ended.IsZero() && in.Ended.Before(until) {
		until = in.Ended
	}
	if !until.After(in.Created) {
		return nil
	}
	var lines []BillLine
	line := func(from, to time.Time, price float64) {
		if to.After(from) {
			lines = append(lines, BillLine{Instance: in.ID, From: from, To: to, Price: price,
				Amount: price * to.Sub(from).Seconds() / 3600})
		}
	}
	if !in.Spot {
		line(in.Created, until, in.PurchasePrice)
		return lines
	}
	protected := in.ProtectionEnd()
	if protected.After(until) {
		protected = until
	}
	line(in.Created, protected, in.PurchasePrice)
	path := prices.Path(in.Offering, protected, until)
	for i, p := range path {
		to := until
		if i+1 < len(path) {
			to = path[i+1].At
		}
		line(p.At, to, p.Price)
	}
	return lines
}

// Total adds up the amounts of lines.
func Total(lines []BillLine) float64 {
	var sum float64
	for _, l := range lines {
		sum += l.Amount
	}
	return sum
}
