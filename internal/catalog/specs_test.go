package catalog

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// parseTests drives TestParseSpecs and seeds FuzzParseSpecs.
var parseTests = []struct {
	in      string
	want    []Spec
	wantErr string // substring of the error; "" means success
}{
	{in: "ecs.c5.large,2-4Gi", want: []Spec{{Type: "ecs.c5.large"}, {CPU: 2, MemoryGiB: 4}}},
	{in: "ecs.c6.large", want: []Spec{{Type: "ecs.c6.large"}}},
	{in: " 2-4Gi , ecs.c6.large ", want: []Spec{{CPU: 2, MemoryGiB: 4}, {Type: "ecs.c6.large"}}},
	{in: "4-8Gi,2-4Gi,ecs.g6.xlarge", want: []Spec{{CPU: 4, MemoryGiB: 8}, {CPU: 2, MemoryGiB: 4}, {Type: "ecs.g6.xlarge"}}},
	// Rounded up to the supported table.
	{in: "2-3.5Gi", want: []Spec{{CPU: 2, MemoryGiB: 4}}},
	{in: "2.5-4Gi", want: []Spec{{CPU: 4, MemoryGiB: 4}}},
	{in: "3-1Gi", want: []Spec{{CPU: 4, MemoryGiB: 4}}},
	{in: "2-32Gi", want: []Spec{{CPU: 4, MemoryGiB: 32}}},
	{in: "2-100Gi", want: []Spec{{CPU: 16, MemoryGiB: 128}}},
	{in: "40-50Gi", want: []Spec{{CPU: 52, MemoryGiB: 96}}},
	{in: "64-512Gi", want: []Spec{{CPU: 64, MemoryGiB: 512}}},
	{in: "02-04.0Gi", want: []Spec{{CPU: 2, MemoryGiB: 4}}},
	{in: "2-0.5Gi", want: []Spec{{CPU: 2, MemoryGiB: 2}}},

	// Errors: each quotes the item, cut short; the caller quotes the value.
	{in: "ecs.c5.large,2-4G", wantErr: `spec "2-4G": want an ECS type like ecs.c6.large or vCPU-memory like 2-4Gi`},
	{in: "", wantErr: `spec "": empty item`},
	{in: "  ", wantErr: `spec "": empty item`},
	{in: "2-4Gi,", wantErr: `spec "": empty item`},
	{in: "2-4Gi,,ecs.c6.large", wantErr: `spec "": empty item`},
	{in: "ecs.c5.huge", wantErr: `spec "ecs.c5.huge": unknown instance type`},
	{in: "ecs.", wantErr: `spec "ecs.": unknown instance type`},
	{in: "ECS.C5.LARGE", wantErr: `spec "ECS.C5.LARGE": want an ECS type`},
	{in: "c5.large", wantErr: `spec "c5.large": want an ECS type`},
	{in: "2-4", wantErr: `spec "2-4": want an ECS type`},
	{in: "2-4gi", wantErr: `spec "2-4gi": want an ECS type`},
	{in: "2-4GiB", wantErr: `spec "2-4GiB": want an ECS type`},
	{in: "2 - 4Gi", wantErr: `spec "2 - 4Gi": want an ECS type`},
	{in: "-2-4Gi", wantErr: `spec "-2-4Gi": want an ECS type`},
	{in: "2--4Gi", wantErr: `spec "2--4Gi": want an ECS type`},
	{in: "2.-4Gi", wantErr: `spec "2.-4Gi": want an ECS type`},
	{in: ".5-4Gi", wantErr: `spec ".5-4Gi": want an ECS type`},
	{in: "1e1-4Gi", wantErr: `spec "1e1-4Gi": want an ECS type`},
	{in: "2-4Gi;4-8Gi", wantErr: `spec "2-4Gi;4-8Gi": want an ECS type`},
	{in: "1-2Gi", wantErr: `spec "1-2Gi": the vCPU-memory method needs at least 2 vCPU`},
	{in: "1.99-4Gi", wantErr: `spec "1.99-4Gi": the vCPU-memory method needs at least 2 vCPU`},
	{in: "ecs.c6.large,0-4Gi", wantErr: `spec "0-4Gi": the vCPU-memory method needs at least 2 vCPU`},
	{in: "2-0Gi", wantErr: `spec "2-0Gi": memory must be positive`},
	{in: "2-0.0Gi", wantErr: `spec "2-0.0Gi": memory must be positive`},
	{in: "65-4Gi", wantErr: `spec "65-4Gi": 65 vCPU and 4 GiB exceed the largest supported spec 64-512Gi`},
	{in: "64-513Gi", wantErr: `spec "64-513Gi": 64 vCPU and 513 GiB exceed`},
	{in: "2-" + strings.Repeat("9", 400) + "Gi", wantErr: "memory out of range"},
	{in: strings.Repeat("9", 400) + "-4Gi", wantErr: "vCPU out of range"},
	{in: "ecs.c6.large,ecs.c6.large", wantErr: `spec "ecs.c6.large": duplicate of "ecs.c6.large"`},
	{in: "2-4Gi,2-4Gi", wantErr: `spec "2-4Gi": duplicate of "2-4Gi" (both mean 2-4Gi)`},
	{in: "3-4Gi,4-4Gi", wantErr: `spec "4-4Gi": duplicate of "3-4Gi" (both mean 4-4Gi)`},
	{in: "2-4Gi,2-3Gi", wantErr: `duplicate of "2-4Gi" (both mean 2-4Gi)`},
	{in: "2-4Gi,4-8Gi,8-16Gi,16-32Gi,32-64Gi,64-128Gi", wantErr: "6 specs: at most 5"},
	{in: strings.Repeat("x", 1000), wantErr: `spec "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"...: want an ECS type`},
}

