package wire

import "time"

// The ECS actions about the spot market, in ECS's shapes: lists wrapped in
// an object named after their items (SpotPrices.SpotPriceType[]), as ECS's
// JSON comes from its XML.

// DescribeSpotPriceHistoryResponse answers DescribeSpotPriceHistory: up to
// 1,000 points from Offset; NextOffset asks for the rest (0: none left).
type DescribeSpotPriceHistoryResponse struct {
	RequestId  string
	Currency   string
	NextOffset int
	SpotPrices SpotPrices
}

// SpotPrices wraps the price points.
type SpotPrices struct {
	SpotPriceType []SpotPriceType
}

// SpotPriceType is a pool's spot price from Timestamp on.
type SpotPriceType struct {
	ZoneId       string
	InstanceType string
	IoOptimized  string
	NetworkType  string
	SpotPrice    float64
	OriginPrice  float64
	Timestamp    string
}

// DescribeAvailableResourceResponse answers DescribeAvailableResource.
type DescribeAvailableResourceResponse struct {
	RequestId      string
	AvailableZones AvailableZones
}

// AvailableZones wraps the zones.
type AvailableZones struct {
	AvailableZone []AvailableZone
}

// AvailableZone is a zone and what it sells.
type AvailableZone struct {
	RegionId           string
	ZoneId             string
	Status             string // Available or SoldOut
	StatusCategory     string // WithStock or WithoutStock
	AvailableResources AvailableResources
}

// AvailableResources wraps a zone's resources.
type AvailableResources struct {
	AvailableResource []AvailableResource
}

// AvailableResource is one kind of resource: "InstanceType" here.
type AvailableResource struct {
	Type               string
	SupportedResources SupportedResources
}

// SupportedResources wraps the values of a resource.
type SupportedResources struct {
	SupportedResource []SupportedResource
}

// SupportedResource is one instance type in a zone and its stock.
type SupportedResource struct {
	Value          string
	Status         string // Available or SoldOut
	StatusCategory string // WithStock or WithoutStock
	Spoteci        *Stock `json:",omitempty"`
}

// Stock is spoteci's own part of a pool: its numbers.
type Stock struct {
	Stock         int // spot units the pool holds
	Used          int // held by running spot instances
	Available     int
	Cpu           int
	Memory        float64
	SpotPrice     float64
	OriginalPrice float64
	// Estimated: the snapshot had no price for this pool; the catalog
	// estimates it.
	Estimated bool `json:",omitempty"`
}

// DescribeSpotAdviceResponse answers DescribeSpotAdvice.
type DescribeSpotAdviceResponse struct {
	RequestId          string
	RegionId           string
	AvailableSpotZones AvailableSpotZones
}

// AvailableSpotZones wraps the zones.
type AvailableSpotZones struct {
	AvailableSpotZone []AvailableSpotZone
}

// AvailableSpotZone is a zone's advice.
type AvailableSpotZone struct {
	ZoneId                 string
	AvailableSpotResources AvailableSpotResources
}

// AvailableSpotResources wraps the types of a zone.
type AvailableSpotResources struct {
	AvailableSpotResource []AvailableSpotResource
}

// AvailableSpotResource is the advice on one type in one zone over the last
// 30 days.
type AvailableSpotResource struct {
	InstanceType string
	// InterruptionRate is a fraction (0.05: 5%); InterruptRateDesc its
	// bucket: 0-3%, 3-5%, 5-10%, 10-20% or 20-100%.
	InterruptionRate  float64
	InterruptRateDesc string
	// AverageSpotDiscount is the average spot price as a percentage of
	// pay-as-you-go (30: 30% of it).
	AverageSpotDiscount int
}

// DescribeSpotPriceHistoryRequest asks for a pool's price history.
type DescribeSpotPriceHistoryRequest struct {
	ZoneId       string
	InstanceType string
	NetworkType  string
	StartTime    time.Time
	EndTime      time.Time
	Offset       int
}

// DescribeAvailableResourceRequest asks which instance types a zone sells
// now; SpotStrategy asks about spot stock.
type DescribeAvailableResourceRequest struct {
	DestinationResource string
	ZoneId              string
	InstanceType        string
	InstanceChargeType  string
	SpotStrategy        string
}

// DescribeSpotAdviceRequest asks for the discount and interruption rate of
// the pools that match.
type DescribeSpotAdviceRequest struct {
	ZoneId             string
	InstanceTypes      []string
	InstanceTypeFamily string
	Cores              int
	Memory             float64
	MinCores           int
	MinMemory          float64
}
