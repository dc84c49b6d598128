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
-- BODIES=malformed:50 (or longkey:N): that percentage of the requests are
-- POSTs to .../export with a hostile JSON body, taken in turn from the list
local body_kind, body_pct = string.match(os.getenv("BODIES") or "", "^(%a+):(%d+)$")
body_pct = tonumber(body_pct or "0")
local bodies = {
   malformed = {
      '{"versionId": "v1',                                -- truncated
      '{"versionId": "v\255\254"}',                       -- not UTF-8
      string.rep("[", 10000),                             -- 10000 deep, open
      string.rep('{"a":', 10000) .. "1" .. string.rep("}", 10000),
      '{"versionId": 1e999999}',                          -- huge number
      '{"versionId": "v1"}',                              -- and a good one
   },
   longkey = { '{"versionId": "' .. string.rep("v", 1100) .. '"}' },
}
-- ASYNC=20: that percentage of the requests ask for an async job
-- (Prefer: respond-async) and get 202 at once
local async_pct = tonumber(os.getenv("ASYNC") or "0")
-- RANDOM_VERSIONS=90: that percentage of the requests go to a version never
-- seen before (a flood of keys), the rest to the VERSIONS regular ones
local random_pct = tonumber(os.getenv("RANDOM_VERSIONS") or "0")
local threads = {}
local n = 0

-- NODES="127.0.0.1:19801,127.0.0.1:19803": wrk's threads go to these
-- servers in turn (thread i to node i modulo their number), not to the URL's
local nodes = {}
for spec in string.gmatch(os.getenv("NODES") or "", "[^,]+") do
   table.insert(nodes, spec)
end

function setup(thread)
   thread:set("id", #threads)
   if #nodes > 0 then
      local host, port = string.match(nodes[#threads % #nodes + 1], "^(.*):(%d+)$")
      thread.addr = wrk.lookup(host, port)[1]
   end
   table.insert(threads, thread)
end

function init(args)
   counts = {}
   injected = 0
   n = 0
end

function request()
   n = n + 1
   local v = (n + id * 7) % versions
   local path = prefix .. "script-" .. v .. "?scriptDataVersion=1"
   if random_pct > 0 and math.random(100) <= random_pct then
      injected = injected + 1
      return wrk.format("GET", prefix .. "script-r" .. id .. "-" .. n .. "-" ..
                        math.random(1000000000) .. "?scriptDataVersion=1")
   end
   if body_pct > 0 and math.random(100) <= body_pct then
      local list = bodies[body_kind]
      injected = injected + 1
      return wrk.format("POST", prefix .. "script-" .. v .. "/export?scriptDataVersion=1",
                        { ["Content-Type"] = "application/json" },
                        list[n % #list + 1])
   end
   local prefer = nil
   if async_pct > 0 and math.random(100) <= async_pct then
      injected = injected + 1
      prefer = "respond-async"
   end
   local r = math.random(100)
   for _, a in ipairs(actions) do
      if r <= a[2] then
         if not prefer then
            injected = injected + 1
         end
         return wrk.format("GET", path, { ["X-Mock-Action"] = a[1],
                                          ["Prefer"] = prefer })
      end
      r = r - a[2]
   end
   return wrk.format("GET", path, { ["Prefer"] = prefer })
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   local inj = 0
   for _, t in ipairs(threads) do
      inj = inj + t:get("injected")
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
                          "p50_ms=%.1f p99_ms=%.1f max_ms=%.1f statuses=%s " ..
                          "injected=%d\n",
                          summary.requests, summary.duration / 1e6,
                          summary.errors.connect + summary.errors.read +
                          summary.errors.write + summary.errors.timeout,
                          latency:percentile(50) / 1000,
                          latency:percentile(99) / 1000,
                          latency.max / 1000, table.concat(parts, ","), inj))
end
