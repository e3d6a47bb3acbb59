-- wrk script for webhook_accept.py: POST pre-made signed LINE webhook bodies to /callback.
--
-- wrk -t1 -c32 -d8s -s wrk_webhooks.lua http://127.0.0.1:PORT/callback -- BODIES START THREADS
--
-- BODIES: one "signature<TAB>body" a line (webhook_accept.write_bodies); each thread sends
-- line START + tid, START + tid + THREADS, ... so no body is sent twice while the file lasts
-- (every body carries its own webhookEventId: a repeat would only be a duplicate to the bot).
-- At the end one machine-readable line "WRK key=value ..." sums the run up.

local created = 0

function setup(thread)
  thread:set("tid", created)
  created = created + 1
end

local sigs, bodies = {}, {}
local n, i, step = 0, 0, 1
local headers = {}

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    n = n + 1
    sigs[n] = line:sub(1, tab - 1)
    bodies[n] = line:sub(tab + 1)
  end
  step = tonumber(args[3] or "1")
  i = tonumber(args[2] or "0") + (tid or 0)
  headers["Content-Type"] = "application/json; charset=utf-8"
  headers["User-Agent"] = "LineBotWebhook/2.0"
end

function request()
  local k = i % n + 1
  i = i + step
  headers["X-Line-Signature"] = sigs[k]
  return wrk.format("POST", nil, headers, bodies[k])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
