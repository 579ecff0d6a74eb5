package main

// The release image has no CA bundle (cmd/xvmrelease builds it on an empty base), yet the bot
// must reach Slack over TLS. This embeds Mozilla's roots as Go's fallback: crypto/x509 uses
// them only when the system has no roots of its own, so a host's or a mounted bundle
// (SSL_CERT_FILE, /etc/ssl/certs) still wins. https://pkg.go.dev/crypto/x509#SetFallbackRoots
import _ "golang.org/x/crypto/x509roots/fallback"
