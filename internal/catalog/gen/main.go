// Command gen builds internal/catalog/catalog.json from the vendored Alibaba Cloud data in
// shared/data/alibaba. It is run by go generate from the catalog package:
//
//	go run ./gen -data ../../../shared/data/alibaba -out catalog.json
//
// The output is deterministic (every list sorted) so that a regeneration shows up as a
// reviewable diff. NOTICE.md beside catalog.json documents the origins and every rule below.
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spoteci/spoteci/internal/catalog"
)

// Input files, as named in shared/data/README.md.
const (
	priceFile = "alibabacloud_price_2024-06-12.json"
	typesFile = "alibaba_ecs_instance_types_sparecores.csv"
	zonesFile = "alibaba_regions_zones_sparecores.csv"
)

// The guide's type, absent from the price file, and the figures of Alibaba's own ECI API example.
const (
	guideType       = "ecs.c5.large"
	guideZone       = "cn-hangzhou-i"
	guideSpot       = 0.056
	guideOnDemand   = 0.622
	formatVersion   = 1
	defaultRegions  = "cn-beijing,cn-hangzhou,cn-shanghai"
	spotDecimals    = 4 // the snapshot went through float32: 3.431999921798706 means 3.432
	estimateDecimal = 3 // Alibaba quotes spot prices with 3 decimals
)

