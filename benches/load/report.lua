-- wrk script for benches/load.sh: one machine-readable line at the end of a run, and an
-- absolute-form mode for the forward proxy (ABS_URL=http://127.0.0.1:PORT/path).
function init(args)
   local abs = os.getenv("ABS_URL")
   if abs and abs ~= "" then
      wrk.path = abs
      wrk.headers["Host"] = abs:match("^http://([^/]+)")
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format("RESULT rps=%.0f p50_us=%d p99_us=%d errors=%d\n",
      summary.requests / secs, latency:percentile(50), latency:percentile(99),
      e.connect + e.read + e.write + e.status + e.timeout))
end
