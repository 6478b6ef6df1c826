-- Mark a callback as seen and enqueue it for Dramatiq in one atomic step.
-- Either both writes happen or neither does, so a failed enqueue can never leave a dedup mark behind
-- that would drop BigCommerce's retry. The enqueue writes exactly what Dramatiq's RedisBroker writes
-- for "enqueue" (dramatiq/brokers/redis/dispatch.lua, 2.2.x): HSET <ns>:<queue>.msgs id payload;
-- RPUSH <ns>:<queue> id.
--
-- KEYS[1] dedup mark   KEYS[2] queue list   KEYS[3] queue message hash
-- ARGV[1] dedup TTL in seconds   ARGV[2] redis message id   ARGV[3] encoded message
-- Returns 1 when enqueued, 0 when the callback was already seen.
if redis.call("set", KEYS[1], ARGV[2], "NX", "EX", ARGV[1]) then
    redis.call("hset", KEYS[3], ARGV[2], ARGV[3])
    redis.call("rpush", KEYS[2], ARGV[2])
    return 1
end
return 0
