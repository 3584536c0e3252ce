-- wrk script for bench/registrations.py: wrk_requests.lua, with 201 Created as a success.
--
--   wrk -t2 -c32 -d15s --latency -s bench/wrk_registrations.lua http://127.0.0.1:PORT/ -- FILE THREADS
--
-- POST /v1/registrations answers 201 when it created the endpoint and 200 when it updated
-- one. This script loads wrk_requests.lua (same file format, same split of the records
-- between threads, same BENCH_JSON line) and changes only the counting: 200 and 201 both
-- count as "ok" and every other status as "non200"; after the BENCH_JSON line, done()
-- prints "BENCH_CREATED <n>", the number of 201 answers.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk_requests.lua")

local threads = {}
local base_setup, base_init, base_done = setup, init, done

function setup(thread)
    base_setup(thread)
    table.insert(threads, thread)
end

function init(args)
    base_init(args)
    created = 0
end

function response(status, headers, body)
    if status == 200 or status == 201 then
        ok = ok + 1
        if status == 201 then
            created = created + 1
        end
    else
        non200 = non200 + 1
        if first_error == "" then
            first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
        end
    end
end

function done(summary, latency, requests)
    base_done(summary, latency, requests)
    local total = 0
    for _, t in ipairs(threads) do
        total = total + t:get("created")
    end
    io.write(string.format("BENCH_CREATED %d\n", total))
end
