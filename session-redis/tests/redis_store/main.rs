//! `RedisStore` against real Redis servers: the shared store contract on a
//! single node and on a Cluster, round trips per operation, outages,
//! corrupt records, concurrent writers, and the cache's staleness bound
//! through a failing network.

mod cache;
mod concurrency;
mod contract;
mod corrupt;
mod delivery;
mod outage;
mod round_trips;
mod sentinel;
mod staleness;
