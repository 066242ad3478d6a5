-- wrk script: GET /api/v1/contacts/{id} over a list of ids (env IDS="1,2,3", TOKEN), and
-- counts responses that are not 200 or whose owner_name is null (an enrichment that failed).
local ids = {}
for id in string.gmatch(os.getenv("IDS") or "1", "%d+") do ids[#ids + 1] = id end
local token = os.getenv("TOKEN") or ""
local threads = {}

function setup(thread)
  thread:set("bad", 0)
  thread:set("nulls", 0)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  nulls = 0
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/api/v1/contacts/" .. id, { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  elseif string.find(body, '"owner_name":null', 1, true) then
    nulls = nulls + 1
  end
end

function done(summary, latency, requests)
  local b, n = 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    n = n + t:get("nulls")
  end
  io.write(string.format("RESULT requests %d, req/s %.0f, non-200 %d, owner_name null %d, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.1f ms\n",
    summary.requests, summary.requests / (summary.duration / 1e6), b, n, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
