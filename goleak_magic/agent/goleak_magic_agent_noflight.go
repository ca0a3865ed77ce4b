//go:build !go1.25

// Part of the goleak_magic agent (see goleak_magic_agent.go): Go before 1.25 has no
// flight recorder; the client says so and streams the trace instead.

package main

import (
	goleakMagicNet "net"
	goleakMagicRuntime "runtime"
)

func goleakMagicAgentFlightHandle(conn *goleakMagicNet.UnixConn, sub, query string) {
	goleakMagicAgentReply(conn, 501, "text/plain", nil,
		[]byte("the flight recorder needs Go 1.25 or newer; this program runs "+goleakMagicRuntime.Version()+"\n"))
}
