# harden: build, test and demo. `make help` lists the targets.
#
# Everything runs as root on Debian 12; `make deps` installs what the
# integration and end-to-end tests need and caches the daemon builds under
# $(HARDEN_CACHE), outside the repo.

SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO          ?= go
HARDEN_CACHE ?= /var/cache/harden
export HARDEN_CACHE
BIN         := bin
# cgo is required for harden-runc (its C fast path) and hardenctl (libseccomp: the full compile
# of a profile and seccomp user notification for `record`). The shim is built without it.
export CGO_ENABLED := 1
GOFLAGS_BUILD := -trimpath
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
CMDS        := $(notdir $(wildcard cmd/*))
# Built without cgo, hence static: harden-probe runs inside containers of any image; the shim
# runs once per container, and cgo alone cost it about 1 MiB of resident memory there
# (docs/benchmarks.md). Its seccomp check is profiles/seccomp_check.go, held to libseccomp by
# profiles/seccomp_check_test.go.
STATIC_CMDS := harden-probe containerd-shim-harden-v2
STATIC_TAGS := netgo,osusergo
# The cgo binaries are linked statically too (glibc's libc.a and libseccomp.a, as runc's
# releases are): the dynamic loader cost about 2 ms of every harden-runc invocation on this VM
# (docs/benchmarks.md). netgo and osusergo keep glibc's NSS, which cannot work statically, out.
CGO_STATIC_LDFLAGS := -linkmode=external -extldflags=-static
FUZZTIME    ?= 30s
PREFIX      ?= /usr/local

.PHONY: help build test unit integration e2e security matrix test-matrix conformance conformance-cri bench fuzz lint demo install deps clean

# containerd releases the shim is checked against in `make test` (CI);
# `make test-matrix` checks every maintained line.
MATRIX_CI  ?= v1.7.35 v2.0.14
MATRIX_ALL ?= v1.7.35 v2.0.14 v2.1.9 v2.2.9 v2.3.7

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the binaries into bin/
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS_BUILD) -tags $(STATIC_TAGS) -ldflags '$(LDFLAGS) $(CGO_STATIC_LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(filter-out $(STATIC_CMDS),$(CMDS)))
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -tags $(STATIC_TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(STATIC_CMDS))
	@for b in $(CMDS); do if ldd $(BIN)/$$b >/dev/null 2>&1; then echo "$(BIN)/$$b is dynamically linked"; exit 1; fi; done

HARDEN_SUMMARY ?= $(CURDIR)/bin/.test-summary
export HARDEN_SUMMARY

test: ## install what is needed, then run every test (what CI runs)
	@mkdir -p $(BIN) && rm -f $(HARDEN_SUMMARY)
	@$(MAKE) --no-print-directory deps lint unit integration e2e security matrix
	@awk '{p += $$1; f += $$2; s += $$3} END {printf "all suites: %d passed, %d failed, %d skipped\n", p, f, s}' $(HARDEN_SUMMARY)

unit: ## unit, golden and fuzz-seed tests (no daemons); the shim's packages also as the shim is built, without cgo
	$(GO) test -count=1 -v ./spec/... ./profiles/... ./node/... ./shim/... ./runcwrap/... ./record/... ./cmd/... ./deploy/... 2>&1 | test/summary.sh
	CGO_ENABLED=0 $(GO) test -count=1 -v ./spec/... ./profiles/... ./node/... ./shim/... ./cmd/containerd-shim-harden-v2/... 2>&1 | test/summary.sh

integration: build ## run hardened specs under real runc and crun and read what the kernel shows
	$(GO) test -count=1 -v -timeout 20m ./test/integration/... 2>&1 | test/summary.sh

e2e: build ## end-to-end suites against real containerd, Docker and Kubernetes CRI (see test/)
	@if [ -d test/e2e ]; then $(GO) test -count=1 -v -timeout 40m ./test/e2e/... 2>&1 | test/summary.sh; else echo "e2e: no suites yet"; fi

security: build ## escape and posture probe in containers: engine defaults vs harden's profiles (docs/security.md); HARDEN_UPDATE_SECURITY_TABLE=1 rewrites the tables
	$(GO) test -count=1 -v -timeout 15m ./probe/... ./test/security/... 2>&1 | test/summary.sh

matrix: build ## the shim under containerd $(MATRIX_CI) and the pinned 2.4.2 (ctr and CRI)
	test/env/matrix-deps.sh $(MATRIX_CI)
	HARDEN_MATRIX_VERSIONS="pinned $(MATRIX_CI)" $(GO) test -count=1 -v -timeout 20m ./test/matrix/... 2>&1 | test/summary.sh

test-matrix: build ## the shim under every maintained containerd: 1.7, 2.0, 2.1, 2.2, 2.3, 2.4 (builds them, cached)
	test/env/matrix-deps.sh $(MATRIX_ALL)
	HARDEN_MATRIX_VERSIONS="pinned $(MATRIX_ALL)" $(GO) test -count=1 -v -timeout 40m ./test/matrix/... 2>&1 | test/summary.sh

conformance: build ## runc's bats suite against harden-runc (audit) must pass exactly what plain runc passes (docs/conformance.md; ~25 min)
	test/conformance/bats.sh

conformance-cri: build ## critest (cri-tools) on one containerd: harden (audit) must pass exactly what runc passes; harden (enforce) listed (docs/conformance-cri.md)
	test/conformance/critest.sh

bench: deps build ## benchmarks, ~15-20 min (test/bench/all.sh; ROUNDS=, SECTIONS=...; output kept in HARDEN_CACHE/bench): decision cost, start, CRI, exec, concurrency, shim memory, scaling; docs/benchmarks.md
	GO=$(GO) test/bench/all.sh

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzApply$$' -fuzztime $(FUZZTIME) ./spec
	$(GO) test -run '^$$' -fuzz '^FuzzLoadPolicy$$' -fuzztime $(FUZZTIME) ./profiles
	$(GO) test -run '^$$' -fuzz '^FuzzParseArgs$$' -fuzztime $(FUZZTIME) ./runcwrap

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./spec/... ./profiles/... ./node/... ./shim/... ./cmd/containerd-shim-harden-v2/...

demo: deps build ## show a container's spec before and after hardening with the embedded default policy
	@test/demo.sh

install: build ## install the binaries into $(PREFIX)/bin
	install -m 0755 $(addprefix $(BIN)/,$(CMDS)) $(PREFIX)/bin/

deps: ## install packages, daemons (cached in HARDEN_CACHE) and test images
	@test/env/deps.sh

clean: ## remove build outputs (not the HARDEN_CACHE daemon builds)
	rm -rf $(BIN)