func TestParseSpecs(t *testing.T) {
	c := Default()
	for _, tt := range parseTests {
		got, err := c.ParseSpecs(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSpecs(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseSpecs(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestRoundUp(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		cpu, mem float64
		wantCPU  int
		wantMem  float64
		wantErr  string
	}{
		{cpu: 2, mem: 4, wantCPU: 2, wantMem: 4},
		{cpu: 0.25, mem: 0.5, wantCPU: 2, wantMem: 2},
		{cpu: 1, mem: 3, wantCPU: 2, wantMem: 4},
		{cpu: 2, mem: 16, wantCPU: 2, wantMem: 16},
		{cpu: 2, mem: 16.5, wantCPU: 4, wantMem: 32},
		{cpu: 2.001, mem: 4, wantCPU: 4, wantMem: 4},
		{cpu: 8, mem: 65, wantCPU: 12, wantMem: 96},
		{cpu: 8, mem: 97, wantCPU: 16, wantMem: 128},
		{cpu: 12, mem: 1, wantCPU: 12, wantMem: 12},
		{cpu: 33, mem: 1, wantCPU: 52, wantMem: 96},
		{cpu: 32, mem: 300, wantCPU: 52, wantMem: 384},
		{cpu: 52, mem: 385, wantCPU: 64, wantMem: 512},
		{cpu: 64, mem: 512, wantCPU: 64, wantMem: 512},
		{cpu: 64.5, mem: 1, wantErr: "exceed the largest supported spec 64-512Gi"},
		{cpu: 2, mem: 600, wantErr: "exceed the largest supported spec"},
		{cpu: 0, mem: 4, wantErr: "want positive vCPU and memory"},
		{cpu: 2, mem: 0, wantErr: "want positive vCPU and memory"},
		{cpu: -2, mem: 4, wantErr: "want positive vCPU and memory"},
		{cpu: 2, mem: -4, wantErr: "want positive vCPU and memory"},
		{cpu: math.NaN(), mem: 4, wantErr: "want positive vCPU and memory"},
		{cpu: 2, mem: math.NaN(), wantErr: "want positive vCPU and memory"},
		{cpu: inf, mem: 4, wantErr: "want positive vCPU and memory"},
		{cpu: 2, mem: inf, wantErr: "want positive vCPU and memory"},
	}
	for _, tt := range tests {
		gotCPU, gotMem, err := RoundUp(tt.cpu, tt.mem)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("RoundUp(%g, %g) = %d, %g, %v; want error containing %q", tt.cpu, tt.mem, gotCPU, gotMem, err, tt.wantErr)
			}
			continue
		}
		if err != nil || gotCPU != tt.wantCPU || gotMem != tt.wantMem {
			t.Errorf("RoundUp(%g, %g) = %d, %g, %v; want %d, %g", tt.cpu, tt.mem, gotCPU, gotMem, err, tt.wantCPU, tt.wantMem)
		}
	}
}

// TestRoundUpEveryRow checks that every supported spec is a fixed point of RoundUp.
func TestRoundUpEveryRow(t *testing.T) {
	for _, row := range supported {
		for _, m := range row.mem {
			if c, g, err := RoundUp(float64(row.cpu), m); err != nil || c != row.cpu || g != m {
				t.Errorf("RoundUp(%d, %g) = %d, %g, %v", row.cpu, m, c, g, err)
			}
		}
	}
}

func TestSpecFromLimits(t *testing.T) {
	tests := []struct {
		cpu, mem float64
		want     Spec
		wantErr  string
	}{
		{cpu: 0.5, mem: 0.5, want: Spec{CPU: 2, MemoryGiB: 2}}, // small limits are raised, not rejected
		{cpu: 1, mem: 4, want: Spec{CPU: 2, MemoryGiB: 4}},
		{cpu: 3, mem: 6, want: Spec{CPU: 4, MemoryGiB: 8}},
		{cpu: 16, mem: 64, want: Spec{CPU: 16, MemoryGiB: 64}},
		{cpu: 0, mem: 4, wantErr: "spec from container limits: want positive vCPU and memory"},
		{cpu: 2, mem: 0, wantErr: "spec from container limits: want positive vCPU and memory"},
		{cpu: -1, mem: 4, wantErr: "want positive"},
		{cpu: math.NaN(), mem: 4, wantErr: "want positive"},
		{cpu: 100, mem: 4, wantErr: "spec from container limits: 100 vCPU and 4 GiB exceed"},
	}
	for _, tt := range tests {
		got, err := SpecFromLimits(tt.cpu, tt.mem)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("SpecFromLimits(%g, %g) = %v, %v; want error containing %q", tt.cpu, tt.mem, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("SpecFromLimits(%g, %g) = %v, %v; want %v", tt.cpu, tt.mem, got, err, tt.want)
		}
	}
}

func TestSpecString(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Type: "ecs.c5.large"}, "ecs.c5.large"},
		{Spec{CPU: 2, MemoryGiB: 4}, "2-4Gi"},
		{Spec{CPU: 52, MemoryGiB: 384}, "52-384Gi"},
		{Spec{CPU: 2, MemoryGiB: 3.5}, "2-3.5Gi"},
	}
	for _, tt := range tests {
		if got := tt.spec.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.spec, got, tt.want)
		}
	}
}

