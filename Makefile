# The targets CI runs (.ci/run) plus conveniences.
GO ?= go
# The tag of a tagged commit; elsewhere empty, and the binary says system.ReleaseVersion-dev.
VERSION ?= $(shell git describe --tags --exact-match 2>/dev/null | sed 's/^v//')
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE ?= $(shell git log -1 --format=%cI 2>/dev/null)
TREE_STATE ?= $(shell test -z "$$(git status --porcelain 2>/dev/null)" && echo clean || echo dirty)
LDFLAGS = -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE) -X main.treeState=$(TREE_STATE)
# STATICCHECK is the one pinned staticcheck version; .ci/run reads it from this line.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# PROMTOOL is the one pinned promtool (the module version of Prometheus 3.16.0); .ci/run reads
# it from this line. Built with remove_all_sd: checking and testing rules needs none of
# Prometheus's service discoveries, whose cloud SDKs are most of promtool's build time.
PROMTOOL ?= github.com/prometheus/prometheus/cmd/promtool@v0.316.0

.PHONY: all fmt vet lint test build cross release-snapshot release demo bench fuzz rules-test
all: fmt vet test build

fmt:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

vet:
	$(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...

test:
	$(GO) test -race -count=1 -timeout 30m ./...

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o xvmbot ./cmd/xvmbot

# The release build (cmd/xvmrelease, docs/release.md), offline and without Docker: binaries,
# archives and SBOMs for linux/amd64 and linux/arm64, the multi-arch OCI image and checksums,
# in dist/, then the check CI runs on them. A snapshot builds any tree as
# <system.ReleaseVersion>-SNAPSHOT-<commit>; a release needs a clean tree on its tag.
release-snapshot:
	$(GO) run ./cmd/xvmrelease -snapshot -out dist
	$(GO) run ./cmd/xvmrelease -verify dist

release:
	$(GO) run ./cmd/xvmrelease -out dist
	$(GO) run ./cmd/xvmrelease -verify dist

# Both architectures' binaries: the release build's.
cross: release-snapshot

demo:
	$(GO) run ./cmd/xvmbot demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test ./bot -run '^$$' -fuzz FuzzParseCommand -fuzztime 30s

# Alert rules: lint and unit tests (deploy/rules-test/), with promtool built from the module proxy.
rules-test:
	cd deploy && $(GO) run -tags remove_all_sd $(PROMTOOL) check rules --lint=all helm/xvmbot/files/xvmbot-rules.yaml && \
		$(GO) run -tags remove_all_sd $(PROMTOOL) test rules rules-test/*.yaml
