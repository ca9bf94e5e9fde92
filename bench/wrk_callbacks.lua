-- wrk script: replay a pool of pre-signed, encrypted WeCom callbacks, each exactly once.
--
--   wrk -t T -c C -d 20s --timeout 30s -s bench/wrk_callbacks.lua URL -- POOL_FILE T [SAMPLE N]
--
-- POOL_FILE has one request per line: "<path?query> <body>" (bench/pool.py writes it). Thread k
-- of T takes lines k, k+T, k+2T, ... so no MsgId is sent twice. A thread whose share runs out
-- stops (the run is then shorter than -d, and "exhausted" says so), so the count of requests is
-- bounded by the pool as well as by -d. done() prints one line "BENCHJSON {...}" with the
-- figures, latencies in microseconds.
--
-- With SAMPLE and N, every N-th passive reply of a thread is written to the file SAMPLE.<thread>
-- (its length in bytes on a line, then the body) for the correctness check in bench/sampler.py.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local pool = {}
local cursor = 1
local filler = nil
-- wrk 4 calls request() once on thread 0 right after init() to check the request's format,
-- and never sends what it gets: give it the health check, not a pooled callback.
local verifying = false

function init(args)
   local path = args[1]
   local nthreads = tonumber(args[2])
   if args[3] ~= nil and args[4] ~= nil then
      sample_file = io.open(args[3] .. "." .. id, "wb")
      sample_every = tonumber(args[4])
   end
   local headers = { ["Content-Type"] = "text/xml; charset=utf-8" }
   local index = 0
   for line in io.lines(path) do
      if index % nthreads == id then
         local space = line:find(" ", 1, true)
         pool[#pool + 1] = wrk.format("POST", line:sub(1, space - 1), headers, line:sub(space + 1))
      end
      index = index + 1
   end
   filler = wrk.format("GET", "/healthz")
   verifying = (id == 0)
   pooled = #pool
   sent = 0
   replies = 0   -- 200 with a body (a passive reply)
   empty = 0     -- 200 with an empty body
   other = 0     -- any other status
   exhausted = 0
end

function request()
   if verifying then
      verifying = false
      return filler
   end
   if cursor > #pool then
      -- Out of distinct callbacks: stop this thread. The loop still wants a request for this
      -- turn; a health check is harmless and is not counted as a callback.
      exhausted = 1
      wrk.thread:stop()
      return filler
   end
   local req = pool[cursor]
   cursor = cursor + 1
   sent = sent + 1
   return req
end

function response(status, headers, body)
   if status == 200 then
      if body == nil or #body == 0 then
         empty = empty + 1
      else
         replies = replies + 1
         if sample_file ~= nil and replies % sample_every == 1 then
            sample_file:write(string.format("%d\n", #body), body)
            sample_file:flush()
         end
      end
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local totals = { pooled = 0, sent = 0, replies = 0, empty = 0, other = 0, exhausted = 0 }
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + (thread:get(name) or 0)
      end
   end
   local e = summary.errors
   local fields = {
      string.format('"duration_us": %d', summary.duration),
      string.format('"requests": %d', summary.requests),
      string.format('"bytes": %d', summary.bytes),
      string.format('"err_connect": %d', e.connect),
      string.format('"err_read": %d', e.read),
      string.format('"err_write": %d', e.write),
      string.format('"err_status": %d', e.status),
      string.format('"err_timeout": %d', e.timeout),
      string.format('"lat_min": %d', latency.min),
      string.format('"lat_mean": %.1f', latency.mean),
      string.format('"lat_stdev": %.1f', latency.stdev),
      string.format('"lat_p50": %d', latency:percentile(50)),
      string.format('"lat_p90": %d', latency:percentile(90)),
      string.format('"lat_p99": %d', latency:percentile(99)),
      string.format('"lat_p999": %d', latency:percentile(99.9)),
      string.format('"lat_max": %d', latency.max),
   }
   for name, value in pairs(totals) do
      fields[#fields + 1] = string.format('"%s": %d', name, value)
   end
   io.write("BENCHJSON {" .. table.concat(fields, ", ") .. "}\n")
end