// candidatesCatalog is small enough to state every expected group by hand.
const candidatesCatalog = `{"version":1,
"regions":[{"name":"r1","zones":["r1-a","r1-b","r1-c"]},{"name":"r2","zones":["r2-a"]}],
"types":[
{"name":"ecs.a.large","family":"ecs.a","arch":"amd64","vcpu":2,"memoryGiB":4,"gpu":0},
{"name":"ecs.b.large","family":"ecs.b","arch":"amd64","vcpu":2,"memoryGiB":4,"gpu":0},
{"name":"ecs.arm.large","family":"ecs.arm","arch":"arm64","vcpu":2,"memoryGiB":4,"gpu":0},
{"name":"ecs.gpu.large","family":"ecs.gpu","arch":"amd64","vcpu":2,"memoryGiB":4,"gpu":1},
{"name":"ecs.a.xlarge","family":"ecs.a","arch":"amd64","vcpu":4,"memoryGiB":8,"gpu":0},
{"name":"ecs.m.xlarge","family":"ecs.m","arch":"amd64","vcpu":4,"memoryGiB":16,"gpu":0},
{"name":"ecs.a.2xlarge","family":"ecs.a","arch":"amd64","vcpu":8,"memoryGiB":16,"gpu":0}],
"offerings":[
{"zone":"r1-a","type":"ecs.a.large","onDemand":1,"spot":0.3},
{"zone":"r1-b","type":"ecs.a.large","onDemand":1,"spot":0.2},
{"zone":"r1-a","type":"ecs.b.large","onDemand":1,"spot":0.2},
{"zone":"r1-b","type":"ecs.b.large","onDemand":1,"spot":0.2},
{"zone":"r2-a","type":"ecs.b.large","onDemand":1,"spot":0.01},
{"zone":"r1-a","type":"ecs.arm.large","onDemand":1,"spot":0.05},
{"zone":"r1-a","type":"ecs.gpu.large","onDemand":9,"spot":0.05},
{"zone":"r1-a","type":"ecs.a.xlarge","onDemand":2,"spot":0.5},
{"zone":"r1-b","type":"ecs.m.xlarge","onDemand":3,"spot":0.4},
{"zone":"r1-b","type":"ecs.a.2xlarge","onDemand":4,"spot":0.6},
{"zone":"r2-a","type":"ecs.a.xlarge","onDemand":2,"spot":0.1}]}`

