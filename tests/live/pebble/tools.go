//go:build tools

// Package tools pins the Pebble command for `go build`; it holds no code of its own.
package tools

import _ "github.com/canonical/pebble/cmd/pebble"
