"""Atlas's evidence suites: `make bench`, `make faults` and `make fuzz`.

Everything here runs against real processes on 127.0.0.1 only (a throwaway PostgreSQL server, the
services under their server, wrk, pgbench, schemathesis); every loop is bounded in time and count.
"""
