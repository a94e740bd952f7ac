package eci_test

import (
	"fmt"
	"strings"
	"testing"

	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestSDKNameValidation: through the official SDK, a ContainerGroupName or a
// HostName that is no name (a path, a newline that would add a line to the
// instance's /etc/hosts and to the CLI's tables, more than sethostname
// takes) is refused with a 400 and ECI's code, and so is a container with
// more environment variables than an instance takes; nothing is created.
func TestSDKNameValidation(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := s.sdk(t)
	create := func(name, host string, env int) error {
		req := sdkeci.CreateCreateContainerGroupRequest()
		req.ContainerGroupName = name
		if host != "" {
			req.QueryParams["HostName"] = host
		}
		var vars []sdkeci.CreateContainerGroupEnvironmentVar
		for i := range env {
			vars = append(vars, sdkeci.CreateContainerGroupEnvironmentVar{Key: fmt.Sprint("V", i), Value: "x"})
		}
		req.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "c", Image: "busybox", Command: []string{"true"}, EnvironmentVar: &vars}}
		_, err := c.CreateContainerGroup(req)
		return err
	}
	for _, tc := range []struct {
		what, name, host string
		env              int
		code             string
	}{
		{"a path as the name", "../../x", "", 0, "InvalidParameter.ContainerGroupName"},
		{"a newline in the name", "web\n10.0.0.9 kubernetes", "", 0, "InvalidParameter.ContainerGroupName"},
		{"one character", "a", "", 0, "InvalidParameter.ContainerGroupName"},
		{"129 characters", strings.Repeat("n", 129), "", 0, "InvalidParameter.ContainerGroupName"},
		{"upper case", "Web", "", 0, "InvalidParameter.ContainerGroupName"},
		{"a leading hyphen", "-web", "", 0, "InvalidParameter.ContainerGroupName"},
		{"a trailing hyphen", "web-", "", 0, "InvalidParameter.ContainerGroupName"},
		{"a dot", "web.v1", "", 0, "InvalidParameter.ContainerGroupName"},
		{"an underscore", "web_1", "", 0, "InvalidParameter.ContainerGroupName"},
		{"a newline in the host name", "web", "web\n10.0.0.9 kubernetes", 0, "InvalidParameter.HostName"},
		{"a path as the host name", "web", "../../x", 0, "InvalidParameter.HostName"},
		{"a 300-character host name", "web", strings.Repeat("h", 300), 0, "InvalidParameter.HostName"},
		{"a 64-character host name", "web", strings.Repeat("h", 64), 0, "InvalidParameter.HostName"},
		{"an empty label", "web", "a..b", 0, "InvalidParameter.HostName"},
		{"a space", "web", "a b", 0, "InvalidParameter.HostName"},
		{"1,001 environment variables", "web", "", eciapi.MaxEnvironmentVars + 1, "InvalidParameter"},
	} {
		err := create(tc.name, tc.host, tc.env)
		if err == nil {
			t.Errorf("%s: created", tc.what)
			continue
		}
		if code, status := sdkCode(t, err); code != tc.code || status != 400 {
			t.Errorf("%s: %s %d (%v), want %s 400", tc.what, code, status, err, tc.code)
		}
	}
	resp, err := c.DescribeContainerGroups(sdkeci.CreateDescribeContainerGroupsRequest())
	if err != nil || resp.TotalCount != 0 {
		t.Fatalf("after the refused requests: %d groups, %v", resp.TotalCount, err)
	}
}

// TestSDKNameLimits: the longest names and the most environment variables
// allowed run: a 128-character ContainerGroupName with a 63-character
// dotted HostName, which the container sees, and 1,000 variables; without a
// HostName the hostname is the name cut to 63 characters without a
// trailing hyphen, as a kubelet cuts a long pod name.
func TestSDKNameLimits(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := s.sdk(t)
	long := strings.Repeat("a", 62) + "-" + strings.Repeat("b", 65) // 128
	host := strings.Repeat("h", 31) + "." + strings.Repeat("k", 31) // 63
	run := func(name, host string, env int) string {
		t.Helper()
		req := sdkeci.CreateCreateContainerGroupRequest()
		req.ContainerGroupName = name
		req.InstanceType = "2-4Gi"
		req.RestartPolicy = "Never"
		if host != "" {
			req.QueryParams["HostName"] = host
		}
		var vars []sdkeci.CreateContainerGroupEnvironmentVar
		for i := range env {
			vars = append(vars, sdkeci.CreateContainerGroupEnvironmentVar{Key: fmt.Sprint("V", i), Value: "x"})
		}
		req.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "c", Image: "busybox", EnvironmentVar: &vars,
			Command: []string{"sh", "-c", `echo "host=$(hostname) vars=$(env | grep -c '^V[0-9]*=x$')"`}}}
		created, err := c.CreateContainerGroup(req)
		if err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
		return created.ContainerGroupId
	}
	named := run(long, host, eciapi.MaxEnvironmentVars)
	unnamed := run(long, "", 0)
	s.waitLog(t, named, fmt.Sprintf("host=%s vars=%d\n", host, eciapi.MaxEnvironmentVars))
	// Cut to 63 characters, the last of them a hyphen, which goes.
	s.waitLog(t, unnamed, fmt.Sprintf("host=%s vars=0\n", long[:62]))
	if g := s.group(t, named); g.ContainerGroupName != long {
		t.Errorf("ContainerGroupName %q, want %q", g.ContainerGroupName, long)
	}
}
