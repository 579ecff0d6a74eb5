// Package deploy holds what operators run xvmbot with — the Helm chart (helm/xvmbot), a
// docker-compose stack for one machine (compose), the Grafana dashboard and Prometheus
// alert rules (helm/xvmbot/files), the Slack app manifest and the documented example
// config — and the test that keeps them honest: every file parses, the chart's templates
// are well-formed, every metric the dashboard and alerts use is one the code registers,
// and every config key shown is one cmd/xvmbot accepts. It has no Go API.
package deploy
