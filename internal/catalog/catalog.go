// Package catalog lists what the cloud sells: regions and zones, ECS instance types, and the
// offerings (a type in a zone, one spot market pool each) with their pay-as-you-go and snapshot
// spot prices in CNY per hour. It also parses the k8s.aliyun.com/eci-use-specs annotation and
// turns specs into candidate offerings.
//
// The catalog only lists: the market decides prices over time and stock. The embedded data is a
// real Alibaba Cloud snapshot of 2024-06-12; NOTICE.md gives its origins, licenses and the one
// documented estimate it contains.
package catalog

//go:generate go run ./gen -data ../../../shared/data/alibaba -out catalog.json

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
)

//go:embed catalog.json
var embedded []byte

// formatVersion is the version of catalog.json that Load reads.
const formatVersion = 1

// InstanceType is an ECS instance type.
type InstanceType struct {
	Name      string // e.g. "ecs.c6.large"
	Family    string // e.g. "ecs.c6"
	Arch      string // as kubernetes.io/arch: "amd64" or "arm64"
	VCPU      int
	MemoryGiB float64
	GPU       int
}

// Offering is an instance type sold in one zone: a market pool.
type Offering struct {
	ID           int    // dense index 0..N-1 into Catalog.Offerings(), for array-indexed state
	Zone, Region string // the zone and the region that holds it
	Type         *InstanceType
	OnDemand     float64 // pay-as-you-go CNY/h
	Spot         float64 // snapshot spot price CNY/h (anchor of the price model)
	Estimated    bool    // price is the documented estimate, not a snapshot value
}

// Catalog is an immutable set of regions, zones, instance types and offerings. It is safe for
// concurrent use; callers must not modify the types and offerings it returns.
type Catalog struct {
	regions   []string
	zones     map[string][]string // region -> sorted zones
	regionOf  map[string]string   // zone -> region
	types     map[string]*InstanceType
	typeNames []string // sorted
	offerings []*Offering
	byZone    map[string][]*Offering // zone -> its offerings, sorted by type name
	byKey     map[offeringKey]*Offering
}

type offeringKey struct{ zone, typeName string }

var (
	defaultOnce sync.Once
	defaultCat  *Catalog
)

// Default returns the embedded catalog, parsed once. It panics only if the embedded file is
// corrupt, which the package tests rule out.
func Default() *Catalog {
	defaultOnce.Do(func() {
		c, err := Load(bytes.NewReader(embedded))
		if err != nil {
			panic(fmt.Sprintf("catalog: embedded catalog.json: %v", err))
		}
		defaultCat = c
	})
	return defaultCat
}

// File is the catalog.json format, read here and written by gen/main.go.
type (
	File struct {
		Version   int            `json:"version"`
		Regions   []FileRegion   `json:"regions"`
		Types     []FileType     `json:"types"`
		Offerings []FileOffering `json:"offerings"`
	}
	FileRegion struct {
		Name  string   `json:"name"`
		Zones []string `json:"zones"`
	}
	FileType struct {
		Name      string  `json:"name"`
		Family    string  `json:"family"`
		Arch      string  `json:"arch"`
		VCPU      int     `json:"vcpu"`
		MemoryGiB float64 `json:"memoryGiB"`
		GPU       int     `json:"gpu"`
	}
	FileOffering struct {
		Zone      string  `json:"zone"`
		Type      string  `json:"type"`
		OnDemand  float64 `json:"onDemand"`
		Spot      float64 `json:"spot"`
		Estimated bool    `json:"estimated,omitempty"`
	}
)

// Load reads a catalog in the format of catalog.json. The lists need not be sorted; Load
// sorts them and numbers the offerings. It rejects unknown fields (a misspelt field would
// otherwise read as zero) and any inconsistency: an offering in an unknown zone or of an
// unknown type, a duplicate, a price that is not positive, or a spot price above pay-as-you-go
// (the market's ceiling).
func Load(r io.Reader) (*Catalog, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("catalog: decoding: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("catalog: decoding: data after the catalog object")
	}
	c, err := build(&f)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return c, nil
}