func TestCandidates(t *testing.T) {
	c, err := Load(strings.NewReader(candidatesCatalog))
	if err != nil {
		t.Fatal(err)
	}
	r1 := []string{"r1-a", "r1-b", "r1-c"}
	tests := []struct {
		name  string
		specs []Spec
		zones []string
		want  [][]string // zone/type per group
	}{
		{
			name:  "type spec, cheapest first",
			specs: []Spec{{Type: "ecs.a.large"}},
			zones: r1,
			want:  [][]string{{"r1-b/ecs.a.large", "r1-a/ecs.a.large"}},
		},
		{
			name:  "exact size, ties by zone then type, no ARM or GPU",
			specs: []Spec{{CPU: 2, MemoryGiB: 4}},
			zones: r1,
			want:  [][]string{{"r1-a/ecs.b.large", "r1-b/ecs.a.large", "r1-b/ecs.b.large", "r1-a/ecs.a.large"}},
		},
		{
			name:  "groups follow spec order",
			specs: []Spec{{CPU: 4, MemoryGiB: 8}, {Type: "ecs.b.large"}, {Type: "ecs.a.xlarge"}},
			zones: []string{"r1-a", "r2-a"},
			want: [][]string{
				{"r2-a/ecs.a.xlarge", "r1-a/ecs.a.xlarge"},
				{"r2-a/ecs.b.large", "r1-a/ecs.b.large"},
				{"r2-a/ecs.a.xlarge", "r1-a/ecs.a.xlarge"},
			},
		},
		{
			name:  "no exact size: smallest vCPU first, then memory",
			specs: []Spec{{CPU: 2, MemoryGiB: 8}, {CPU: 4, MemoryGiB: 4}, {CPU: 4, MemoryGiB: 16}},
			zones: r1,
			want:  [][]string{{"r1-a/ecs.a.xlarge"}, {"r1-a/ecs.a.xlarge"}, {"r1-b/ecs.m.xlarge"}},
		},
		{
			name:  "the larger size depends on the zones",
			specs: []Spec{{CPU: 2, MemoryGiB: 8}},
			zones: []string{"r1-b"},
			want:  [][]string{{"r1-b/ecs.m.xlarge"}},
		},
		{
			name:  "nothing large enough",
			specs: []Spec{{CPU: 12, MemoryGiB: 24}},
			zones: r1,
			want:  [][]string{nil},
		},
		{
			name:  "type not sold in these zones, or unknown",
			specs: []Spec{{Type: "ecs.a.2xlarge"}, {Type: "ecs.nope.large"}, {}},
			zones: []string{"r1-a", "r2-a"},
			want:  [][]string{nil, nil, nil},
		},
		{
			name:  "unknown and repeated zones",
			specs: []Spec{{Type: "ecs.a.large"}},
			zones: []string{"r9-z", "r1-a", "r1-a"},
			want:  [][]string{{"r1-a/ecs.a.large"}},
		},
		{
			name:  "no zones",
			specs: []Spec{{Type: "ecs.a.large"}, {CPU: 2, MemoryGiB: 4}},
			zones: nil,
			want:  [][]string{nil, nil},
		},
		{
			name:  "no specs",
			specs: nil,
			zones: r1,
			want:  [][]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Candidates(tt.specs, tt.zones)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d groups, want %d", len(got), len(tt.want))
			}
			for i, g := range got {
				var names []string
				for _, o := range g {
					names = append(names, o.Zone+"/"+o.Type.Name)
				}
				if !slices.Equal(names, tt.want[i]) {
					t.Errorf("group %d (%v) = %v, want %v", i, tt.specs[i], names, tt.want[i])
				}
			}
		})
	}
}

