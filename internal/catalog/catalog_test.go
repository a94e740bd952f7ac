package catalog

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// The facts below come from shared/data/README.md and Alibaba's ECI API example.

func TestDefaultRegionsAndZones(t *testing.T) {
	c := Default()
	want := map[string][]string{
		"cn-beijing": {"cn-beijing-a", "cn-beijing-b", "cn-beijing-c", "cn-beijing-d", "cn-beijing-e", "cn-beijing-f",
			"cn-beijing-g", "cn-beijing-h", "cn-beijing-i", "cn-beijing-j", "cn-beijing-k", "cn-beijing-l"},
		"cn-hangzhou": {"cn-hangzhou-b", "cn-hangzhou-e", "cn-hangzhou-f", "cn-hangzhou-g", "cn-hangzhou-h",
			"cn-hangzhou-i", "cn-hangzhou-j", "cn-hangzhou-k"},
		// cn-shanghai-o comes from the Spare Cores zone list only; it has no offerings.
		"cn-shanghai": {"cn-shanghai-a", "cn-shanghai-b", "cn-shanghai-c", "cn-shanghai-d", "cn-shanghai-e",
			"cn-shanghai-f", "cn-shanghai-g", "cn-shanghai-k", "cn-shanghai-l", "cn-shanghai-m", "cn-shanghai-n",
			"cn-shanghai-o"},
	}
	if got := c.Regions(); !slices.Equal(got, []string{"cn-beijing", "cn-hangzhou", "cn-shanghai"}) {
		t.Fatalf("Regions() = %v", got)
	}
	for region, zones := range want {
		if got := c.Zones(region); !slices.Equal(got, zones) {
			t.Errorf("Zones(%q) = %v, want %v", region, got, zones)
		}
		for _, z := range zones {
			if r, ok := c.RegionOf(z); !ok || r != region {
				t.Errorf("RegionOf(%q) = %q, %v; want %q", z, r, ok, region)
			}
		}
	}
	if got := c.Zones("us-east-1"); got != nil {
		t.Errorf("Zones(unknown) = %v, want nil", got)
	}
	if _, ok := c.RegionOf("us-east-1a"); ok {
		t.Error("RegionOf(unknown) reported ok")
	}
}

func TestDefaultTypes(t *testing.T) {
	c := Default()
	tests := []struct {
		name string
		want InstanceType
	}{
		// From Spare Cores: the price file lacks it.
		{"ecs.c5.large", InstanceType{Name: "ecs.c5.large", Family: "ecs.c5", Arch: "amd64", VCPU: 2, MemoryGiB: 4}},
		{"ecs.c6.large", InstanceType{Name: "ecs.c6.large", Family: "ecs.c6", Arch: "amd64", VCPU: 2, MemoryGiB: 4}},
		{"ecs.g6.xlarge", InstanceType{Name: "ecs.g6.xlarge", Family: "ecs.g6", Arch: "amd64", VCPU: 4, MemoryGiB: 16}},
		// The price file says amd64; Yitian 710 is ARM, as Spare Cores has it.
		{"ecs.c8y.large", InstanceType{Name: "ecs.c8y.large", Family: "ecs.c8y", Arch: "arm64", VCPU: 2, MemoryGiB: 4}},
		{"ecs.gn6v-c8g1.2xlarge", InstanceType{Name: "ecs.gn6v-c8g1.2xlarge", Family: "ecs.gn6v", Arch: "amd64", VCPU: 8, MemoryGiB: 32, GPU: 1}},
	}
	for _, tt := range tests {
		got, ok := c.Type(tt.name)
		if !ok {
			t.Errorf("Type(%q) not found", tt.name)
			continue
		}
		if *got != tt.want {
			t.Errorf("Type(%q) = %+v, want %+v", tt.name, *got, tt.want)
		}
	}
	if _, ok := c.Type("ecs.nope.large"); ok {
		t.Error("Type(unknown) reported ok")
	}
	types := c.Types()
	if !slices.IsSortedFunc(types, func(a, b *InstanceType) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("Types() not sorted by name")
	}
	if len(types) != 290 {
		t.Errorf("len(Types()) = %d, want 290 (289 of the price file and ecs.c5.large)", len(types))
	}
}

