package openapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzDecode: any query string decodes or fails with an *Error; never a
// panic or an unbounded allocation.
func FuzzDecode(f *testing.F) {
	f.Add("Container.1.Name=a&Container.1.Command.1=sh&Tag.1.Key=k&SpotPriceLimit=0.250000")
	f.Add("Container.2.Name=b&SpotDuration=x")
	f.Add("Container.1.EnvironmentVar.1000.Key=a")
	f.Fuzz(func(t *testing.T, query string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		var v testCreate
		if err := Decode(params, &v); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("error %v is not a 400 *Error", err)
			}
		}
	})
}

// FuzzVerify: only the one correctly signed set of parameters verifies.
func FuzzVerify(f *testing.F) {
	f.Add("Action=DescribeContainerGroups&RegionId=cn-hangzhou", "POST", "secret")
	f.Add("Action=CreateContainerGroup&Container.1.Image=a%20b", "GET", "s&")
	f.Fuzz(func(t *testing.T, query, method, secret string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
		for k, v := range map[string]string{"AccessKeyId": "AKID", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": "n", "Timestamp": now.Format(TimestampLayout)} {
			params.Set(k, v)
		}
		params.Set("Signature", Sign(StringToSign(method, params), secret))
		v := &Verifier{Secrets: map[string]string{"AKID": secret}, Now: func() time.Time { return now }}
		if err := v.Verify(method, params); err != nil {
			t.Fatalf("a correctly signed request failed: %v", err)
		}
		params.Set("Signature", Sign(StringToSign(method, params), secret+"x"))
		params.Set("SignatureNonce", "m")
		if err := v.Verify(method, params); err == nil {
			t.Fatal("a request signed with another secret verified")
		}
	})
}

// BenchmarkVerify verifies a typical signed CreateContainerGroup (about 40
// parameters). Target: at most 20 µs a request.
func BenchmarkVerify(b *testing.B) {
	now := time.Now()
	base := url.Values{"Action": {"CreateContainerGroup"}, "Version": {"2018-08-08"}, "Format": {"JSON"}, "RegionId": {"cn-hangzhou"},
		"AccessKeyId": {"AKID"}, "SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"}, "SignatureType": {""},
		"Timestamp": {now.UTC().Format(TimestampLayout)}}
	for i := range 32 {
		base.Set(fmt.Sprintf("Container.1.EnvironmentVar.%d.Key", i+1), "value with spaces & symbols é")
	}
	signed := make([]url.Values, b.N)
	for i := range signed {
		p := url.Values{}
		for k, v := range base {
			p[k] = v
		}
		p.Set("SignatureNonce", fmt.Sprint("nonce-", i))
		p.Set("Signature", Sign(StringToSign("POST", p), "secret"))
		signed[i] = p
	}
	v := &Verifier{Secrets: map[string]string{"AKID": "secret"}, Now: func() time.Time { return now }}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := v.Verify("POST", signed[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParams: any query and form body read into parameters or are refused
// with a 4xx *Error; never a panic.
func FuzzParams(f *testing.F) {
	f.Add("Action=DescribeContainerGroups&RegionId=cn-hangzhou", "Container.1.Name=a")
	f.Add("a=1&a=2", "")
	f.Add("%zz", "b=%zz")
	f.Fuzz(func(t *testing.T, query, body string) {
		r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/?"+query, strings.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if _, err := Params(r); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 {
				t.Fatalf("error %v is not a 4xx *Error", err)
			}
		}
	})
}
