// Package console is the service's web console: plain server-rendered pages
// under /console/ on the service's own (loopback) listener, for people
// rather than scripts: the instances with their status, prices and bill so
// far, in pages (updated live over server-sent events: live.go), an instance's timeline (with
// the checks it passed, collapsed, on the market's grid), containers, their
// logs followed over server-sent events (logs.go) and bill lines, a Job's
// instances by state over time (BidFailed and replaced ones counted) with
// its pools and its bill against pay-as-you-go, the bill per pod, Job and
// namespace (and as CSV), and a pool's price history, interruption rate and
// discount with the market override form.
//
// It reads the service only through Service, a few of the service's own
// actions (DescribeContainerGroups, DescribeContainerGroupStatus, which
// tells a live page what changed, DescribeBill, DescribeSpotPriceHistory,
// DescribeAvailableResource, DescribeSpotAdvice, ModifySpotMarket) and
// OpenLog: no rule is implemented twice; the bill per pod, Job and
// namespace is internal/billing's, the check grid internal/market's, the
// charts internal/plot's.
//
// # Security
//
// One admin token opens everything the service does, so the console guards
// it as a password:
//
//   - A sign-in form takes the token (compared in constant time) and opens
//     a server-side session: a random 256-bit ID in a cookie that is
//     HttpOnly, SameSite=Strict, Path=/console/ and Secure over TLS, valid
//     for SessionTTL. The token never appears in a URL; sign-out drops the
//     session.
//   - Every POST passes net/http's CrossOriginProtection (Sec-Fetch-Site and
//     Origin against the Host: a cross-site request is refused with 403) and,
//     once signed in, carries the session's CSRF token in a hidden field,
//     compared in constant time (403 when wrong).
//   - Every answer carries a Content-Security-Policy without inline scripts
//     or styles (scripts and styles are files served from the binary),
//     frame-ancestors 'none' and X-Frame-Options DENY, Referrer-Policy
//     no-referrer, nosniff and Cache-Control no-store.
package console