func build(f *File) (*Catalog, error) {
	if f.Version != formatVersion {
		return nil, fmt.Errorf("format version %d, want %d", f.Version, formatVersion)
	}
	c := &Catalog{
		zones:    make(map[string][]string, len(f.Regions)),
		regionOf: map[string]string{},
		types:    make(map[string]*InstanceType, len(f.Types)),
		byZone:   map[string][]*Offering{},
		byKey:    make(map[offeringKey]*Offering, len(f.Offerings)),
	}
	for _, r := range f.Regions {
		if r.Name == "" {
			return nil, errors.New("region with no name")
		}
		if _, dup := c.zones[r.Name]; dup {
			return nil, fmt.Errorf("region %q listed twice", r.Name)
		}
		zones := slices.Clone(r.Zones)
		slices.Sort(zones)
		for _, z := range zones {
			if z == "" {
				return nil, fmt.Errorf("region %q: zone with no name", r.Name)
			}
			if other, dup := c.regionOf[z]; dup {
				return nil, fmt.Errorf("zone %q listed in %q and %q", z, other, r.Name)
			}
			c.regionOf[z] = r.Name
		}
		c.regions = append(c.regions, r.Name)
		c.zones[r.Name] = zones
	}
	slices.Sort(c.regions)

	for _, t := range f.Types {
		// Types are named in eci-use-specs, a comma list, so a name must survive that syntax.
		if !strings.HasPrefix(t.Name, "ecs.") || strings.ContainsAny(t.Name, ", \t\r\n") {
			return nil, fmt.Errorf("type %q: want a name like ecs.c6.large", t.Name)
		}
		if _, dup := c.types[t.Name]; dup {
			return nil, fmt.Errorf("type %q listed twice", t.Name)
		}
		if t.VCPU <= 0 || !positive(t.MemoryGiB) || t.GPU < 0 || t.Arch == "" {
			return nil, fmt.Errorf("type %q: invalid specs (vcpu %d, memoryGiB %g, gpu %d, arch %q)",
				t.Name, t.VCPU, t.MemoryGiB, t.GPU, t.Arch)
		}
		c.types[t.Name] = &InstanceType{Name: t.Name, Family: t.Family, Arch: t.Arch, VCPU: t.VCPU, MemoryGiB: t.MemoryGiB, GPU: t.GPU}
		c.typeNames = append(c.typeNames, t.Name)
	}
	slices.Sort(c.typeNames)

	for _, o := range f.Offerings {
		region, ok := c.regionOf[o.Zone]
		if !ok {
			return nil, fmt.Errorf("offering %s/%s: unknown zone", o.Zone, o.Type)
		}
		t, ok := c.types[o.Type]
		if !ok {
			return nil, fmt.Errorf("offering %s/%s: unknown type", o.Zone, o.Type)
		}
		key := offeringKey{o.Zone, o.Type}
		if _, dup := c.byKey[key]; dup {
			return nil, fmt.Errorf("offering %s/%s listed twice", o.Zone, o.Type)
		}
		if !ValidPrice(o.OnDemand) || !ValidPrice(o.Spot) || o.Spot > o.OnDemand {
			return nil, fmt.Errorf("offering %s/%s: want 0 < spot <= on-demand, have spot %g, on-demand %g",
				o.Zone, o.Type, o.Spot, o.OnDemand)
		}
		off := &Offering{Zone: o.Zone, Region: region, Type: t, OnDemand: o.OnDemand, Spot: o.Spot, Estimated: o.Estimated}
		c.byKey[key] = off
		c.offerings = append(c.offerings, off)
	}
	slices.SortFunc(c.offerings, compareZoneType)
	for i, o := range c.offerings {
		o.ID = i
		c.byZone[o.Zone] = append(c.byZone[o.Zone], o)
	}
	return c, nil
}

func compareZoneType(a, b *Offering) int {
	if c := strings.Compare(a.Zone, b.Zone); c != 0 {
		return c
	}
	return strings.Compare(a.Type.Name, b.Type.Name)
}

// positive reports whether x is a positive finite number (false for NaN).
func positive(x float64) bool { return x > 0 && !math.IsInf(x, 1) }

// MaxPrice bounds every hourly price spoteci takes in, in CNY: a hundred
// times the dearest list price, and small enough that a century billed at it
// stays exact to the cent in a float64. Money is never Inf or NaN.
const MaxPrice = 100_000

// ValidPrice reports whether p is an hourly price spoteci accepts: positive
// and at most MaxPrice (false for NaN).
func ValidPrice(p float64) bool { return p > 0 && p <= MaxPrice }

// Regions returns the region IDs, sorted.
func (c *Catalog) Regions() []string { return slices.Clone(c.regions) }

// Zones returns the zones of region, sorted, or nil if the region is unknown. A zone may have
// no offerings.
func (c *Catalog) Zones(region string) []string { return slices.Clone(c.zones[region]) }

// RegionOf returns the region that holds zone.
func (c *Catalog) RegionOf(zone string) (string, bool) {
	r, ok := c.regionOf[zone]
	return r, ok
}

// Type returns the instance type called name, e.g. "ecs.c6.large".
func (c *Catalog) Type(name string) (*InstanceType, bool) {
	t, ok := c.types[name]
	return t, ok
}

// Types returns every instance type, sorted by name. Some are sold in no zone.
func (c *Catalog) Types() []*InstanceType {
	out := make([]*InstanceType, len(c.typeNames))
	for i, n := range c.typeNames {
		out[i] = c.types[n]
	}
	return out
}

// Offering returns the offering of type typeName in zone.
func (c *Catalog) Offering(zone, typeName string) (*Offering, bool) {
	o, ok := c.byKey[offeringKey{zone, typeName}]
	return o, ok
}

// Offerings returns every offering, sorted by zone then type name, so that
// Offerings()[i].ID == i. The slice is a copy; the offerings are shared.
func (c *Catalog) Offerings() []*Offering { return slices.Clone(c.offerings) }
