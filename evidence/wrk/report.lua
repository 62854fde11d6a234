-- Appended to every wrk workload script: print the run's figures as one JSON line that
-- evidence/wrk.py parses (wrk's own text summary rounds and changes units).
-- Latencies are in microseconds; `status` counts responses with a status of 400 or above.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'ATLAS_WRK {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
