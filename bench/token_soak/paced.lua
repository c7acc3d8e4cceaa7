-- wrk script: the token bench's replay-free load (../token_bench/signed.lua), paced.
--
--   SOAK_DELAY_MS=20 wrk -t1 -c8 -d30s -s paced.lua http://127.0.0.1:18775 -- /tmp/reqs.bin 1
--
-- Each connection waits SOAK_DELAY_MS after a response before sending its next request, so
-- the rate is about connections / (delay + latency); soak.py adjusts the delay between
-- segments to hold its target rate.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "../token_bench/signed.lua")

local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "0")

function delay()
   return delay_ms
end
