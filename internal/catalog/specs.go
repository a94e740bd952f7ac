package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Spec is one candidate from eci-use-specs: an ECS type, or vCPU and memory.
// Exactly one form is set: Type != "", or CPU and MemoryGiB (a row of the supported table).
type Spec struct {
	Type      string
	CPU       int
	MemoryGiB float64
}

// String formats s as it is written in eci-use-specs: "ecs.c5.large" or "2-4Gi".
func (s Spec) String() string {
	if s.Type != "" {
		return s.Type
	}
	return strconv.Itoa(s.CPU) + "-" + strconv.FormatFloat(s.MemoryGiB, 'f', -1, 64) + "Gi"
}

// MinSpecCPU is the smallest vCPU count of the vCPU-memory method.
const MinSpecCPU = 2

// supported is ECI's table of vCPU-memory specs (SPEC.md section 2), ascending.
var supported = []struct {
	cpu int
	mem []float64
}{
	{2, []float64{2, 4, 8, 16}},
	{4, []float64{4, 8, 16, 32}},
	{8, []float64{8, 16, 32, 64}},
	{12, []float64{12, 24, 48, 96}},
	{16, []float64{16, 32, 64, 128}},
	{24, []float64{24, 48, 96, 192}},
	{32, []float64{32, 64, 128, 256}},
	{52, []float64{96, 192, 384}},
	{64, []float64{128, 256, 512}},
}

