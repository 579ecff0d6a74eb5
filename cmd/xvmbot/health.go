package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// defaultHealthURL is the ops listener as a container runs it (http.ops_listen
// 0.0.0.0:9090), asked from inside the container.
const defaultHealthURL = "http://127.0.0.1:9090/healthz"

// runHealth is `xvmbot health`: GET an ops endpoint (/healthz or /readyz) and succeed only
// on 200 OK. It is the container health check of an image that has no shell and no curl.
func runHealth(ctx context.Context, url string, timeout time.Duration, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s: %s", url, resp.Status, text)
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, text)
	return nil
}
