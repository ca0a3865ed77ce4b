"""Goroutine dumps into the ``goroutines`` table, one home per job.

| module | job |
| --- | --- |
| ``model`` | what a parse yields: ``Header``, ``Stack``, ``to_frame`` |
| ``filters`` | which goroutines are the agent's, the runtime's, the testing harness's |
| ``text`` | the ``goroutine?debug=2`` text (what a panic prints), streamed |
| ``leakprofile`` | the ``goroutineleak?debug=1`` profile |
| ``delve`` | Delve's typed goroutine list, as the same columns |
| ``dumpfile`` | every dump in any text (CI log, crash file, test output), streamed |
"""
