package main

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The SBOM is CycloneDX 1.5 JSON (https://cyclonedx.org/docs/1.5/json/), written from what
// the binary itself records of its build (debug/buildinfo): every module linked into it with
// its version and go.sum hash, the Go toolchain (the standard library is a component too:
// vulnerability scanners match it), and the build settings. Only the fields used are declared.

// BOM is a CycloneDX document.
type BOM struct {
	BOMFormat    string       `json:"bomFormat"`
	SpecVersion  string       `json:"specVersion"`
	SerialNumber string       `json:"serialNumber"`
	Version      int          `json:"version"`
	Metadata     BOMMetadata  `json:"metadata"`
	Components   []Component  `json:"components"`
	Dependencies []Dependency `json:"dependencies"`
}

// BOMMetadata says what the BOM describes and what wrote it.
type BOMMetadata struct {
	Timestamp string      `json:"timestamp"`
	Tools     BOMTools    `json:"tools"`
	Component Component   `json:"component"`
	Lifecycle []Lifecycle `json:"lifecycles,omitempty"`
}

// BOMTools are the tools that wrote the BOM.
type BOMTools struct {
	Components []Component `json:"components"`
}

// Lifecycle is the phase the BOM was made in.
type Lifecycle struct {
	Phase string `json:"phase"`
}

// Component is the binary (metadata.component) or one module linked into it.
type Component struct {
	BOMRef     string     `json:"bom-ref,omitempty"`
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	Version    string     `json:"version,omitempty"`
	PURL       string     `json:"purl,omitempty"`
	Hashes     []Hash     `json:"hashes,omitempty"`
	Properties []Property `json:"properties,omitempty"`
}

// Hash is a component's digest.
type Hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

// Property is a name/value pair CycloneDX does not model.
type Property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Dependency says which components one depends on.
type Dependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn,omitempty"`
}

// goPURL is a Go module's package URL (https://github.com/package-url/purl-spec, type golang).
func goPURL(path, version string) string {
	return "pkg:golang/" + path + "@" + version + "?type=module"
}

// NewSBOM reads the build information of the binary at path and returns its SBOM as JSON. The
// binary's main module is given version (the build info of a -buildvcs=false build says
// "(devel)"); t is the BOM's timestamp (the commit's, so the same build writes the same BOM).
func NewSBOM(path, version string, t time.Time) ([]byte, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the build information of %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	settings := map[string]string{}
	var props []Property
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
		props = append(props, Property{Name: "go:build:" + s.Key, Value: s.Value})
	}
	main := Component{
		Type: "application", Name: "xvmbot", Version: version,
		PURL:       goPURL(info.Main.Path, "v"+version) + "&goos=" + settings["GOOS"] + "&goarch=" + settings["GOARCH"],
		Hashes:     []Hash{{Alg: "SHA-256", Content: hex.EncodeToString(sum[:])}},
		Properties: append([]Property{{Name: "go:module", Value: info.Main.Path}, {Name: "go:package", Value: info.Path}, {Name: "go:version", Value: info.GoVersion}}, props...),
	}
	main.BOMRef = main.PURL
	std := strings.TrimPrefix(info.GoVersion, "go")
	if i := strings.IndexAny(std, " -+"); i >= 0 { // e.g. go1.26.8 X:nocoverageredesign
		std = std[:i]
	}
	comps := []Component{{Type: "library", Name: "std", Version: "v" + std, PURL: goPURL("std", "v"+std),
		Properties: []Property{{Name: "go:toolchain", Value: info.GoVersion}}}}
	for _, d := range info.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		c := Component{Type: "library", Name: m.Path, Version: m.Version, PURL: goPURL(m.Path, m.Version)}
		if m.Sum != "" {
			c.Properties = append(c.Properties, Property{Name: "go:module:sum", Value: m.Sum})
		}
		if d.Replace != nil {
			c.Properties = append(c.Properties, Property{Name: "go:module:replaces", Value: d.Path + "@" + d.Version})
		}
		comps = append(comps, c)
	}
	var refs []string
	for i := range comps {
		comps[i].BOMRef = comps[i].PURL
		refs = append(refs, comps[i].BOMRef)
	}
	bom := BOM{
		BOMFormat: "CycloneDX", SpecVersion: "1.5", Version: 1,
		// The same binary gets the same serial number: the BOM is reproducible with it.
		SerialNumber: "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte(main.PURL+"#"+main.Hashes[0].Content)).String(),
		Metadata: BOMMetadata{
			Timestamp: t.UTC().Format(time.RFC3339),
			Tools:     BOMTools{Components: []Component{{Type: "application", Name: "xvmrelease", Version: version, PURL: goPURL(info.Main.Path+"/cmd/xvmrelease", "v"+version)}}},
			Component: main,
			Lifecycle: []Lifecycle{{Phase: "build"}},
		},
		Components:   comps,
		Dependencies: []Dependency{{Ref: main.BOMRef, DependsOn: refs}},
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // purls hold '&'
	enc.SetIndent("", "  ")
	if err := enc.Encode(bom); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
