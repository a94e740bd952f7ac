package openapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"
)

// recorder is a server that verifies what the official SDK sends and keeps
// the parameters of the last request.
type recorder struct {
	v      *Verifier
	mu     sync.Mutex
	last   url.Values
	method string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	params, err := Params(r)
	if err != nil {
		WriteError(w, "req", "test", err)
		return
	}
	rec.mu.Lock()
	rec.last, rec.method = params, r.Method
	rec.mu.Unlock()
	if err := rec.v.Verify(r.Method, params); err != nil {
		WriteError(w, "req", "test", err)
		return
	}
	io.WriteString(w, `{"RequestId":"req","ContainerGroupId":"eci-1"}`)
}

func sdkClient(t *testing.T, addr, id, secret string) *sdkeci.Client {
	t.Helper()
	c, err := sdkeci.NewClientWithAccessKey("cn-hangzhou", id, secret)
	if err != nil {
		t.Fatal(err)
	}
	c.Domain = addr
	t.Cleanup(c.Shutdown)
	return c
}

// create sends a CreateContainerGroup with values that need encoding.
func create(c *sdkeci.Client) error {
	req := sdkeci.CreateCreateContainerGroupRequest()
	req.ContainerGroupName = "test"
	req.SpotStrategy = "SpotWithPriceLimit"
	req.SpotPriceLimit = requests.NewFloat(0.25)
	req.Tag = &[]sdkeci.CreateContainerGroupTag{{Key: "k8s.io/pod", Value: "default/p"}, {Key: "b", Value: "2"}}
	req.Container = &[]sdkeci.CreateContainerGroupContainer{{
		Name: "c", Image: "registry.example/perl:5", Command: []string{"perl", "-e", "print 1+1"},
		EnvironmentVar: &[]sdkeci.CreateContainerGroupEnvironmentVar{{Key: "A", Value: "x&y=z é ~*+%"}, {Key: "B", Value: ""}},
	}}
	req.QueryParams["SpotDuration"] = "0"
	_, err := c.CreateContainerGroup(req)
	return err
}

type testContainer struct {
	Name           string
	Image          string
	Commands       []string `rpc:"Command"`
	EnvironmentVar []struct{ Key, Value string }
}

type testCreate struct {
	ContainerGroupName string
	SpotStrategy       string
	SpotPriceLimit     float64
	SpotDuration       *int
	Tags               []struct{ Key, Value string } `rpc:"Tag"`
	Containers         []testContainer               `rpc:"Container"`
}

func TestSDKRequestVerifiesAndDecodes(t *testing.T) {
	rec := &recorder{v: &Verifier{Secrets: map[string]string{"AKID": "secret"}}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := sdkClient(t, strings.TrimPrefix(srv.URL, "http://"), "AKID", "secret")
	if err := create(c); err != nil {
		t.Fatal(err)
	}
	if rec.method != http.MethodPost {
		t.Errorf("method %s", rec.method)
	}
	var got testCreate
	if err := Decode(rec.last, &got); err != nil {
		t.Fatal(err)
	}
	if got.ContainerGroupName != "test" || got.SpotStrategy != "SpotWithPriceLimit" || got.SpotPriceLimit != 0.25 || got.SpotDuration == nil || *got.SpotDuration != 0 {
		t.Errorf("group fields: %+v", got)
	}
	if len(got.Tags) != 2 || got.Tags[0].Key != "k8s.io/pod" || got.Tags[1].Value != "2" {
		t.Errorf("tags: %+v", got.Tags)
	}
	if len(got.Containers) != 1 {
		t.Fatalf("containers: %+v", got.Containers)
	}
	ct := got.Containers[0]
	if ct.Image != "registry.example/perl:5" || strings.Join(ct.Commands, "|") != "perl|-e|print 1+1" {
		t.Errorf("container: %+v", ct)
	}
	if len(ct.EnvironmentVar) != 2 || ct.EnvironmentVar[0].Value != "x&y=z é ~*+%" || ct.EnvironmentVar[1].Key != "B" {
		t.Errorf("env: %+v", ct.EnvironmentVar)
	}
}

func serverCode(t *testing.T, err error) string {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want a ServerError, got %v", err)
	}
	return se.ErrorCode()
}

