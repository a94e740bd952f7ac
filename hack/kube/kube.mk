# kube.mk: the upstream Kubernetes control plane, built from the pinned modules in hack/kube
# (a separate Go module so its ~200 dependencies stay out of spoteci's go.mod).
# Included at the end of the top Makefile, so it never sets the default goal.
#
#   make kube    builds bin/etcd, bin/kube-apiserver, bin/kube-controller-manager,
#                bin/kube-scheduler and bin/kubectl (about 10 minutes cold on 2 cores)
#   make kubelet builds bin/kubelet, the real node the 1,000-pod benchmark runs beside
#                spoteci's (make bench); not part of make kube, which make up needs

GO  ?= go
BIN ?= bin

KUBE_VERSION := v1.37.2
KUBE_MAJOR   := 1
KUBE_MINOR   := 37
KUBE_DIR     := hack/kube
KUBE_BINS    := etcd kube-apiserver kube-controller-manager kube-scheduler kubectl
KUBE_TARGETS := $(addprefix $(BIN)/,$(KUBE_BINS))
# Anything that can change what gets built: the module graph, our own mains, this file.
KUBE_DEPS    := $(KUBE_DIR)/go.mod $(KUBE_DIR)/go.sum $(KUBE_DIR)/kube.mk \
                $(shell find $(KUBE_DIR) -name '*.go' -not -name '*_test.go' 2>/dev/null)

# A plain go build stamps v0.0.0-master+$$Format:%H$$, which kubectl version cannot parse
# and which the apiserver would use as its binary (emulation) version.
KUBE_LDFLAGS := -s -w \
	$(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version, \
	  -X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=$(KUBE_MAJOR) \
	  -X $(p).gitMinor=$(KUBE_MINOR) -X $(p).gitTreeState=clean)

# Where each binary comes from, relative to the hack/kube module.
KUBE_PKG_etcd                    := ./etcd
KUBE_PKG_kube-apiserver          := k8s.io/kubernetes/cmd/kube-apiserver
KUBE_PKG_kube-controller-manager := k8s.io/kubernetes/cmd/kube-controller-manager
KUBE_PKG_kube-scheduler          := k8s.io/kubernetes/cmd/kube-scheduler
KUBE_PKG_kubectl                 := k8s.io/kubernetes/cmd/kubectl
KUBE_PKG_kubelet                 := k8s.io/kubernetes/cmd/kubelet

.PHONY: kube kubelet kube-clean

kube: $(KUBE_TARGETS)

kubelet: $(BIN)/kubelet

# Static, as Kubernetes releases it (its build sets CGO_ENABLED=0 for the kubelet too).
$(BIN)/kubelet: export CGO_ENABLED := 0

$(KUBE_TARGETS) $(BIN)/kubelet: $(BIN)/%: $(KUBE_DEPS)
	@echo "kube: building $@ from $(KUBE_PKG_$*) (Kubernetes $(KUBE_VERSION) module graph) ..."
	@start=$$(date +%s); \
	cd $(KUBE_DIR) && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $(abspath $@) $(KUBE_PKG_$*) && \
	echo "kube: built $@ in $$(( $$(date +%s) - start ))s"

kube-clean:
	rm -f $(KUBE_TARGETS) $(BIN)/kubelet
