package eci

import (
	"context"

	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// maxMetricGroups bounds one DescribeMultiContainerGroupMetric.
const maxMetricGroups = 5000

// DescribeMultiContainerGroupMetric samples the cgroups of the groups asked
// for; groups that do not run are left out.
func (s *Service) DescribeMultiContainerGroupMetric(ctx context.Context, req eciapi.DescribeMultiContainerGroupMetricRequest) (eciapi.DescribeMultiContainerGroupMetricResponse, error) {
	if len(req.ContainerGroupIds) > maxMetricGroups {
		return eciapi.DescribeMultiContainerGroupMetricResponse{}, badRequest("ContainerGroupIds", "at most %d groups at once, not %d", maxMetricGroups, len(req.ContainerGroupIds))
	}
	var resp eciapi.DescribeMultiContainerGroupMetricResponse
	for _, id := range req.ContainerGroupIds {
		s.mu.Lock()
		_, ok := s.groups[id]
		s.mu.Unlock()
		if !ok {
			return resp, notFound(id)
		}
		st, err := s.rt.Stats(id)
		if err != nil {
			continue // not started yet, or ended
		}
		rec := eciapi.MetricRecord{Timestamp: st.Time, CPU: cpuMetric(st.Usage), Memory: memoryMetric(st.Usage)}
		for _, c := range st.Containers {
			rec.Containers = append(rec.Containers, eciapi.ContainerMetric{Name: c.Name, StartTime: c.StartedAt,
				CPU: cpuMetric(c.Usage), Memory: memoryMetric(c.Usage)})
		}
		resp.MonitorDatas = append(resp.MonitorDatas, eciapi.MonitorData{ContainerGroupId: id, Records: []eciapi.MetricRecord{rec}})
	}
	return resp, nil
}

func cpuMetric(u runtime.Usage) eciapi.CPUMetric {
	return eciapi.CPUMetric{UsageCoreNanoSeconds: u.UsageCoreNanoSeconds, UsageNanoCores: u.UsageNanoCores}
}

func memoryMetric(u runtime.Usage) eciapi.MemoryMetric {
	return eciapi.MemoryMetric{UsageBytes: u.MemoryUsageBytes, WorkingSet: u.WorkingSetBytes, Rss: u.RSSBytes}
}