// specPattern is C-MGi with C and M unsigned decimals, e.g. 2-4Gi or 2-3.5Gi.
var specPattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)-([0-9]+(?:\.[0-9]+)?)Gi$`)

// MaxSpecs is how many specs eci-use-specs may list, as ECI allows.
const MaxSpecs = 5

// ParseSpecs parses the value of k8s.aliyun.com/eci-use-specs: a comma list of at most
// MaxSpecs ECS types (ecs.c6.large) and vCPU-memory specs (2-4Gi), in order of preference.
// vCPU-memory specs are rounded up to the supported table; two items that mean the same spec
// are an error, as are empty items, unknown types, malformed specs and specs under 2 vCPU.
// Errors quote the offending item; the caller quotes the whole value.
func (c *Catalog) ParseSpecs(s string) ([]Spec, error) {
	items := strings.Split(s, ",")
	if len(items) > MaxSpecs {
		return nil, fmt.Errorf("%d specs: at most %d may be listed", len(items), MaxSpecs)
	}
	specs := make([]Spec, 0, len(items))
	seen := make(map[Spec]string, len(items))
	for _, raw := range items {
		item := strings.TrimSpace(raw)
		sp, err := c.parseSpec(item)
		if err != nil {
			return nil, fmt.Errorf("spec %s: %w", quoteItem(item), err)
		}
		// Compare after rounding: "3-4Gi,4-4Gi" names one spec twice.
		if first, dup := seen[sp]; dup {
			return nil, fmt.Errorf("spec %s: duplicate of %q (both mean %s)", quoteItem(item), first, sp)
		}
		seen[sp] = item
		specs = append(specs, sp)
	}
	return specs, nil
}

// quoteItem quotes an item of a spec list, cut short: a list is a few
// dozen bytes, and an error must not copy a huge one.
func quoteItem(item string) string {
	const max = 32
	if len(item) > max {
		return strconv.Quote(item[:max]) + "..."
	}
	return strconv.Quote(item)
}

func (c *Catalog) parseSpec(item string) (Spec, error) {
	if item == "" {
		return Spec{}, errors.New("empty item")
	}
	if strings.HasPrefix(item, "ecs.") {
		if _, ok := c.Type(item); !ok {
			return Spec{}, errors.New("unknown instance type")
		}
		return Spec{Type: item}, nil
	}
	m := specPattern.FindStringSubmatch(item)
	if m == nil {
		return Spec{}, errors.New("want an ECS type like ecs.c6.large or vCPU-memory like 2-4Gi")
	}
	cpu, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return Spec{}, errors.New("vCPU out of range") // the only way it can fail here
	}
	mem, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		return Spec{}, errors.New("memory out of range")
	}
	if cpu < MinSpecCPU {
		// Unlike container limits, an explicit spec is not silently made bigger here:
		// the user asked for a size ECI does not sell.
		return Spec{}, fmt.Errorf("the vCPU-memory method needs at least %d vCPU", MinSpecCPU)
	}
	if mem <= 0 {
		return Spec{}, errors.New("memory must be positive")
	}
	n, g, err := RoundUp(cpu, mem)
	if err != nil {
		return Spec{}, err
	}
	return Spec{CPU: n, MemoryGiB: g}, nil
}

// RoundUp returns the smallest supported vCPU-memory spec that holds cpu vCPU and memGiB GiB:
// the smallest supported vCPU count >= max(cpu, 2), then the smallest memory of that row >=
// memGiB, moving to larger rows until one has enough memory. It fails if cpu or memGiB is not
// a positive finite number, or if no supported spec is large enough.
func RoundUp(cpu, memGiB float64) (int, float64, error) {
	if !positive(cpu) || !positive(memGiB) {
		return 0, 0, fmt.Errorf("want positive vCPU and memory, have %g vCPU and %g GiB", cpu, memGiB)
	}
	cpu = math.Max(cpu, MinSpecCPU)
	for _, row := range supported {
		if float64(row.cpu) < cpu {
			continue
		}
		for _, m := range row.mem {
			if m >= memGiB {
				return row.cpu, m, nil
			}
		}
	}
	last := supported[len(supported)-1]
	return 0, 0, fmt.Errorf("%g vCPU and %g GiB exceed the largest supported spec %d-%gGi",
		cpu, memGiB, last.cpu, last.mem[len(last.mem)-1])
}

// SpecFromLimits is the spec of a pod without eci-use-specs: its summed container limits
// rounded up to the supported table. Limits under 2 vCPU are raised to 2, not rejected.
func SpecFromLimits(cpu, memGiB float64) (Spec, error) {
	n, g, err := RoundUp(cpu, memGiB)
	if err != nil {
		return Spec{}, fmt.Errorf("spec from container limits: %w", err)
	}
	return Spec{CPU: n, MemoryGiB: g}, nil
}

// supportedRow reports whether cpu-memGiB is in the supported table.
func supportedRow(cpu int, memGiB float64) bool {
	for _, row := range supported {
		if row.cpu == cpu {
			return slices.Contains(row.mem, memGiB)
		}
	}
	return false
}

// Candidates lists the offerings each spec may run on in the given zones: one group per spec,
// in the order of specs. A type spec gives that type's offerings. A vCPU-memory spec gives the
// offerings whose type has exactly that vCPU and memory or, when there is none in these zones,
// those of the smallest type that is larger in both (fewest vCPU first, then least memory).
// vCPU-memory specs never pick a GPU type, nor an ARM one: ECI runs ARM only when the type is
// named, since the pod's images may be x86 only. Each group is sorted by snapshot spot price,
// then zone, then type name. Unknown zones are ignored and no zones give empty groups; which
// offering is chosen, and at what price, is the market's decision.
func (c *Catalog) Candidates(specs []Spec, zones []string) [][]*Offering {
	var inZones []*Offering // every offering of the given zones, each zone once
	seenZone := make(map[string]bool, len(zones))
	for _, z := range zones {
		if !seenZone[z] {
			seenZone[z] = true
			inZones = append(inZones, c.byZone[z]...)
		}
	}
	groups := make([][]*Offering, len(specs))
	for i, sp := range specs {
		var g []*Offering
		if sp.Type != "" {
			for _, o := range inZones {
				if o.Type.Name == sp.Type {
					g = append(g, o)
				}
			}
		} else {
			g = matchSize(inZones, sp.CPU, sp.MemoryGiB)
		}
		slices.SortFunc(g, func(a, b *Offering) int {
			return cmp.Or(cmp.Compare(a.Spot, b.Spot), compareZoneType(a, b))
		})
		groups[i] = g
	}
	return groups
}

// matchSize returns the offerings of the exact size cpu-memGiB or, failing that, of the
// smallest larger size on offer.
func matchSize(offerings []*Offering, cpu int, memGiB float64) []*Offering {
	if cpu <= 0 || !positive(memGiB) {
		return nil
	}
	var exact, larger []*Offering
	bestCPU, bestMem := 0, 0.0
	for _, o := range offerings {
		t := o.Type
		if t.GPU > 0 || t.Arch != "amd64" || t.VCPU < cpu || t.MemoryGiB < memGiB {
			continue
		}
		if t.VCPU == cpu && t.MemoryGiB == memGiB {
			exact = append(exact, o)
			continue
		}
		if len(exact) > 0 {
			continue // an exact match wins; stop tracking larger sizes
		}
		switch {
		case larger == nil || t.VCPU < bestCPU || (t.VCPU == bestCPU && t.MemoryGiB < bestMem):
			larger = []*Offering{o}
			bestCPU, bestMem = t.VCPU, t.MemoryGiB
		case t.VCPU == bestCPU && t.MemoryGiB == bestMem:
			larger = append(larger, o)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return larger
}
