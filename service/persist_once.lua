-- Mark callbacks as seen and enqueue them for Dramatiq, one atomic step per callback, several callbacks
-- per call (the receiver groups the callbacks that arrive while its previous write is in flight).
-- For each callback either both writes happen or neither does, so a failed enqueue can never leave a
-- dedup mark behind that would drop BigCommerce's retry. The enqueue writes exactly what Dramatiq's
-- RedisBroker writes for "enqueue" (dramatiq/brokers/redis/dispatch.lua, 2.2.x):
-- HSET <ns>:<queue>.msgs id payload; RPUSH <ns>:<queue> id.
--
-- The callbacks come framed in one argument, because the client's cost grows with the number of
-- arguments, not with their size. Like Dramatiq's own script, this one writes keys it is not given in
-- KEYS, so it needs a single Redis server (no Cluster), as Dramatiq does.
--
-- ARGV[1] dedup TTL in seconds.
-- ARGV[2] for each callback four fields, each written "<decimal length>:<bytes>":
--         dedup mark key, queue key (<ns>:<queue>), redis message id, encoded message.
-- Returns a string with one character per callback, in order: "1" enqueued, "0" already seen.
local ttl, batch = ARGV[1], ARGV[2]
local position, outcomes = 1, {}

local function next_field()
    local colon = string.find(batch, ":", position, true)
    local length = tonumber(string.sub(batch, position, colon - 1))
    local value = string.sub(batch, colon + 1, colon + length)
    position = colon + length + 1
    return value
end

while position <= #batch do
    local dedup, queue, id, payload = next_field(), next_field(), next_field(), next_field()
    if redis.call("set", dedup, id, "NX", "EX", ttl) then
        redis.call("hset", queue .. ".msgs", id, payload)
        redis.call("rpush", queue, id)
        outcomes[#outcomes + 1] = "1"
    else
        outcomes[#outcomes + 1] = "0"
    end
end
return table.concat(outcomes)