func TestDefaultOfferings(t *testing.T) {
	c := Default()
	tests := []struct {
		zone, typ          string
		onDemand           float64
		spotMin, spotMax   float64
		estimated, missing bool
	}{
		{zone: "cn-hangzhou-i", typ: "ecs.c5.large", onDemand: 0.622, spotMin: 0.056, spotMax: 0.056},
		// Estimates: 0.622 x the zone's median spot ratio.
		{zone: "cn-beijing-a", typ: "ecs.c5.large", onDemand: 0.622, spotMin: 0.118, spotMax: 0.118, estimated: true},
		{zone: "cn-beijing-i", typ: "ecs.c5.large", onDemand: 0.622, spotMin: 0.124, spotMax: 0.124, estimated: true},
		{zone: "cn-hangzhou-b", typ: "ecs.c5.large", onDemand: 0.622, spotMin: 0.119, spotMax: 0.119, estimated: true},
		// The seeds' ecs.c6.large in cn-hangzhou, where the snapshot has no spot
		// price: the region's list price, at the type's median spot ratio.
		{zone: "cn-hangzhou-b", typ: "ecs.c6.large", onDemand: 0.4717, spotMin: 0.106, spotMax: 0.106, estimated: true},
		{zone: "cn-hangzhou-i", typ: "ecs.c6.large", onDemand: 0.4717, spotMin: 0.106, spotMax: 0.106, estimated: true},
		// A zone that sells nothing in the snapshot sells nothing.
		{zone: "cn-beijing-b", typ: "ecs.c5.large", missing: true},
		{zone: "cn-beijing-b", typ: "ecs.c6.large", missing: true},
		{zone: "cn-beijing-a", typ: "ecs.c6.large", onDemand: 0.39, spotMin: 0.094, spotMax: 0.094},
		{zone: "cn-beijing-c", typ: "ecs.c6.large", onDemand: 0.39, spotMin: 0.082, spotMax: 0.082},
		// 3.431999921798706-style float noise is rounded away: 0.09000000357627869 -> 0.09.
		{zone: "cn-beijing-i", typ: "ecs.c6.large", onDemand: 0.39, spotMin: 0.09, spotMax: 0.09},
	}
	for _, tt := range tests {
		o, ok := c.Offering(tt.zone, tt.typ)
		if tt.missing {
			if ok {
				t.Errorf("Offering(%s, %s) = %+v, want none", tt.zone, tt.typ, o)
			}
			continue
		}
		if !ok {
			t.Errorf("Offering(%s, %s) not found", tt.zone, tt.typ)
			continue
		}
		if o.Zone != tt.zone || o.Type.Name != tt.typ || o.OnDemand != tt.onDemand ||
			o.Spot < tt.spotMin || o.Spot > tt.spotMax || o.Estimated != tt.estimated {
			t.Errorf("Offering(%s, %s) = %+v, want on-demand %g, spot in %g..%g, estimated %v",
				tt.zone, tt.typ, o, tt.onDemand, tt.spotMin, tt.spotMax, tt.estimated)
		}
	}

	// README: cn-beijing ecs.c6.large 0.39 on-demand, spot 0.082-0.094; ecs.g6.xlarge 1.00 / 0.19-0.24.
	ranges := []struct {
		typ              string
		onDemand         float64
		spotMin, spotMax float64
	}{
		{"ecs.c6.large", 0.39, 0.082, 0.094},
		{"ecs.g6.xlarge", 1.00, 0.19, 0.24},
	}
	for _, r := range ranges {
		n := 0
		for _, z := range c.Zones("cn-beijing") {
			o, ok := c.Offering(z, r.typ)
			if !ok {
				continue
			}
			n++
			if o.Estimated {
				continue // estimated at the type's median ratio, inside the range (checked above)
			}
			if o.OnDemand != r.onDemand || o.Spot < r.spotMin || o.Spot > r.spotMax {
				t.Errorf("%s in %s: on-demand %g spot %g, want %g and %g..%g", r.typ, z, o.OnDemand, o.Spot, r.onDemand, r.spotMin, r.spotMax)
			}
		}
		if n == 0 {
			t.Errorf("%s: no offering in cn-beijing", r.typ)
		}
	}
}

