package eci

import (
	"context"
	"slices"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/prices"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// The ECS actions about the spot market that "/" answers, with ECS's
// parameters (decoded here) and shapes (pkg/eci/wire).

// historyPage is how many points a DescribeSpotPriceHistory page holds.
const historyPage = 1000

func (a *api) ecsSpotPriceHistory(ctx context.Context, p wire.DescribeSpotPriceHistoryRequest) (wire.DescribeSpotPriceHistoryResponse, error) {
	if p.NetworkType != "" && p.NetworkType != "vpc" {
		return wire.DescribeSpotPriceHistoryResponse{}, badRequest("NetworkType", "NetworkType %q: only vpc is sold here", p.NetworkType)
	}
	if p.Offset < 0 {
		return wire.DescribeSpotPriceHistoryResponse{}, badRequest("Offset", "Offset %d: want 0 or more", p.Offset)
	}
	h, err := a.svc.DescribeSpotPriceHistory(ctx, eciapi.DescribeSpotPriceHistoryRequest{ZoneId: p.ZoneId, InstanceType: p.InstanceType, StartTime: p.StartTime, EndTime: p.EndTime})
	if err != nil {
		return wire.DescribeSpotPriceHistoryResponse{}, err
	}
	points := h.SpotPrices[min(p.Offset, len(h.SpotPrices)):]
	out := wire.DescribeSpotPriceHistoryResponse{Currency: h.Currency, SpotPrices: wire.SpotPrices{SpotPriceType: []wire.SpotPriceType{}}}
	if len(points) > historyPage {
		points, out.NextOffset = points[:historyPage], p.Offset+historyPage
	}
	for _, sp := range points {
		out.SpotPrices.SpotPriceType = append(out.SpotPrices.SpotPriceType, wire.SpotPriceType{ZoneId: sp.ZoneId, InstanceType: sp.InstanceType,
			IoOptimized: "optimized", NetworkType: "vpc", SpotPrice: sp.SpotPrice, OriginPrice: sp.OriginPrice, Timestamp: wire.Time(sp.Timestamp)})
	}
	return out, nil
}

// ecsAvailableResource says, zone by zone, which instance types can be
// bought now: with stock for spot asks (SpotStrategy set), always for
// pay-as-you-go.
func (a *api) ecsAvailableResource(ctx context.Context, p wire.DescribeAvailableResourceRequest) (wire.DescribeAvailableResourceResponse, error) {
	switch p.DestinationResource {
	case "":
		return wire.DescribeAvailableResourceResponse{}, badRequest("DestinationResource", "DestinationResource is required: InstanceType or Zone")
	case "InstanceType", "Zone":
	default:
		return wire.DescribeAvailableResourceResponse{}, badRequest("DestinationResource", "DestinationResource %q: only InstanceType and Zone are answered here", p.DestinationResource)
	}
	if p.InstanceChargeType != "" && p.InstanceChargeType != "PostPaid" {
		return wire.DescribeAvailableResourceResponse{}, badRequest("InstanceChargeType", "InstanceChargeType %q: only PostPaid is sold here", p.InstanceChargeType)
	}
	spot := p.SpotStrategy != "" && p.SpotStrategy != eciapi.NoSpot
	r, err := a.svc.DescribeAvailableResource(ctx, eciapi.DescribeAvailableResourceRequest{ZoneId: p.ZoneId, InstanceType: p.InstanceType})
	if err != nil {
		return wire.DescribeAvailableResourceResponse{}, err
	}
	out := wire.DescribeAvailableResourceResponse{AvailableZones: wire.AvailableZones{AvailableZone: []wire.AvailableZone{}}}
	zones := map[string]*wire.AvailableZone{}
	var order []string
	for _, res := range r.Resources {
		z, ok := zones[res.ZoneId]
		if !ok {
			z = &wire.AvailableZone{RegionId: a.svc.cfg.Region, ZoneId: res.ZoneId, Status: "SoldOut", StatusCategory: "WithoutStock"}
			if p.DestinationResource == "InstanceType" {
				z.AvailableResources.AvailableResource = []wire.AvailableResource{{Type: "InstanceType"}}
			}
			zones[res.ZoneId] = z
			order = append(order, res.ZoneId)
		}
		status, category := "Available", "WithStock"
		if spot && res.Available <= 0 {
			status, category = "SoldOut", "WithoutStock"
		}
		if status == "Available" {
			z.Status, z.StatusCategory = status, category
		}
		if p.DestinationResource == "InstanceType" {
			list := &z.AvailableResources.AvailableResource[0].SupportedResources.SupportedResource
			*list = append(*list, wire.SupportedResource{Value: res.InstanceType, Status: status, StatusCategory: category,
				Spoteci: &wire.Stock{Stock: res.Stock, Used: res.Used, Available: res.Available, Cpu: res.Cpu, Memory: res.Memory,
					SpotPrice: res.SpotPrice, OriginalPrice: res.OriginalPrice, Estimated: res.Estimated}})
		}
	}
	slices.Sort(order)
	for _, zone := range order {
		out.AvailableZones.AvailableZone = append(out.AvailableZones.AvailableZone, *zones[zone])
	}
	return out, nil
}

// ecsSpotAdvice is DescribeSpotAdvice in ECS's shape: the pools grouped
// by zone.
func (a *api) ecsSpotAdvice(ctx context.Context, p wire.DescribeSpotAdviceRequest) (wire.DescribeSpotAdviceResponse, error) {
	advice, err := a.svc.DescribeSpotAdvice(ctx, eciapi.DescribeSpotAdviceRequest{ZoneId: p.ZoneId, InstanceTypes: p.InstanceTypes,
		InstanceTypeFamily: p.InstanceTypeFamily, Cores: p.Cores, Memory: p.Memory, MinCores: p.MinCores, MinMemory: p.MinMemory})
	if err != nil {
		return wire.DescribeSpotAdviceResponse{}, err
	}
	out := wire.DescribeSpotAdviceResponse{RegionId: a.svc.cfg.Region, AvailableSpotZones: wire.AvailableSpotZones{AvailableSpotZone: []wire.AvailableSpotZone{}}}
	byZone := map[string]int{}
	for _, ad := range advice.Advice {
		i, ok := byZone[ad.ZoneId]
		if !ok {
			i = len(out.AvailableSpotZones.AvailableSpotZone)
			byZone[ad.ZoneId] = i
			out.AvailableSpotZones.AvailableSpotZone = append(out.AvailableSpotZones.AvailableSpotZone, wire.AvailableSpotZone{ZoneId: ad.ZoneId})
		}
		z := &out.AvailableSpotZones.AvailableSpotZone[i].AvailableSpotResources.AvailableSpotResource
		*z = append(*z, wire.AvailableSpotResource{InstanceType: ad.InstanceType, InterruptionRate: ad.InterruptionRate,
			InterruptRateDesc: ad.InterruptRateDesc, AverageSpotDiscount: ad.AverageSpotDiscount})
	}
	return out, nil
}

// DescribeSpotAdvice gives, for each pool that matches, its average discount
// and interruption rate over the last 30 days of market time.
func (s *Service) DescribeSpotAdvice(ctx context.Context, req eciapi.DescribeSpotAdviceRequest) (eciapi.DescribeSpotAdviceResponse, error) {
	pools, err := s.pools(req.ZoneId, "", false)
	if err != nil {
		return eciapi.DescribeSpotAdviceResponse{}, err
	}
	for _, t := range req.InstanceTypes {
		if _, ok := s.cat.Type(t); !ok {
			return eciapi.DescribeSpotAdviceResponse{}, badRequest("InstanceTypes", "unknown instance type %q", t)
		}
	}
	pools = slices.DeleteFunc(pools, func(o *catalog.Offering) bool { return !adviceMatches(req, o.Type) })
	now := s.Now()
	out := eciapi.DescribeSpotAdviceResponse{Time: now, Advice: make([]eciapi.SpotAdvice, 0, len(pools))}
	for _, o := range pools {
		a := s.book.Advice(o, now.Add(-prices.HistoryWindow), now)
		out.Advice = append(out.Advice, eciapi.SpotAdvice{ZoneId: o.Zone, InstanceType: o.Type.Name, InterruptionRate: a.InterruptionRate,
			InterruptRateDesc: interruptBucket(a.InterruptionRate), AverageSpotDiscount: a.AverageDiscount})
	}
	return out, nil
}

// adviceMatches says whether an instance type is one p asks about.
func adviceMatches(p eciapi.DescribeSpotAdviceRequest, t *catalog.InstanceType) bool {
	switch {
	case len(p.InstanceTypes) > 0 && !slices.Contains(p.InstanceTypes, t.Name),
		p.InstanceTypeFamily != "" && t.Family != p.InstanceTypeFamily,
		p.Cores > 0 && t.VCPU != p.Cores,
		p.Memory > 0 && t.MemoryGiB != p.Memory,
		t.VCPU < p.MinCores,
		t.MemoryGiB < p.MinMemory:
		return false
	}
	return true
}

// interruptBucket names the range an interruption rate falls in.
func interruptBucket(rate float64) string {
	switch {
	case rate < 0.03:
		return "0-3%"
	case rate < 0.05:
		return "3-5%"
	case rate < 0.10:
		return "5-10%"
	case rate < 0.20:
		return "10-20%"
	default:
		return "20-100%"
	}
}
