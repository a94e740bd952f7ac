package console_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/spoteci/spoteci/internal/billing"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// The Job page of the fixture's "pi" Job: its chart, its two pools with
// links to their market, and its bill equal to DescribeBill's for the Job,
// its instances deleted (their bills closed) still counted and billed.
func TestJobPage(t *testing.T) {
	f := start(t)
	c := client(t)
	f.signIn(t, c)
	page := f.get(t, c, "jobs/default/pi", http.StatusOK)
	for _, want := range []string{`id="job-chart"><svg`, `id="pools"`, "ecs.c5.large", "ecs.g6.large",
		`href="/console/market?type=ecs.c5.large&amp;zone=` + f.zone + `"`, `href="/console/instances?namespace=default&amp;job=pi"`,
		`<dt>` + eciapi.ReasonBidFailed + `</dt>`, "2 instances"} {
		if !strings.Contains(page, want) {
			t.Errorf("the Job page lacks %s", want)
		}
	}
	if strings.Contains(page, "web") {
		t.Error("the Job page shows an instance of another Job")
	}

	// Deleted, the instances stop billing: the page's totals hold still.
	ctx := context.Background()
	for _, id := range f.ids[:2] {
		if _, err := f.svc.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: id}); err != nil {
			t.Fatal(err)
		}
	}
	bill, err := f.svc.DescribeBill(ctx, eciapi.DescribeBillRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var job billing.Row
	for _, row := range billing.By(bill, billing.ByJob) {
		if row.Key == "default/pi" {
			job = row
		}
	}
	page = f.get(t, c, "jobs/default/pi", http.StatusOK)
	amount := fmt.Sprintf("%.4f", job.Amount)
	for _, want := range []string{"2 instances", `id="pools-total">` + amount + "<", `id="job-amount">` + amount + " CNY<",
		fmt.Sprintf(`id="job-payg">%.4f CNY`, job.OnDemandAmount), `id="job-saved">` + billing.Saved(job.Amount, job.OnDemandAmount) + "<"} {
		if !strings.Contains(page, want) {
			t.Errorf("after the deletes, the Job page lacks %s", want)
		}
	}
	if job.Instances != 2 || job.Amount == 0 {
		t.Errorf("the Job's bill: %+v", job)
	}

	// Reached from the bills per Job; an unknown Job is refused.
	if bills := f.get(t, c, "bills?by=job", http.StatusOK); !strings.Contains(bills, `href="/console/jobs/default/pi"`) {
		t.Error("the bills per Job do not link to the Job page")
	}
	f.get(t, c, "jobs/default/nope", http.StatusBadRequest)
}