func TestDefaultOfferingsDenseAndConsistent(t *testing.T) {
	c := Default()
	all := c.Offerings()
	if len(all) != 7225 {
		t.Errorf("len(Offerings()) = %d, want 7225", len(all))
	}
	perRegion, perZone := map[string]int{}, map[string]int{}
	for i, o := range all {
		if o.ID != i {
			t.Fatalf("Offerings()[%d].ID = %d", i, o.ID)
		}
		if i > 0 && compareZoneType(all[i-1], o) >= 0 {
			t.Errorf("offerings %d and %d not sorted by zone then type", i-1, i)
		}
		if got, ok := c.Offering(o.Zone, o.Type.Name); !ok || got != o {
			t.Errorf("Offering(%s, %s) does not return Offerings()[%d]", o.Zone, o.Type.Name, i)
		}
		if r, _ := c.RegionOf(o.Zone); r != o.Region {
			t.Errorf("offering %d: Region %q, RegionOf(zone) %q", i, o.Region, r)
		}
		if typ, _ := c.Type(o.Type.Name); typ != o.Type {
			t.Errorf("offering %d: Type is not the catalog's *InstanceType", i)
		}
		if !(o.Spot > 0 && o.Spot <= o.OnDemand) {
			t.Errorf("offering %d (%s/%s): spot %g, on-demand %g", i, o.Zone, o.Type.Name, o.Spot, o.OnDemand)
		}
		if o.Spot != roundTo(o.Spot, 4) && o.Spot != o.OnDemand {
			t.Errorf("offering %d (%s/%s): spot %v has float noise", i, o.Zone, o.Type.Name, o.Spot)
		}
		if o.Estimated && o.Spot != roundTo(o.Spot, 3) && o.Spot != o.OnDemand {
			t.Errorf("offering %d (%s/%s): estimated spot %v is not a 3-decimal quote", i, o.Zone, o.Type.Name, o.Spot)
		}
		perRegion[o.Region]++
		perZone[o.Zone]++
	}
	// Every zone that sells anything sells every type with a list price
	// somewhere (289 of 290: ecs.gn6v-c8g1.4xlarge has none).
	want := map[string]int{"cn-beijing": 10 * 289, "cn-hangzhou": 7 * 289, "cn-shanghai": 8 * 289}
	for r, n := range want {
		if perRegion[r] != n {
			t.Errorf("%s: %d offerings, want %d", r, perRegion[r], n)
		}
	}
	for z, n := range perZone {
		if n != 289 {
			t.Errorf("%s sells %d types, want 289", z, n)
		}
	}
	// Offerings returns a copy: callers cannot reorder the catalog's own slice.
	all[0], all[1] = all[1], all[0]
	if c.Offerings()[0].ID != 0 {
		t.Error("Offerings() shares its slice with the catalog")
	}
}

