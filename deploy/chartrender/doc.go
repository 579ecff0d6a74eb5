// Package chartrender renders deploy/helm/xvmbot with Helm's own engine (helm.sh/helm/v3)
// in its tests, and loads deploy/compose/docker-compose.yaml with compose's own loader
// (github.com/compose-spec/compose-go/v2, what `docker compose config` runs). It is a module of its own so that Helm's large dependency tree stays out
// of xvmbot's go.mod and out of `go test ./...` at the root; CI runs it separately:
//
//	(cd deploy/chartrender && go test -count=1 ./...)
package chartrender
