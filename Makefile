# spoteci: the two commands a newcomer needs are `make up` and `make test`.
GO        ?= go
BIN       := bin
STATE_DIR ?= state
GOFLAGS_TEST ?= -timeout 40m

.PHONY: build deps up test vet bench fuzz chaos clean

# deps installs the system packages spoteci runs on (containerd, runc, the CNI
# plugins, debootstrap, busybox-static) when missing; a no-op once present.
deps:
	@hack/deps.sh

# The binaries are static (no cgo): the node's image (spoteci image build)
# is spoteci itself.
build: deps
	CGO_ENABLED=0 $(GO) build -o $(BIN)/spoteci ./cmd/spoteci

# up runs a real Kubernetes control plane and the ECI service on the embedded
# default catalog, market time x60, state in ./state.
up: build kube images
	$(BIN)/spoteci up --state-dir $(STATE_DIR) --time-scale 60

test: build kube images vet
	$(GO) test $(GOFLAGS_TEST) -count=1 ./...

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files -o --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# bench runs every benchmark: the quick ones 5 times; those that run real
# containers a fixed number of times (their cost is the machine's); the
# 100-, 300- and 1,000-pod Jobs beside kwok and a real kubelet once (the
# kubelet's 1,000 may take 20 minutes).
bench: build kube images kwok kubelet
	$(GO) test -run '^$$' -bench . -benchmem -count 5 $$($(GO) list ./... | grep -v -e /test/e2e -e /internal/eci -e /internal/runtime) | tee $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'StartToRunning|StartBurst|Stop$$' -benchtime 100x -count 3 ./internal/runtime | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench IdleInstances -benchtime 1x ./internal/runtime | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench RuncFloor -benchtime 1000x ./internal/runtime | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench CreateContainerGroup -benchtime 1000x -count 3 -timeout 30m ./internal/eci | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench Restart10k -benchtime 3x ./internal/eci | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'DescribePaged|ProviderList' -benchtime 20x -count 3 ./internal/eci | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench LogStream200MB -benchtime 3x ./internal/eci | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench DescribeWhileCreating -benchtime 1x -count 3 ./internal/eci | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench LabelWebhook -benchtime 1000x -count 3 ./internal/vnode/webhook | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench LeaderFailover -benchtime 3x -timeout 15m ./test/e2e | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'JobSizes|Job1000$$' -benchtime 1x -timeout 90m ./test/e2e | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'ModelJob|ModelStorm10000' -benchtime 1x -timeout 60m ./test/e2e | tee -a $(BIN)/bench.txt

# kwok is the fake-node peer of the 1,000-pod benchmark, from the pinned
# module in hack/kwok (its dependencies stay out of spoteci's go.mod).
.PHONY: kwok
kwok: $(BIN)/kwok
$(BIN)/kwok: hack/kwok/go.mod hack/kwok/go.sum
	cd hack/kwok && $(GO) build -o ../../$(BIN)/kwok sigs.k8s.io/kwok/cmd/kwok

# images builds the instances' container images from Debian packages into
# bin/images (perl needs root for debootstrap); cached, so quick once built.
.PHONY: images
images: build
	$(BIN)/spoteci image build --cache-dir $(BIN)/images

# fuzz runs every fuzz target (each request decoder: the OpenAPI's query
# and form, each action's request, the admin API's bodies, page tokens,
# kubectl's log query, the annotations and specs) for FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseSpecs$$' -fuzztime $(FUZZTIME) ./internal/catalog
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/spot
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/openapi
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./internal/openapi
	$(GO) test -run '^$$' -fuzz '^FuzzParams$$' -fuzztime $(FUZZTIME) ./internal/openapi
	$(GO) test -run '^$$' -fuzz '^FuzzRPCDecode$$' -fuzztime $(FUZZTIME) ./internal/eci
	$(GO) test -run '^$$' -fuzz '^FuzzAdminDecode$$' -fuzztime $(FUZZTIME) ./internal/eci
	$(GO) test -run '^$$' -fuzz '^FuzzPageToken$$' -fuzztime $(FUZZTIME) ./internal/eci
	$(GO) test -run '^$$' -fuzz '^FuzzLogQuery$$' -fuzztime $(FUZZTIME) ./internal/vnode/kubeletapi

# chaos is the long fault run: CHAOS_FAULTS kill -9s of the service, the
# node, containerd, kube-apiserver, etcd or all of them, at moments drawn
# from CHAOS_SEED (printed when not given), then every invariant checked.
# make test runs the short one (one fault of each kind).
CHAOS_FAULTS ?= 200
chaos: build kube images
	$(GO) test -count=1 -v -timeout 6h -run '^TestFaults$$' ./test/chaos -chaos.faults $(CHAOS_FAULTS) $(if $(CHAOS_SEED),-chaos.seed $(CHAOS_SEED)) | tee $(BIN)/chaos.txt

clean:
	rm -rf $(BIN)

# The upstream Kubernetes control plane (make kube), built from pinned modules.
-include hack/kube/kube.mk
