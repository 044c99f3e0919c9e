-- wrk script: POST the README's order (or, with "seed", the seed's shape: product, quantity, price), with a
-- unique user_id per request (and a unique order_id when asked), and print the run's figures as one JSON
-- line.  wrk ... -s post.lua URL -- <tag> <with_order_id> [seed]
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = {}
local counter = 0
local tag = "w"
local with_order_id = false

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local template = '{"user_id":"%s",%s"user_email":"ada@example.com","order_details":{"items":[' ..
  '{"product":"Oak chair","quantity":4,"unit_price":"89.90"},' ..
  '{"product":"Dining table","quantity":1,"unit_price":"449.00"}]},' ..
  '"payment":{"card_number":"4111 1111 1111 1111","expiry":"12/29"}}'

local seed = '{"user_id":"%s",%s"user_email":"ada@example.com",' ..
  '"order_details":{"product":"Oak chair","quantity":1,"price":100}}'

function init(args)
  tag = args[1] or "w"
  with_order_id = args[2] == "1"
  if args[3] == "seed" then template = seed end
end

request = function()
  counter = counter + 1
  local key = string.format("%s-%d-%d", tag, id, counter)
  local oid = ""
  if with_order_id then oid = string.format('"order_id":"%s",', key) end
  return wrk.format(nil, nil, nil, string.format(template, key, oid))
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect_err":%d,"read_err":%d,' ..
    '"write_err":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
