package config

import "net"

// HTTPConfig is where xvmbot listens: Slack's requests on one address, the operator's
// metrics and probes on another, so that the one exposed to Slack serves nothing else
// and the other can stay on loopback or inside the cluster.
type HTTPConfig struct {
	// Listen serves /slack/commands, /slack/interactions and /slack/options; it is
	// opened only by a process that runs the bot in http mode.
	Listen string `yaml:"listen"`
	// OpsListen serves /metrics, /healthz and /readyz, in every process. Default
	// 127.0.0.1:9090: loopback, so nothing outside the host reads them unless asked.
	OpsListen string `yaml:"ops_listen"`
}

// DefaultHTTPConfig is the http section's default: both listeners on loopback.
var DefaultHTTPConfig = HTTPConfig{Listen: "127.0.0.1:8080", OpsListen: "127.0.0.1:9090"}

// UnmarshalYAML starts from DefaultHTTPConfig.
func (h *HTTPConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*h = DefaultHTTPConfig
	type plain HTTPConfig
	return unmarshal((*plain)(h))
}

// validate checks both addresses and that they differ: the Slack listener must not
// also serve metrics and probes, which is what sharing an address would ask for.
func (h HTTPConfig) validate() error {
	var p problems
	lhost, lport, lerr := net.SplitHostPort(h.Listen)
	if lerr != nil {
		p.add("http.listen %q: %v", h.Listen, lerr)
	}
	ohost, oport, oerr := net.SplitHostPort(h.OpsListen)
	if oerr != nil {
		p.add("http.ops_listen %q: %v (it serves /metrics, /healthz and /readyz; default 127.0.0.1:9090)", h.OpsListen, oerr)
	}
	if lerr != nil || oerr != nil || lport != oport || lport == "0" {
		return p.err()
	}
	wildcard := func(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }
	if lhost == ohost || wildcard(lhost) || wildcard(ohost) {
		p.add("http.ops_listen %q and http.listen %q are the same address: /metrics, /healthz and /readyz have their "+
			"own listener, apart from Slack's endpoints; give ops_listen another port (default 127.0.0.1:9090)", h.OpsListen, h.Listen)
	}
	return p.err()
}