func roundTo(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

func TestLoad(t *testing.T) {
	const good = `{"version":1,
"regions":[{"name":"r2","zones":["r2-a"]},{"name":"r1","zones":["r1-b","r1-a"]}],
"types":[{"name":"ecs.b.large","family":"ecs.b","arch":"amd64","vcpu":2,"memoryGiB":4,"gpu":0},
{"name":"ecs.a.large","family":"ecs.a","arch":"amd64","vcpu":2,"memoryGiB":4,"gpu":0}],
"offerings":[{"zone":"r2-a","type":"ecs.a.large","onDemand":1,"spot":0.5},
{"zone":"r1-b","type":"ecs.a.large","onDemand":1,"spot":0.2,"estimated":true},
{"zone":"r1-a","type":"ecs.b.large","onDemand":1,"spot":1}]}`
	c, err := Load(strings.NewReader(good))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Regions(); !slices.Equal(got, []string{"r1", "r2"}) {
		t.Errorf("Regions() = %v", got)
	}
	if got := c.Zones("r1"); !slices.Equal(got, []string{"r1-a", "r1-b"}) {
		t.Errorf("Zones(r1) = %v", got)
	}
	var got []string
	for _, o := range c.Offerings() {
		got = append(got, o.Zone+"/"+o.Type.Name)
	}
	if want := []string{"r1-a/ecs.b.large", "r1-b/ecs.a.large", "r2-a/ecs.a.large"}; !slices.Equal(got, want) {
		t.Errorf("Offerings() = %v, want %v", got, want)
	}
	if o, _ := c.Offering("r1-b", "ecs.a.large"); o == nil || !o.Estimated || o.ID != 1 || o.Region != "r1" {
		t.Errorf("Offering(r1-b, ecs.a.large) = %+v", o)
	}

	// Each case replaces one fragment of good and must fail with an error naming the cause.
	bad := []struct {
		name, old, new, want string
	}{
		{"not json", good, "{", "decoding"},
		{"trailing data", good, good + "{}", "data after"},
		{"unknown field", `"version":1`, `"version":1,"currency":"CNY"`, "unknown field"},
		{"version", `"version":1`, `"version":2`, "format version 2"},
		{"region no name", `"name":"r2"`, `"name":""`, "region with no name"},
		{"region twice", `"name":"r2","zones":["r2-a"]`, `"name":"r1","zones":["r2-a"]`, `region "r1" listed twice`},
		{"zone twice", `"zones":["r2-a"]`, `"zones":["r1-a"]`, `zone "r1-a" listed in`},
		{"empty zone", `"zones":["r2-a"]`, `"zones":["r2-a",""]`, "zone with no name"},
		{"type name", `"name":"ecs.b.large"`, `"name":"b.large"`, `type "b.large": want a name`},
		{"type name comma", `"name":"ecs.b.large"`, `"name":"ecs.b,large"`, "want a name"},
		{"type twice", `"name":"ecs.b.large"`, `"name":"ecs.a.large"`, `type "ecs.a.large" listed twice`},
		{"vcpu", `"vcpu":2`, `"vcpu":0`, "invalid specs"},
		{"memory", `"memoryGiB":4`, `"memoryGiB":-1`, "invalid specs"},
		{"gpu", `"gpu":0`, `"gpu":-1`, "invalid specs"},
		{"arch", `"arch":"amd64"`, `"arch":""`, "invalid specs"},
		{"unknown zone", `{"zone":"r2-a"`, `{"zone":"r9-a"`, "unknown zone"},
		{"unknown type", `"zone":"r2-a","type":"ecs.a.large"`, `"zone":"r2-a","type":"ecs.z.large"`, "unknown type"},
		{"offering twice", `"zone":"r2-a","type":"ecs.a.large"`, `"zone":"r1-b","type":"ecs.a.large"`, "listed twice"},
		{"zero spot", `"spot":0.5`, `"spot":0`, "want 0 < spot <= on-demand"},
		{"spot above on-demand", `"spot":0.5`, `"spot":1.5`, "want 0 < spot <= on-demand"},
		{"zero on-demand", `"onDemand":1,"spot":0.5`, `"onDemand":0,"spot":0.5`, "want 0 < spot <= on-demand"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.old) {
				t.Fatalf("fragment %q not in the good catalog", tt.old)
			}
			in := strings.Replace(good, tt.old, tt.new, 1)
			_, err := Load(strings.NewReader(in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "catalog: ") {
				t.Errorf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
