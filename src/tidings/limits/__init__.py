"""Rate limits (token buckets, in memory or in Redis) and circuit breakers for providers."""
