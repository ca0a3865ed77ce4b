package main

// A user file that happens to have the agent's file name: the overlay must not shadow it.
func clashAgentNamed() string { return "user file kept" }
