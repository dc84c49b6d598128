-- wrk script: spreads requests over script versions and counts statuses.
-- VERSIONS (default 8) versions of one script; PATH_PREFIX for the path.

local versions = tonumber(os.getenv("VERSIONS") or "8")
local prefix = os.getenv("PATH_PREFIX") or "/api/v2/scripts/"

-- ACTIONS="reset:10,429/ra=none:20": X-Mock-Action on that percentage of
-- the requests (the mock's fault injection), the rest plain
local actions = {}
for spec in string.gmatch(os.getenv("ACTIONS") or "", "[^,]+") do
   local a, pct = string.match(spec, "^(.*):(%d+)$")
   table.insert(actions, { a, tonumber(pct) })
end
local threads = {}
local n = 0

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   counts = {}
   n = 0
end

function request()
   n = n + 1
   local v = (n + id * 7) % versions
   local path = prefix .. "script-" .. v .. "?scriptDataVersion=1"
   local r = math.random(100)
   for _, a in ipairs(actions) do
      if r <= a[2] then
         return wrk.format("GET", path, { ["X-Mock-Action"] = a[1] })
      end
      r = r - a[2]
   end
   return wrk.format("GET", path)
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      local c = t:get("counts")
      for s, k in pairs(c) do
         total[s] = (total[s] or 0) + k
      end
   end
   local parts = {}
   for s, k in pairs(total) do
      table.insert(parts, s .. "=" .. k)
   end
   table.sort(parts)
   io.write(string.format("RESULT requests=%d duration_s=%.2f errors=%d " ..
                          "p50_ms=%.1f p99_ms=%.1f max_ms=%.1f statuses=%s\n",
                          summary.requests, summary.duration / 1e6,
                          summary.errors.connect + summary.errors.read +
                          summary.errors.write + summary.errors.timeout,
                          latency:percentile(50) / 1000,
                          latency:percentile(99) / 1000,
                          latency.max / 1000, table.concat(parts, ",")))
end
