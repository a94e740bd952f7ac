package console_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestMarketAdvice: the market page's pools carry DescribeSpotAdvice's
// interruption rate and discount, each on its own zone's row.
func TestMarketAdvice(t *testing.T) {
	f := start(t)
	c := client(t)
	f.signIn(t, c)
	page := f.get(t, c, "market?type=ecs.c5.large", http.StatusOK)
	advice, err := f.svc.DescribeSpotAdvice(context.Background(), eciapi.DescribeSpotAdviceRequest{InstanceTypes: []string{"ecs.c5.large"}})
	if err != nil || len(advice.Advice) == 0 {
		t.Fatalf("advice: %+v %v", advice, err)
	}
	for _, a := range advice.Advice {
		_, row, ok := strings.Cut(page, "<tr><td>"+a.ZoneId+"</td>")
		row, _, _ = strings.Cut(row, "</tr>")
		rate := fmt.Sprintf("%s (%.1f%%)", a.InterruptRateDesc, 100*a.InterruptionRate)
		discount := fmt.Sprintf("%d%% of pay-as-you-go", a.AverageSpotDiscount)
		if !ok || !strings.Contains(row, rate) || !strings.Contains(row, discount) || a.AverageSpotDiscount <= 0 {
			t.Errorf("%s: want %q and %q in its row: %q", a.ZoneId, rate, discount, row)
		}
	}
}
