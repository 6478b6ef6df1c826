-- Mark callbacks as seen, enqueue them for Dramatiq and add them to the delivery ledger, one step per
-- callback, several callbacks per call (the receiver groups the callbacks that arrive while its previous
-- write is in flight). The enqueue writes exactly what Dramatiq's RedisBroker writes for "enqueue"
-- (dramatiq/brokers/redis/dispatch.lua, 2.2.x): HSET <ns>:<queue>.msgs id payload; RPUSH <ns>:<queue> id.
--
-- Redis runs a script without interruption but does not roll back the writes made before a command that
-- fails (a key of the wrong type, out of memory). So the dedup mark is written last: whatever fails, a
-- callback is never marked as seen without its message and its ledger entry, and the receiver answers 503
-- for the whole call, so BigCommerce retries. (A message written without its mark is processed once
-- more when the retry arrives; processing is idempotent per event.)
--
-- The callbacks come framed in one argument, because the client's cost grows with the number of
-- arguments, not with their size. Like Dramatiq's own script, this one writes keys it is not given in
-- KEYS, so it needs a single Redis server (no Cluster), as Dramatiq does.
--
-- In app mode a callback also names its store, and is refused unless the store is in the set of installed
-- stores (service/stores.py): the check costs one SISMEMBER inside the call the receiver makes anyway.
--
-- KEYS[1] the ledger (zset: ledger id -> lease deadline ms), KEYS[2] the ledger's messages (hash),
-- KEYS[3] the installed stores (set).
-- ARGV[1] dedup TTL in seconds.
-- ARGV[2] for each callback five fields, each written "<decimal length>:<bytes>":
--         dedup mark key (its suffix after the last ":" is the ledger id), queue key (<ns>:<queue>),
--         redis message id, encoded message, store hash to check ("" in single-store mode: no check).
-- ARGV[3] the lease deadline (ms) of the new ledger entries.
-- ARGV[4] a probe key, or "": when the receiver follows this call with WAIT (acknowledge only what
--         replicas confirmed), a call that enqueued nothing increments it. WAIT counts the writes of its
--         own connection, and a duplicate's first write may have come from another connection (another
--         receiver) and not have reached the replicas yet; this write, made after it, makes WAIT cover it.
-- Returns a string with one character per callback, in order: "1" enqueued, "0" already seen,
-- "2" refused (its store does not have the app installed; nothing written).
local ttl, batch, deadline, probe = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local position, outcomes, enqueued = 1, {}, false

local function next_field()
    local colon = string.find(batch, ":", position, true)
    local length = tonumber(string.sub(batch, position, colon - 1))
    local value = string.sub(batch, colon + 1, colon + length)
    position = colon + length + 1
    return value
end

while position <= #batch do
    local dedup, queue, id, payload, store = next_field(), next_field(), next_field(), next_field(), next_field()
    if store ~= "" and redis.call("sismember", KEYS[3], store) == 0 then
        outcomes[#outcomes + 1] = "2"
    elseif redis.call("exists", dedup) == 0 then
        local ledger_id = string.match(dedup, "[^:]+$")
        redis.call("hset", queue .. ".msgs", id, payload)
        redis.call("rpush", queue, id)
        redis.call("hset", KEYS[2], ledger_id, payload)
        redis.call("zadd", KEYS[1], deadline, ledger_id)
        redis.call("set", dedup, id, "EX", ttl)
        outcomes[#outcomes + 1] = "1"
        enqueued = true
    else
        outcomes[#outcomes + 1] = "0"
    end
end
if probe ~= nil and probe ~= "" and not enqueued then
    redis.call("incr", probe)
end
return table.concat(outcomes)