func TestSignatureFailures(t *testing.T) {
	rec := &recorder{v: &Verifier{Secrets: map[string]string{"AKID": "secret"}}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	if code := serverCode(t, create(sdkClient(t, addr, "AKID", "wrong"))); code != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %s", code)
	}
	if code := serverCode(t, create(sdkClient(t, addr, "NOPE", "secret"))); code != "InvalidAccessKeyId.NotFound" {
		t.Errorf("unknown key: %s", code)
	}

	// A request the SDK signed correctly, replayed, tampered, or late.
	if err := create(sdkClient(t, addr, "AKID", "secret")); err != nil {
		t.Fatal(err)
	}
	signed := rec.last
	send := func(params url.Values) string {
		resp, err := http.Post(srv.URL+"/?"+params.Encode(), "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(body)
	}
	if got := send(signed); !strings.Contains(got, "SignatureNonceUsed") || !strings.HasPrefix(got, "400") {
		t.Errorf("replayed: %s", got)
	}
	tampered := url.Values{}
	for k, v := range signed {
		tampered[k] = v
	}
	tampered.Set("SignatureNonce", "fresh-nonce")
	tampered.Set("Container.1.Image", "evil")
	if got := send(tampered); !strings.Contains(got, "SignatureDoesNotMatch") {
		t.Errorf("tampered: %s", got)
	}
	rec.v.Now = func() time.Time { return time.Now().Add(16 * time.Minute) }
	if code := serverCode(t, create(sdkClient(t, addr, "AKID", "secret"))); code != "InvalidTimeStamp.Expired" {
		t.Errorf("stale: %s", code)
	}
	rec.v.Now = nil
	missing := url.Values{}
	for k, v := range signed {
		missing[k] = v
	}
	missing.Del("Timestamp")
	if got := send(missing); !strings.Contains(got, "MissingParameter") || !strings.Contains(got, "Timestamp") {
		t.Errorf("no timestamp: %s", got)
	}
}

func TestDecodeLists(t *testing.T) {
	var v testCreate
	for _, tc := range []struct {
		query string
		err   string // "" for success
	}{
		{"Container.1.Name=a&Container.2.Name=b", ""},
		{"Container.2.Name=b", `"Container.1" is not valid`},
		{"Container.0.Name=a", "not a number from 1"},
		{"Container.01.Name=a", "not a number from 1"},
		{"Container.x.Name=a", "not a number from 1"},
		{"Container.1001.Name=a", "at most 1000"},
		{"SpotPriceLimit=Inf", "not a finite number"},
		{"SpotPriceLimit=1e400", "not a finite number"},
		{"SpotDuration=1.5", "not an integer"},
		{"Container.1.Command.1=a&Container.1.Command.3=c", `"Container.1.Command.2" is not valid`},
	} {
		params, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		v = testCreate{}
		err = Decode(params, &v)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.query, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got %v, want an error with %q", tc.query, err, tc.err)
		}
	}
}

func TestJSONAndAliases(t *testing.T) {
	var v struct {
		Ids         []string `rpc:"ContainerGroupIds,json"`
		DefaultMode int      `rpc:"DefaultMode|DefaultModel"`
		Skipped     string   `rpc:"-"`
		When        time.Time
		Ok          *bool
	}
	params := url.Values{"ContainerGroupIds": {`["eci-1","eci-2"]`}, "DefaultModel": {"420"}, "Skipped": {"x"}, "When": {"2026-11-27T10:00:00Z"}, "Ok": {"true"}}
	if err := Decode(params, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Ids) != 2 || v.DefaultMode != 420 || v.Skipped != "" || v.When.Hour() != 10 || v.Ok == nil || !*v.Ok {
		t.Errorf("%+v", v)
	}
	if err := Decode(url.Values{"ContainerGroupIds": {`eci-1`}}, &v); err == nil || !strings.Contains(err.Error(), "ContainerGroupIds") {
		t.Errorf("bad JSON: %v", err)
	}
}

// TestEncodeRoundTrips: what Encode writes, Decode reads back the same, and
// what the SDK would leave out (zeros, nil pointers) is left out.
func TestEncodeRoundTrips(t *testing.T) {
	zero := 0
	in := testCreate{ContainerGroupName: "a&b=c é", SpotPriceLimit: 0.25, SpotDuration: &zero,
		Tags:       []struct{ Key, Value string }{{"k", ""}, {"k2", "v"}},
		Containers: []testContainer{{Name: "c1", Commands: []string{"sh", "-c", "echo 1"}}, {Name: "c2"}}}
	params, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := params["SpotStrategy"]; ok {
		t.Errorf("an empty string is sent: %v", params)
	}
	if params["SpotDuration"] != "0" || params["Tag.1.Value"] != "" || params["Container.1.Command.3"] != "echo 1" {
		t.Errorf("params %v", params)
	}
	values := url.Values{}
	for k, v := range params {
		values.Set(k, v)
	}
	var out testCreate
	if err := Decode(values, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n in %+v\nout %+v", in, out)
	}
	var withJSON struct {
		Ids  []string `rpc:"ContainerGroupIds,json"`
		When time.Time
	}
	withJSON.Ids, withJSON.When = []string{"eci-1"}, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	if params, _ := Encode(&withJSON); params["ContainerGroupIds"] != `["eci-1"]` || params["When"] != "2026-11-27T10:00:00Z" {
		t.Errorf("JSON and time: %v", params)
	}
}
