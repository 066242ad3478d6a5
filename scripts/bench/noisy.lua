-- wrk script for scripts/bench-noisy-neighbour.sh: GET /api/v1/contacts/{id} over a list of ids
-- (env IDS="1,2,3", TOKEN), counting the answers by kind: 200, 429 (over the quota), 503
-- (tenant admission: no slot within the queue timeout), anything else, and 200s whose
-- owner_name is null (an enrichment that failed).
local ids = {}
for id in string.gmatch(os.getenv("IDS") or "1", "%d+") do ids[#ids + 1] = id end
local token = os.getenv("TOKEN") or ""
local threads = {}

function setup(thread)
  thread:set("ok", 0)
  thread:set("limited", 0)
  thread:set("busy", 0)
  thread:set("other", 0)
  thread:set("nulls", 0)
  table.insert(threads, thread)
end

function init(args)
  ok, limited, busy, other, nulls = 0, 0, 0, 0, 0
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/api/v1/contacts/" .. id, { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if string.find(body, '"owner_name":null', 1, true) then nulls = nulls + 1 end
  elseif status == 429 then
    limited = limited + 1
  elseif status == 503 then
    busy = busy + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, limited = 0, busy = 0, other = 0, nulls = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT req/s %.0f (200 %.0f/s, 429 %.0f/s, 503 %.0f/s, other %d, owner_name null %d), p50 %.2f ms, p99 %.2f ms, max %.1f ms, socket errors %d\n",
    summary.requests / secs, t.ok / secs, t.limited / secs, t.busy / secs, t.other, t.nulls,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
