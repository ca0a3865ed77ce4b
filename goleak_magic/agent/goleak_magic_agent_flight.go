//go:build go1.25

// Part of the goleak_magic agent (see goleak_magic_agent.go): the flight recorder, which
// keeps the last few seconds of execution trace in memory until it is frozen.
//
//	/goleak/flight/start?min_age=S&max_bytes=B   start one (409 if one runs)
//	/goleak/flight/freeze                        the recorded window, as a trace
//	/goleak/flight/stop                          stop it

package main

import (
	goleakMagicNet "net"
	goleakMagicTrace "runtime/trace"
	goleakMagicStrconv "strconv"
	goleakMagicTime "time"
)

var goleakMagicAgentFlight *goleakMagicTrace.FlightRecorder

func goleakMagicAgentFlightHandle(conn *goleakMagicNet.UnixConn, sub, query string) {
	fr := goleakMagicAgentFlight
	switch sub {
	case "/start":
		if fr != nil {
			goleakMagicAgentReply(conn, 409, "text/plain", nil, []byte("a flight recorder is already running\n"))
			return
		}
		age, _ := goleakMagicStrconv.ParseFloat(goleakMagicAgentParam(query, "min_age"), 64)
		size, _ := goleakMagicStrconv.ParseUint(goleakMagicAgentParam(query, "max_bytes"), 10, 64)
		fr = goleakMagicTrace.NewFlightRecorder(goleakMagicTrace.FlightRecorderConfig{
			MinAge:   goleakMagicTime.Duration(age * float64(goleakMagicTime.Second)),
			MaxBytes: size,
		})
		if err := fr.Start(); err != nil {
			goleakMagicAgentReply(conn, 409, "text/plain", nil, []byte(err.Error()+"\n"))
			return
		}
		goleakMagicAgentFlight = fr
		goleakMagicAgentReply(conn, 200, "application/json", nil, []byte("{\"running\":true}\n"))
	case "/freeze":
		if fr == nil {
			goleakMagicAgentReply(conn, 409, "text/plain", nil, []byte("no flight recorder is running; start one first\n"))
			return
		}
		conn.Write([]byte(goleakMagicAgentStreamHead))
		fr.WriteTo(conn)
	case "/stop":
		if fr != nil {
			fr.Stop()
			goleakMagicAgentFlight = nil
		}
		goleakMagicAgentReply(conn, 200, "application/json", nil, []byte("{\"running\":false}\n"))
	default:
		goleakMagicAgentReply(conn, 404, "text/plain", nil, []byte("not found\n"))
	}
}
