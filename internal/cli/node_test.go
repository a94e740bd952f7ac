package cli

import "testing"

func TestParseTaints(t *testing.T) {
	got, err := parseTaints([]string{"team=ml:NoSchedule", "dedicated:NoExecute"})
	if err != nil || len(got) != 2 || got[0].Key != "team" || got[0].Value != "ml" || got[0].Effect != "NoSchedule" || got[1].Key != "dedicated" || got[1].Value != "" || got[1].Effect != "NoExecute" {
		t.Errorf("parseTaints = %+v, %v", got, err)
	}
	for _, bad := range []string{"team=ml", "=ml:NoSchedule", "team=ml:Never"} {
		if _, err := parseTaints([]string{bad}); err == nil {
			t.Errorf("parseTaints(%q): no error", bad)
		}
	}
}
