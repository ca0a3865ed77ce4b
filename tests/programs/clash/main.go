// clash: a main package that uses, for its own identifiers, every name the agent's
// imports would take if they were not aliased, has its own init, and already holds a
// file with the agent's file name. Building it with the agent must still work.
package main

import "fmt"

var (
	context = "mine"
	io      = 1
	log     = []string{"mine"}
	net     = 2.0
	http    = struct{ x int }{3}
	os      = map[string]int{"a": 1}
	pprof   = 'p'
	strconv = true
	sync    = 4
	time    = 5
	runtime = 6
)

var initialised bool

func init() { initialised = true }

func main() {
	fmt.Println("clash", context, io, log, net, http, os, pprof, strconv, sync, time, runtime,
		initialised, clashAgentNamed())
	select {}
}
