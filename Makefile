# The targets CI runs (.ci/run) plus conveniences.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# STATICCHECK is the one pinned staticcheck version; .ci/run reads it from this line.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# PROMTOOL is the one pinned promtool (the module version of Prometheus 3.16.0); .ci/run reads
# it from this line. Built with remove_all_sd: checking and testing rules needs none of
# Prometheus's service discoveries, whose cloud SDKs are most of promtool's build time.
PROMTOOL ?= github.com/prometheus/prometheus/cmd/promtool@v0.316.0

.PHONY: all fmt vet lint test build demo bench fuzz rules-test
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
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o xvmbot ./cmd/xvmbot

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