func main() {
	data := flag.String("data", "../../../shared/data/alibaba", "folder holding the Alibaba data files")
	out := flag.String("out", "catalog.json", "file to write")
	regions := flag.String("regions", defaultRegions, "comma-separated regions to include")
	flag.Parse()

	b, stats, err := generate(*data, strings.Split(*regions, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gen: wrote %s (%d bytes): %s\n", *out, len(b), stats)
}

// The catalog.json format is internal/catalog's own.
type (
	catalogFile = catalog.File
	region      = catalog.FileRegion
	instType    = catalog.FileType
	offering    = catalog.FileOffering
)

// The cloudpilot-ai/priceserver format.
type (
	priceRegion struct {
		InstanceTypePrices map[string]priceType `json:"instanceTypePrices"`
	}
	priceType struct {
		Arch     string             `json:"arch"`
		VCPU     int                `json:"vcpu"`
		Memory   float64            `json:"memory"`
		GPU      int                `json:"gpu"`
		Zones    []string           `json:"zones"`
		OnDemand float64            `json:"onDemandPricePerHour"`
		Spot     map[string]float64 `json:"spotPricePerHour"`
	}
)

// scType is one row of the Spare Cores instance type table.
type scType struct {
	family, arch string
	vcpu, gpu    int
	memory       float64
}

// generate returns the encoded catalog and a one-line summary for the log.
func generate(dataDir string, regions []string) ([]byte, string, error) {
	prices, err := readPrices(filepath.Join(dataDir, priceFile))
	if err != nil {
		return nil, "", err
	}
	specs, err := readSpareCoresTypes(filepath.Join(dataDir, typesFile))
	if err != nil {
		return nil, "", err
	}
	csvZones, err := readSpareCoresZones(filepath.Join(dataDir, zonesFile))
	if err != nil {
		return nil, "", err
	}

	var out catalogFile
	out.Version = formatVersion
	types := map[string]instType{}
	offers := map[[2]string]offering{} // {zone, type}
	clamped, noPrice := 0, 0
	for _, name := range regions {
		name = strings.TrimSpace(name)
		pr, ok := prices[name]
		if !ok {
			return nil, "", fmt.Errorf("region %q not in %s", name, priceFile)
		}
		zones := map[string]bool{}
		for _, z := range csvZones[name] {
			zones[z] = true
		}
		for tname, pt := range pr.InstanceTypePrices {
			t, err := makeType(tname, pt, specs)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", name, err)
			}
			if old, ok := types[tname]; ok && old != t {
				return nil, "", fmt.Errorf("type %s differs between regions: %+v vs %+v", tname, old, t)
			}
			types[tname] = t
			for _, z := range pt.Zones {
				zones[z] = true
			}
			// The zones list of the price file is the region's zone list, the same for every
			// type; only a spot price shows that the type is sold in a zone.
			for z, p := range pt.Spot {
				zones[z] = true
				if !(pt.OnDemand > 0) || !(p > 0) {
					noPrice++
					continue
				}
				spot := round(p, spotDecimals)
				if spot > pt.OnDemand {
					// Rounding (float32 noise, 3-decimal spot quotes) put a few spot prices a
					// hair above pay-as-you-go; the market caps spot there, so does the catalog.
					spot = pt.OnDemand
					clamped++
				}
				offers[[2]string{z, tname}] = offering{Zone: z, Type: tname, OnDemand: pt.OnDemand, Spot: spot}
			}
		}
		// Types without any spot price (e.g. an on-demand price of 0) still count as types.
		out.Regions = append(out.Regions, region{Name: name, Zones: sortedKeys(zones)})
	}

	added, err := addGuideType(regions, types, offers, specs)
	if err != nil {
		return nil, "", err
	}
	estimated := fill(regions, prices, types, offers)

	for _, t := range types {
		out.Types = append(out.Types, t)
	}
	for _, o := range offers {
		out.Offerings = append(out.Offerings, o)
	}
	slices.SortFunc(out.Regions, func(a, b region) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(out.Types, func(a, b instType) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(out.Offerings, func(a, b offering) int {
		if c := strings.Compare(a.Zone, b.Zone); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})

	b, err := encode(out)
	if err != nil {
		return nil, "", err
	}
	stats := fmt.Sprintf("%d regions, %d types, %d offerings (%d estimated, %d %s, %d spot prices capped at pay-as-you-go, %d zone prices skipped)",
		len(out.Regions), len(out.Types), len(out.Offerings), estimated, added, guideType, clamped, noPrice)
	return b, stats, nil
}

// makeType merges the price file's specs with Spare Cores', which are right about the
// architecture of the Yitian (ARM) families that the price file labels amd64.
func makeType(name string, pt priceType, specs map[string]scType) (instType, error) {
	t := instType{
		Name:      name,
		Family:    familyOf(name),
		Arch:      pt.Arch,
		VCPU:      pt.VCPU,
		MemoryGiB: pt.Memory,
		GPU:       pt.GPU,
	}
	if sc, ok := specs[name]; ok {
		if sc.vcpu != pt.VCPU || sc.memory != pt.Memory || sc.gpu != pt.GPU {
			return t, fmt.Errorf("type %s: price file says %d vCPU %g GiB %d GPU, Spare Cores %d vCPU %g GiB %d GPU",
				name, pt.VCPU, pt.Memory, pt.GPU, sc.vcpu, sc.memory, sc.gpu)
		}
		t.Family, t.Arch = sc.family, sc.arch
	}
	if t.VCPU <= 0 || !(t.MemoryGiB > 0) || t.Arch == "" {
		return t, fmt.Errorf("type %s: incomplete specs %+v", name, t)
	}
	return t, nil
}

// addGuideType adds ecs.c5.large with the real price of Alibaba's ECI API example in
// cn-hangzhou-i; fill estimates it everywhere else.
func addGuideType(regions []string, types map[string]instType, offers map[[2]string]offering, specs map[string]scType) (int, error) {
	sc, ok := specs[guideType]
	if !ok {
		return 0, fmt.Errorf("%s not in %s", guideType, typesFile)
	}
	types[guideType] = instType{Name: guideType, Family: sc.family, Arch: sc.arch, VCPU: sc.vcpu, MemoryGiB: sc.memory, GPU: sc.gpu}
	for _, r := range regions {
		if strings.HasPrefix(guideZone, strings.TrimSpace(r)+"-") {
			offers[[2]string{guideZone, guideType}] = offering{Zone: guideZone, Type: guideType, OnDemand: guideOnDemand, Spot: guideSpot}
			return 1, nil
		}
	}
	return 0, nil
}

// fill makes every type of the catalog sellable in every zone of the chosen regions that
// sells anything, as the real regions sell the common types across their zones: the
// snapshot only holds the spot prices someone read, so where it has none the price is
// estimated (and marked so). Pay-as-you-go is the type's list price in the region, else the
// median of its list prices in the price file's other regions, else the guide's figure for
// ecs.c5.large. Spot is that times a spot/pay-as-you-go ratio, to 3 decimals, capped at
// pay-as-you-go: the type's median ratio in the region's snapshot, else its median ratio in
// every region of the price file, else the zone's median ratio over all its types (always
// so for ecs.c5.large, whose one real price is an outlier). It returns how many offerings it
// added.
func fill(regions []string, prices map[string]priceRegion, types map[string]instType, offers map[[2]string]offering) int {
	zoneRatios := map[string][]float64{}
	regionRatios := map[[2]string][]float64{} // {region, type}
	for _, o := range offers {
		if !o.Estimated && o.OnDemand > 0 {
			zoneRatios[o.Zone] = append(zoneRatios[o.Zone], o.Spot/o.OnDemand)
			region := o.Zone[:strings.LastIndexByte(o.Zone, '-')]
			regionRatios[[2]string{region, o.Type}] = append(regionRatios[[2]string{region, o.Type}], o.Spot/o.OnDemand)
		}
	}
	listPrices := map[string][]float64{} // type -> its list price in every region that has one
	allRatios := map[string][]float64{}  // type -> its spot ratio in every zone of the price file
	for _, pr := range prices {
		for name, pt := range pr.InstanceTypePrices {
			if pt.OnDemand > 0 {
				listPrices[name] = append(listPrices[name], pt.OnDemand)
				for _, spot := range pt.Spot {
					if spot > 0 {
						allRatios[name] = append(allRatios[name], min(spot/pt.OnDemand, 1))
					}
				}
			}
		}
	}
	added := 0
	for _, r := range regions {
		r = strings.TrimSpace(r)
		for zone, ratios := range zoneRatios {
			if !strings.HasPrefix(zone, r+"-") {
				continue
			}
			for name := range types {
				if _, ok := offers[[2]string{zone, name}]; ok {
					continue
				}
				payg := prices[r].InstanceTypePrices[name].OnDemand
				switch {
				case payg > 0:
				case len(listPrices[name]) > 0:
					payg = median(listPrices[name])
				case name == guideType:
					payg = guideOnDemand
				default:
					continue // no list price anywhere: nothing to estimate from
				}
				ratio := median(ratios)
				switch {
				case name == guideType:
				case len(regionRatios[[2]string{r, name}]) > 0:
					ratio = median(regionRatios[[2]string{r, name}])
				case len(allRatios[name]) > 0:
					ratio = median(allRatios[name])
				}
				spot := min(round(payg*ratio, estimateDecimal), payg)
				offers[[2]string{zone, name}] = offering{Zone: zone, Type: name, OnDemand: payg, Spot: spot, Estimated: true}
				added++
			}
		}
	}
	return added
}

// median is the middle value of xs (the mean of the two middle ones for an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// encode writes one region, type or offering per line: compact, yet diffs stay readable.
func encode(f catalogFile) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\"version\":%d,\n", f.Version)
	if err := writeList(&buf, "regions", f.Regions, false); err != nil {
		return nil, err
	}
	if err := writeList(&buf, "types", f.Types, false); err != nil {
		return nil, err
	}
	if err := writeList(&buf, "offerings", f.Offerings, true); err != nil {
		return nil, err
	}
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}

func writeList[T any](buf *bytes.Buffer, key string, items []T, last bool) error {
	fmt.Fprintf(buf, "%q:[\n", key)
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", key, err)
		}
		buf.Write(b)
		if i < len(items)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]")
	if !last {
		buf.WriteByte(',')
	}
	buf.WriteByte('\n')
	return nil
}

