package console

import (
	"slices"
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

func atp(m int) *time.Time { t := at(m); return &t }

// started is a group whose one container started at minute m.
func started(m int) []eciapi.ContainerStatus {
	return []eciapi.ContainerStatus{{Name: "main", CurrentState: eciapi.ContainerState{State: "Running", StartTime: atp(m)}}}
}

// An instance's states from its creation, container starts, events and end.
func TestStateChanges(t *testing.T) {
	ev := func(reason string, m int) eciapi.Event { return eciapi.Event{Reason: reason, Timestamp: at(m)} }
	for _, tc := range []struct {
		name string
		g    eciapi.ContainerGroup
		want []stateChange
	}{
		{"pending", eciapi.ContainerGroup{Status: eciapi.StatusPending, CreationTime: at(0)},
			[]stateChange{{at(0), statePending}}},
		{"running", eciapi.ContainerGroup{Status: eciapi.StatusRunning, CreationTime: at(0), Containers: started(1)},
			[]stateChange{{at(0), statePending}, {at(1), stateRunning}}},
		{"running, no start told", eciapi.ContainerGroup{Status: eciapi.StatusRunning, CreationTime: at(0)},
			[]stateChange{{at(0), statePending}, {at(0), stateRunning}}},
		{"notified", eciapi.ContainerGroup{Status: eciapi.StatusRunning, CreationTime: at(0), Containers: started(1),
			NoticeTime: atp(70), ExpiredTime: atp(75), Events: []eciapi.Event{ev(eciapi.ReasonSpotToBeReleased, 70)}},
			[]stateChange{{at(0), statePending}, {at(1), stateRunning}, {at(70), stateNotified}}},
		{"released", eciapi.ContainerGroup{Status: eciapi.StatusExpired, CreationTime: at(0), Containers: started(1),
			NoticeTime: atp(70), ExpiredTime: atp(75), Events: []eciapi.Event{ev(eciapi.ReasonSpotToBeReleased, 70), ev(eciapi.ReasonSpotReleased, 75)}},
			[]stateChange{{at(0), statePending}, {at(1), stateRunning}, {at(70), stateNotified}, {at(75), stateBidFailed}}},
		{"released, then deleted", eciapi.ContainerGroup{Status: eciapi.StatusDeleted, CreationTime: at(0), Containers: started(1),
			NoticeTime: atp(70), ExpiredTime: atp(75), Events: []eciapi.Event{ev(eciapi.ReasonSpotToBeReleased, 70), ev(eciapi.ReasonSpotReleased, 75)}},
			[]stateChange{{at(0), statePending}, {at(1), stateRunning}, {at(70), stateNotified}, {at(75), stateBidFailed}}},
		{"released while pending", eciapi.ContainerGroup{Status: eciapi.StatusExpired, CreationTime: at(0),
			NoticeTime: atp(2), ExpiredTime: atp(7)},
			[]stateChange{{at(0), statePending}, {at(2), stateNotified}, {at(7), stateBidFailed}}},
		{"succeeded", eciapi.ContainerGroup{Status: eciapi.StatusSucceeded, CreationTime: at(0), Containers: started(1), SucceededTime: atp(9)},
			[]stateChange{{at(0), statePending}, {at(1), stateRunning}, {at(9), stateSucceeded}}},
		{"failed to start", eciapi.ContainerGroup{Status: eciapi.StatusFailed, CreationTime: at(0), SucceededTime: atp(1)},
			[]stateChange{{at(0), statePending}, {at(1), stateFailed}}},
		{"deleted during its notice", eciapi.ContainerGroup{Status: eciapi.StatusDeleted, CreationTime: at(0), Containers: started(1),
			NoticeTime: atp(70), ExpiredTime: atp(75), SucceededTime: atp(72)},
			[]stateChange{{at(0), statePending}, {at(1), stateRunning}, {at(70), stateNotified}, {at(72), stateGone}}},
		{"a start told after the end is dropped", eciapi.ContainerGroup{Status: eciapi.StatusFailed, CreationTime: at(0),
			Containers: started(5), SucceededTime: atp(3)},
			[]stateChange{{at(0), statePending}, {at(3), stateFailed}}},
	} {
		if got := stateChanges(tc.g); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// One new instance replaces one released instance, if created after its
// notice; the counts at each sample come from one sweep.
func TestJobSeries(t *testing.T) {
	changes := [][]stateChange{
		{{at(0), statePending}, {at(1), stateRunning}, {at(10), stateNotified}, {at(15), stateBidFailed}},
		{{at(0), statePending}, {at(1), stateRunning}, {at(10), stateNotified}, {at(15), stateBidFailed}},
		{{at(0), statePending}, {at(2), stateRunning}, {at(20), stateSucceeded}},
		{{at(16), statePending}, {at(17), stateRunning}}, // replaces one of the released
	}
	created := []time.Time{at(16), at(0), at(0), at(0)}
	replaced := replacements(changes, created)
	if !slices.Equal(replaced, []time.Time{at(16)}) {
		t.Fatalf("replacements: %v", replaced)
	}
	series := jobSeries(changes, replaced, at(0), at(20), 4) // samples at 0, 5, 10, 15, 20
	want := map[string][]float64{
		"Pending":   {3, 0, 0, 0, 0},
		"Running":   {0, 3, 1, 1, 1},
		"notified":  {0, 0, 2, 0, 0},
		"BidFailed": {0, 0, 0, 2, 2},
		"Succeeded": {0, 0, 0, 0, 1},
		"Failed":    {0, 0, 0, 0, 0},
		"replaced":  {0, 0, 0, 0, 1},
	}
	if len(series) != len(want) {
		t.Fatalf("%d series, want %d", len(series), len(want))
	}
	for _, s := range series {
		var got []float64
		for i, p := range s.Points {
			if !p.T.Equal(at(5 * i)) {
				t.Errorf("%s: sample %d at %v", s.Name, i, p.T)
			}
			got = append(got, p.V)
		}
		if !slices.Equal(got, want[s.Name]) {
			t.Errorf("%s: %v, want %v", s.Name, got, want[s.Name])
		}
	}
}
