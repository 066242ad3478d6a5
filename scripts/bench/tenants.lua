-- wrk script of scripts/bench-tenants.sh: GET /api/v1/contacts/{id} with the token of a tenant
-- read from TOKENS (lines "<jwt> <contact id>"). MODE: hot (always the first tenant), random
-- (a random tenant per request), cycle (each thread walks through every tenant in turn, the
-- threads starting at different places). Counts answers that are not 200.
local tenants = {}
for line in io.lines(os.getenv("TOKENS")) do
  local token, id = line:match("^(%S+)%s+(%d+)")
  if token then tenants[#tenants + 1] = { token = token, id = id } end
end
local mode = os.getenv("MODE") or "random"
local threads = {}
local counter = 0

function setup(thread)
  thread:set("bad", 0)
  thread:set("start", #threads * math.floor(#tenants / 2))
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  counter = start or 0
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local t
  if mode == "hot" then
    t = tenants[1]
  elseif mode == "cycle" then
    t = tenants[(counter % #tenants) + 1]
    counter = counter + 1
  else
    t = tenants[math.random(#tenants)]
  end
  return wrk.format("GET", "/api/v1/contacts/" .. t.id, { ["Authorization"] = "Bearer " .. t.token })
end

function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("RESULT %d requests, %.0f req/s, non-200 %d, p50 %.2f ms, p99 %.2f ms, max %.1f ms\n",
    summary.requests, summary.requests / (summary.duration / 1e6), b, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
