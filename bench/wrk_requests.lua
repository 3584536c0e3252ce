-- wrk script for bench/control_plane.py: replays pre-signed SNS requests from a file.
--
--   wrk -t2 -c32 -d10s --latency -s bench/wrk_requests.lua http://127.0.0.1:PORT/ -- FILE THREADS
--
-- FILE holds complete HTTP/1.1 requests (request line, headers, body), each preceded by a
-- line with its length in bytes. Thread k of THREADS takes records k, k+THREADS, k+2*THREADS...
-- so no two threads (and, as a thread's connections share one counter, no two connections)
-- send the same request. A thread that runs out starts over and counts a wrap; the driver
-- treats a wrap as a failed run, because a replayed CreatePlatformEndpoint inserts nothing.
--
-- Every response goes through response(), which counts 200s and everything else; done()
-- prints one line "BENCH_JSON {...}" with those counts and wrk's own figures.

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    local path = args[1]
    local nthreads = tonumber(args[2])
    requests = {}
    local f = assert(io.open(path, "rb"))
    local i = 0
    while true do
        local header = f:read("*l")
        if not header then
            break
        end
        local data = f:read(tonumber(header))
        if i % nthreads == tid then
            requests[#requests + 1] = data
        end
        i = i + 1
    end
    f:close()
    index = 0
    calls = 0
    wraps = 0
    ok = 0
    non200 = 0
    first_error = ""
end

function request()
    index = index + 1
    calls = calls + 1
    if index > #requests then
        index = 1
        wraps = wraps + 1
    end
    return requests[index]
end

function response(status, headers, body)
    if status == 200 then
        ok = ok + 1
    else
        non200 = non200 + 1
        if first_error == "" then
            first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
        end
    end
end

local function json_string(s)
    s = string.gsub(s, '[%c"\\]', function(c)
        return string.format("\\u%04x", string.byte(c))
    end)
    return '"' .. s .. '"'
end

function done(summary, latency, requests)
    local total_ok, total_non200, total_calls, total_wraps, loaded = 0, 0, 0, 0, 0
    local first = ""
    for _, t in ipairs(threads) do
        total_ok = total_ok + t:get("ok")
        total_non200 = total_non200 + t:get("non200")
        total_calls = total_calls + t:get("calls")
        total_wraps = total_wraps + t:get("wraps")
        if first == "" then
            first = t:get("first_error")
        end
    end
    local e = summary.errors
    io.write(string.format(
        'BENCH_JSON {"duration_us": %d, "requests": %d, "ok": %d, "non200": %d, ' ..
        '"request_calls": %d, "wraps": %d, "connect_errors": %d, "read_errors": %d, ' ..
        '"write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
        '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
        '"first_error": %s}\n',
        summary.duration, summary.requests, total_ok, total_non200, total_calls, total_wraps,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean, json_string(first)))
end
