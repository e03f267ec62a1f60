// Builds the Pebble daemon the live tier runs the charm's layer under:
// `go build -o <bin> github.com/canonical/pebble/cmd/pebble` in this folder.
// v1.19.2 is the oldest Pebble that Juju 3.6 ships (later 3.6 releases ship v1.26.0;
// TRINO_LIVE_PEBBLE=v1.26.0 builds that one from the module proxy instead).
module trinok8slive/pebble

go 1.22

require github.com/canonical/pebble v1.19.2