// TestCandidatesGuide runs the guide's annotation against the embedded catalog.
func TestCandidatesGuide(t *testing.T) {
	c := Default()
	specs, err := c.ParseSpecs("ecs.c5.large,2-4Gi")
	if err != nil {
		t.Fatal(err)
	}
	groups := c.Candidates(specs, c.Zones("cn-hangzhou"))
	if len(groups) != 2 {
		t.Fatalf("got %d groups, want 2", len(groups))
	}
	// ecs.c5.large in every zone, the snapshot's cn-hangzhou-i cheapest.
	if g := groups[0]; len(g) != len(c.Zones("cn-hangzhou"))-1 || g[0].Zone != "cn-hangzhou-i" || g[0].Spot != 0.056 {
		t.Errorf("ecs.c5.large in cn-hangzhou: %d candidates, first %s at %v", len(g), g[0].Zone, g[0].Spot)
	}
	if len(groups[1]) == 0 {
		t.Fatal("2-4Gi in cn-hangzhou: no candidates")
	}
	for i, o := range groups[1] {
		if o.Type.VCPU != 2 || o.Type.MemoryGiB != 4 || o.Type.GPU != 0 || o.Type.Arch != "amd64" || o.Region != "cn-hangzhou" {
			t.Errorf("2-4Gi candidate %s/%s: %+v", o.Zone, o.Type.Name, *o.Type)
		}
		if i > 0 && groups[1][i-1].Spot > o.Spot {
			t.Errorf("2-4Gi candidates not sorted by spot at %d", i)
		}
	}
}

func FuzzParseSpecs(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	c := Default()
	f.Fuzz(func(t *testing.T, s string) {
		specs, err := c.ParseSpecs(s)
		if err != nil {
			if specs != nil {
				t.Errorf("ParseSpecs(%q) returned specs with an error", s)
			}
			return
		}
		if len(specs) == 0 {
			t.Fatalf("ParseSpecs(%q) succeeded with no specs", s)
		}
		parts := make([]string, len(specs))
		for i, sp := range specs {
			switch {
			case sp.Type != "":
				if _, ok := c.Type(sp.Type); !ok || sp.CPU != 0 || sp.MemoryGiB != 0 {
					t.Fatalf("ParseSpecs(%q): spec %#v is not a known type", s, sp)
				}
			case sp.CPU < MinSpecCPU || !supportedRow(sp.CPU, sp.MemoryGiB):
				t.Fatalf("ParseSpecs(%q): spec %#v is not a supported row", s, sp)
			}
			parts[i] = sp.String()
		}
		again, err := c.ParseSpecs(strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, specs) {
			t.Fatalf("ParseSpecs(%q) = %v, which formats to %q and parses back to %v, %v", s, specs, strings.Join(parts, ","), again, err)
		}
	})
}