func readPrices(path string) (map[string]priceRegion, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]priceRegion
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return m, nil
}

func readSpareCoresTypes(path string) (map[string]scType, error) {
	rows, err := readCSV(path, "instance_type", "family", "vcpus", "memory_gib", "gpu_count", "cpu_architecture")
	if err != nil {
		return nil, err
	}
	m := map[string]scType{}
	for _, r := range rows {
		vcpu, err1 := strconv.Atoi(r["vcpus"])
		mem, err2 := strconv.ParseFloat(r["memory_gib"], 64)
		gpu := 0
		var err3 error
		if r["gpu_count"] != "" {
			gpu, err3 = strconv.Atoi(r["gpu_count"])
		}
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s: type %s: %w", path, r["instance_type"], err)
		}
		arch, err := goArch(r["cpu_architecture"])
		if err != nil {
			return nil, fmt.Errorf("%s: type %s: %w", path, r["instance_type"], err)
		}
		m[r["instance_type"]] = scType{family: r["family"], arch: arch, vcpu: vcpu, gpu: gpu, memory: mem}
	}
	return m, nil
}

// readSpareCoresZones returns the active zones of each region.
func readSpareCoresZones(path string) (map[string][]string, error) {
	rows, err := readCSV(path, "region_id", "zone_id", "status")
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, r := range rows {
		if r["status"] == "ACTIVE" {
			m[r["region_id"]] = append(m[r["region_id"]], r["zone_id"])
		}
	}
	return m, nil
}

// readCSV returns the rows as maps by header name, checking that the wanted columns exist.
func readCSV(path string, want ...string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	for _, w := range want {
		if !slices.Contains(header, w) {
			return nil, fmt.Errorf("%s: no column %q", path, w)
		}
	}
	var rows []map[string]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		row := make(map[string]string, len(header))
		for i, h := range header {
			row[h] = strings.TrimSpace(rec[i])
		}
		rows = append(rows, row)
	}
}

// goArch maps Spare Cores' names to Go/Kubernetes ones (kubernetes.io/arch).
func goArch(s string) (string, error) {
	switch s {
	case "X86_64":
		return "amd64", nil
	case "ARM64":
		return "arm64", nil
	}
	return "", fmt.Errorf("unknown cpu_architecture %q", s)
}

// familyOf is the fallback for types Spare Cores does not list: the name without its size.
func familyOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
