package ecisdk

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// CreateContainerGroup creates a group through the SDK's own typed request,
// as a user of the real cloud would, in the configured vSwitch and security
// group. It returns the group's ID.
func (c *Client) CreateContainerGroup(ctx context.Context, spec eciapi.CreateContainerGroupRequest) (string, error) {
	req := createRequest(spec)
	req.RegionId = c.cfg.Region
	req.VSwitchId, req.SecurityGroupId = c.cfg.VSwitchID, c.cfg.SecurityGroupID
	var id string
	err := c.Do(ctx, func(sc *sdkeci.Client) error {
		resp, err := sc.CreateContainerGroup(req)
		if err != nil {
			return apiError(err, resp.GetHttpContentBytes())
		}
		id = resp.ContainerGroupId
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("CreateContainerGroup %s: %w", spec.ContainerGroupName, err)
	}
	return id, nil
}

// createRequest is spec in the SDK's request. What the SDK has no field
// for (SpotDuration, SpotFallback, DryRun, HostName, most of the security
// contexts) goes in as query parameters.
func createRequest(spec eciapi.CreateContainerGroupRequest) *sdkeci.CreateContainerGroupRequest {
	req := sdkeci.CreateCreateContainerGroupRequest()
	req.ZoneId, req.ContainerGroupName, req.ClientToken = spec.ZoneId, spec.ContainerGroupName, spec.ClientToken
	req.InstanceType, req.RestartPolicy = spec.InstanceType, spec.RestartPolicy
	req.SpotStrategy, req.SpotPriceLimit = spec.SpotStrategy, requests.Float(spec.SpotPriceLimit)
	if spec.Cpu > 0 {
		req.Cpu = requests.NewFloat(spec.Cpu)
	}
	if spec.Memory > 0 {
		req.Memory = requests.NewFloat(spec.Memory)
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		req.TerminationGracePeriodSeconds = requests.NewInteger64(*g)
	}
	if spec.SpotDuration != nil {
		req.QueryParams["SpotDuration"] = string(*spec.SpotDuration)
	}
	if spec.SpotFallback {
		req.QueryParams["SpotFallback"] = "true"
	}
	if spec.DryRun {
		req.QueryParams["DryRun"] = "true"
	}
	if spec.HostName != "" {
		req.QueryParams["HostName"] = spec.HostName
	}
	if spec.EphemeralStorage != 0 {
		req.QueryParams["EphemeralStorage"] = strconv.Itoa(spec.EphemeralStorage)
	}
	tags := make([]sdkeci.CreateContainerGroupTag, 0, len(spec.Tags))
	for _, t := range spec.Tags {
		tags = append(tags, sdkeci.CreateContainerGroupTag{Key: t.Key, Value: t.Value})
	}
	req.Tag = &tags
	var creds []sdkeci.CreateContainerGroupImageRegistryCredential
	for _, c := range spec.ImageRegistryCredentials {
		creds = append(creds, sdkeci.CreateContainerGroupImageRegistryCredential{Server: c.Server, UserName: c.UserName, Password: c.Password})
	}
	if len(creds) > 0 {
		req.ImageRegistryCredential = &creds
	}
	containers := make([]sdkeci.CreateContainerGroupContainer, 0, len(spec.Containers))
	for i, c := range spec.Containers {
		if c.EphemeralStorageLimit != "" {
			req.QueryParams[fmt.Sprintf("Container.%d.EphemeralStorageLimit", i+1)] = c.EphemeralStorageLimit
		}
		sc := sdkeci.CreateContainerGroupContainer{Name: c.Name, Image: c.Image, ImagePullPolicy: c.ImagePullPolicy,
			Command: c.Commands, Arg: c.Args, WorkingDir: c.WorkingDir}
		if c.Cpu > 0 {
			sc.Cpu = requests.NewFloat(c.Cpu)
		}
		if c.Memory > 0 {
			sc.Memory = requests.NewFloat(c.Memory)
		}
		env := make([]sdkeci.CreateContainerGroupEnvironmentVar, 0, len(c.EnvironmentVars))
		for _, e := range c.EnvironmentVars {
			se := sdkeci.CreateContainerGroupEnvironmentVar{Key: e.Key, Value: e.Value}
			if e.FieldRef != nil {
				se.FieldRef.FieldPath = e.FieldRef.FieldPath
			}
			env = append(env, se)
		}
		sc.EnvironmentVar = &env
		mounts := make([]sdkeci.CreateContainerGroupVolumeMount, 0, len(c.VolumeMounts))
		for _, m := range c.VolumeMounts {
			sm := sdkeci.CreateContainerGroupVolumeMount{Name: m.Name, MountPath: m.MountPath, SubPath: m.SubPath}
			if m.ReadOnly {
				sm.ReadOnly = requests.NewBoolean(true)
			}
			mounts = append(mounts, sm)
		}
		sc.VolumeMount = &mounts
		containers = append(containers, sc)
	}
	req.Container = &containers
	volumes := make([]sdkeci.CreateContainerGroupVolume, 0, len(spec.Volumes))
	for i, v := range spec.Volumes {
		if v.EmptyDirVolume != nil && v.EmptyDirVolume.SizeLimit != "" {
			req.QueryParams[fmt.Sprintf("Volume.%d.EmptyDirVolume.SizeLimit", i+1)] = v.EmptyDirVolume.SizeLimit
		}
		sv := sdkeci.CreateContainerGroupVolume{Name: v.Name, Type: v.Type}
		if v.EmptyDirVolume != nil {
			sv.EmptyDirVolume.Medium = v.EmptyDirVolume.Medium
		}
		if cf := v.ConfigFileVolume; cf != nil {
			if cf.DefaultMode != 0 {
				sv.ConfigFileVolume.DefaultModel = requests.NewInteger(cf.DefaultMode)
			}
			files := make([]sdkeci.CreateContainerGroupConfigFileToPath, 0, len(cf.ConfigFileToPaths))
			for _, f := range cf.ConfigFileToPaths {
				sf := sdkeci.CreateContainerGroupConfigFileToPath{Path: f.Path, Content: f.Content}
				if f.Mode != 0 {
					sf.Mode = requests.NewInteger(f.Mode)
				}
				files = append(files, sf)
			}
			sv.ConfigFileVolume.ConfigFileToPath = &files
		}
		volumes = append(volumes, sv)
	}
	if len(volumes) > 0 {
		req.Volume = &volumes
	}
	addSecurity(req, spec)
	return req
}

// DescribeContainerGroups reads one page of groups.
func (c *Client) DescribeContainerGroups(ctx context.Context, req eciapi.DescribeContainerGroupsRequest) (wire.DescribeContainerGroupsResponse, error) {
	return call[wire.DescribeContainerGroupsResponse](ctx, c, eciapi.ActionDescribeContainerGroups, req)
}

// DescribeAllContainerGroups reads every page of groups that match req,
// pageSize at a time.
func (c *Client) DescribeAllContainerGroups(ctx context.Context, req eciapi.DescribeContainerGroupsRequest, pageSize int) (wire.DescribeContainerGroupsResponse, error) {
	req.Limit, req.NextToken = pageSize, ""
	var all wire.DescribeContainerGroupsResponse
	for {
		page, err := c.DescribeContainerGroups(ctx, req)
		if err != nil {
			return all, err
		}
		groups := append(all.ContainerGroups, page.ContainerGroups...)
		all, all.ContainerGroups = page, groups
		if req.NextToken = page.NextToken; req.NextToken == "" {
			return all, nil
		}
	}
}

// DescribeContainerGroupStatus reads one page of statuses. The SDK
// (v1.63.107) has no typed request for this action: like every action of
// Call, it goes as the SDK's CommonRequest, as ECI takes it.
func (c *Client) DescribeContainerGroupStatus(ctx context.Context, req eciapi.DescribeContainerGroupStatusRequest) (wire.DescribeContainerGroupStatusResponse, error) {
	return call[wire.DescribeContainerGroupStatusResponse](ctx, c, eciapi.ActionDescribeContainerGroupStatus, req)
}

// DeleteContainerGroup deletes a group.
func (c *Client) DeleteContainerGroup(ctx context.Context, req eciapi.DeleteContainerGroupRequest) error {
	_, err := call[wire.DeleteContainerGroupResponse](ctx, c, eciapi.ActionDeleteContainerGroup, req)
	return err
}

// RestartContainerGroup restarts a running group's containers.
func (c *Client) RestartContainerGroup(ctx context.Context, req eciapi.RestartContainerGroupRequest) error {
	_, err := call[wire.RestartContainerGroupResponse](ctx, c, eciapi.ActionRestartContainerGroup, req)
	return err
}

// DescribeContainerLog reads a container's log.
func (c *Client) DescribeContainerLog(ctx context.Context, req eciapi.DescribeContainerLogRequest) (wire.DescribeContainerLogResponse, error) {
	return call[wire.DescribeContainerLogResponse](ctx, c, eciapi.ActionDescribeContainerLog, req)
}

// ExecContainerCommand asks for the URL of a command's stream.
func (c *Client) ExecContainerCommand(ctx context.Context, req eciapi.ExecContainerCommandRequest) (wire.ExecContainerCommandResponse, error) {
	return call[wire.ExecContainerCommandResponse](ctx, c, eciapi.ActionExecContainerCommand, req)
}

// DescribeContainerGroupPrice prices a group.
func (c *Client) DescribeContainerGroupPrice(ctx context.Context, req eciapi.DescribeContainerGroupPriceRequest) (wire.DescribeContainerGroupPriceResponse, error) {
	return call[wire.DescribeContainerGroupPriceResponse](ctx, c, eciapi.ActionDescribeContainerGroupPrice, req)
}

// DescribeMultiContainerGroupMetric samples the resource use of groups.
func (c *Client) DescribeMultiContainerGroupMetric(ctx context.Context, req eciapi.DescribeMultiContainerGroupMetricRequest) (eciapi.DescribeMultiContainerGroupMetricResponse, error) {
	return call[eciapi.DescribeMultiContainerGroupMetricResponse](ctx, c, eciapi.ActionDescribeMultiContainerGroupMetric, req)
}

// DescribeSpotPriceHistory reads one page of a pool's price history.
func (c *Client) DescribeSpotPriceHistory(ctx context.Context, req wire.DescribeSpotPriceHistoryRequest) (wire.DescribeSpotPriceHistoryResponse, error) {
	return call[wire.DescribeSpotPriceHistoryResponse](ctx, c, eciapi.ActionDescribeSpotPriceHistory, req)
}

// DescribeAvailableResource says what the zones sell now.
func (c *Client) DescribeAvailableResource(ctx context.Context, req wire.DescribeAvailableResourceRequest) (wire.DescribeAvailableResourceResponse, error) {
	return call[wire.DescribeAvailableResourceResponse](ctx, c, eciapi.ActionDescribeAvailableResource, req)
}

// DescribeSpotAdvice gives the pools' discount and interruption rate.
func (c *Client) DescribeSpotAdvice(ctx context.Context, req wire.DescribeSpotAdviceRequest) (wire.DescribeSpotAdviceResponse, error) {
	return call[wire.DescribeSpotAdviceResponse](ctx, c, eciapi.ActionDescribeSpotAdvice, req)
}
