-- wrk posts pre-signed Stripe deliveries, each once (benchmarks/wrk.py runs it):
--   wrk -t T -c C -d D -s benchmarks/wrk_webhooks.lua URL -- REQUESTS_FILE T
-- REQUESTS_FILE has one delivery a line, "Stripe-Signature<TAB>body". Thread i of T takes
-- lines i+1, i+1+T, ...: disjoint shares, so no event is sent twice. A thread whose share
-- is answered says "exhausted" on stderr and stops; its idle connections send nothing.
-- done() prints one line, "WRK_JSON {...}": counts, wrk's errors, latency in microseconds.

threads = {}

function setup(thread)
   thread:set("index", #threads)
   -- wrk 4.1.0 calls thread 0's request() once before any connection opens, to check
   -- what it returns (script_verify_request); that call must not use up a delivery.
   thread:set("checking", #threads == 0)
   threads[#threads + 1] = thread
end

function init(args)
   local stride = tonumber(args[2])
   mine, sent, answered, accepted, duplicate, failed = {}, 0, 0, 0, 0, 0
   local k = 0
   for line in io.lines(args[1]) do
      if k % stride == index then
         local signature, body = line:match("^([^\t]*)\t(.*)$")
         local headers = { ["Content-Type"] = "application/json", ["Stripe-Signature"] = signature }
         mine[#mine + 1] = wrk.format("POST", wrk.path, headers, body)
      end
      k = k + 1
   end
end

function request()
   if checking then
      checking = false
      return wrk.format("GET", "/healthz")
   end
   if sent == #mine then
      return "" -- nothing left: the connection writes nothing and waits for the stop
   end
   sent = sent + 1
   return mine[sent]
end

function response(status, headers, body)
   answered = answered + 1
   if status == 200 and body:find('"outcome":"accepted"', 1, true) then
      accepted = accepted + 1
   elseif status == 200 and body:find('"outcome":"duplicate"', 1, true) then
      duplicate = duplicate + 1
   else
      failed = failed + 1
   end
   if answered == #mine then
      io.stderr:write("exhausted\n")
      wrk.thread:stop()
   end
end

local function total(name)
   local sum = 0
   for _, thread in ipairs(threads) do
      sum = sum + thread:get(name)
   end
   return sum
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"duration_us": %d, "requests": %d, "sent": %d, "accepted": %d,'
         .. ' "duplicate": %d, "failed": %d, "connect": %d, "read": %d, "write": %d,'
         .. ' "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.duration, summary.requests, total("sent"), total("accepted"), total("duplicate"),
      total("failed"), e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max
   ))
end
