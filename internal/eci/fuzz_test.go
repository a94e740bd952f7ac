package eci

import (
	"errors"
	"net/url"
	"testing"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// FuzzRPCDecode: any query decodes into every OpenAPI action's request or
// is refused with a 400 in ECI's error shape; never a panic.
func FuzzRPCDecode(f *testing.F) {
	f.Add("ContainerGroupName=a&Container.1.Name=c&Container.1.Image=busybox&Container.1.Command.1=sh&SpotStrategy=SpotWithPriceLimit&SpotPriceLimit=0.25")
	f.Add("ContainerGroupIds=%5B%22eci-1%22%5D&Tag.1.Key=k&Tag.1.Value=v&Limit=100&NextToken=abc")
	f.Add("ContainerGroupId=eci-1&ContainerName=c&Tail=10&SinceSeconds=5&LimitBytes=100&Timestamps=true")
	f.Add("ZoneId=cn-hangzhou-i&InstanceType=ecs.c5.large&NetworkType=vpc&StartTime=2026-01-01T00:00:00Z")
	f.Add("Command=%5B%22sh%22%5D&TTY=true&Stdin=yes&Limit=-1&Cpu=1e400")
	actions := (&api{}).rpcActions()
	f.Fuzz(func(t *testing.T, query string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		for name, a := range actions {
			if err := a.decode(params); err != nil {
				var e *APIError
				if !errors.As(err, &e) || e.Status != 400 {
					t.Fatalf("%s: %v is not a 400", name, err)
				}
			}
		}
	})
}

// FuzzAdminDecode: any body decodes into the admin API's requests or is
// refused with a 400; never a panic.
func FuzzAdminDecode(f *testing.F) {
	f.Add([]byte(`{"InstanceType": "ecs.c5.large", "ZoneId": "cn-hangzhou-i", "SpotPrice": "0.5", "Stock": 3}`))
	f.Add([]byte(`{"ContainerGroupIds": ["eci-1"]} {}`))
	f.Add([]byte(`{"ContainerGroupId": "eci-1", "Follow": true, "Tail": -1}`))
	f.Add([]byte(`{"Reset": true, "Unknown": 1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			var e *APIError
			if err != nil && (!errors.As(err, &e) || e.Status != 400) {
				t.Fatalf("%v is not a 400", err)
			}
		}
		_, err := decodeJSON[eciapi.ModifySpotMarketRequest](body)
		check(err)
		_, err = decodeJSON[eciapi.DescribeBillRequest](body)
		check(err)
		_, err = decodeJSON[eciapi.DescribeContainerLogRequest](body)
		check(err)
	})
}

// FuzzPageToken: a NextToken parses or is refused with a 400, and every
// token the service writes reads back the same.
func FuzzPageToken(f *testing.F) {
	f.Add("MTcwMDAwMDAwMDAwMDAwMDAwMC9lY2ktMQ")
	f.Add("not base64!")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parsePageToken(s)
		if err != nil {
			var e *APIError
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("%v is not a 400", err)
			}
			return
		}
		if tok == nil {
			return
		}
		again, err := parsePageToken(tok.String())
		if err != nil || !again.created.Equal(tok.created) || again.id != tok.id {
			t.Fatalf("token %q read back as %+v, %v", tok.String(), again, err)
		}
	})
}
