//! The staleness bound of the client-side cache: proof, younger than the
//! bound, that every invalidation stream is alive and caught up.
//!
//! Each tracking connection is an invalidation stream: Redis pushes the
//! invalidations for the keys it read on that connection, in order with its
//! replies. So a reply to a `PING` sent at `sent` proves that every
//! invalidation for a write acknowledged before `sent` has been applied,
//! and the cache may serve until `sent + bound`. The send time counts, not
//! the arrival: a reply that took long proves less.
//!
//! The cache serves only before the earliest such deadline of all open
//! streams (an open stream that has not answered yet, or none open, means
//! no serving). A stream that closes leaves the set (the cache was dropped
//! with it); its replacement counts from its own first answer.
//!
//! No IO and no clock here: instants are passed in. Readers pay one atomic
//! load; the writers (a few pings per bound, and connection changes) share
//! a lock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    /// Not connected: it tracks nothing.
    Closed,
    /// Connected as `generation`; proof until `until` (0: none yet).
    Open { generation: u64, until: u64 },
}

/// Whether the cache may serve, and the proof behind it.
#[derive(Debug)]
pub(crate) struct Freshness {
    origin: Instant,
    bound: Duration,
    /// Nanoseconds after `origin` before which the cache may serve; 0:
    /// not at all.
    until: AtomicU64,
    streams: Mutex<Vec<Stream>>,
}

impl Freshness {
    /// No proof yet; instants are counted from `origin` (none may come
    /// before it).
    pub(crate) fn new(bound: Duration, origin: Instant) -> Self {
        Self {
            origin,
            bound,
            until: AtomicU64::new(0),
            streams: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn bound(&self) -> Duration {
        self.bound
    }

    fn nanos(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    /// Whether the cache may serve at `at`: one load and a compare.
    pub(crate) fn is_fresh(&self, at: Instant) -> bool {
        self.nanos(at) < self.until.load(Ordering::Acquire)
    }

    /// Stream `stream` is (re)connected as `generation`, tracking on: it
    /// holds the cache back until it proves itself.
    pub(crate) fn opened(&self, stream: usize, generation: u64) {
        self.change(stream, |_| Stream::Open {
            generation,
            until: 0,
        });
    }

    /// A `PING` sent at `sent` on `generation` of `stream` was answered.
    /// Ignored if that connection was replaced or closed meanwhile.
    pub(crate) fn proved(&self, stream: usize, generation: u64, sent: Instant) {
        let bound = u64::try_from(self.bound.as_nanos()).unwrap_or(u64::MAX);
        let until = self.nanos(sent).saturating_add(bound);
        self.change(stream, |old| match old {
            Stream::Open {
                generation: open,
                until: before,
            } if open == generation => Stream::Open {
                generation,
                until: until.max(before),
            },
            other => other,
        });
    }

    /// `generation` of `stream` is gone (if it is still the open one).
    pub(crate) fn closed(&self, stream: usize, generation: u64) {
        self.change(stream, |old| match old {
            Stream::Open {
                generation: open, ..
            } if open == generation => Stream::Closed,
            other => other,
        });
    }

    fn change(&self, stream: usize, f: impl FnOnce(Stream) -> Stream) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if streams.len() <= stream {
            streams.resize(stream + 1, Stream::Closed);
        }
        streams[stream] = f(streams[stream]);
        // The earliest deadline of the open streams; none open, none.
        let until = streams
            .iter()
            .filter_map(|s| match s {
                Stream::Open { until, .. } => Some(*until),
                Stream::Closed => None,
            })
            .min()
            .unwrap_or(0);
        // Under the lock, so that deadlines are published in order.
        self.until.store(until, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_millis(100);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_reply_proves_freshness_for_the_bound_from_its_send_time() {
        let t0 = Instant::now();
        let proof = Freshness::new(BOUND, t0);
        assert!(!proof.is_fresh(t0), "no proof before any stream");
        proof.opened(0, 1);
        assert!(!proof.is_fresh(t0), "open but not proven");
        // Sent at 10 ms, answered at 40 ms: fresh until 110 ms, not 140.
        proof.proved(0, 1, t0 + ms(10));
        assert!(proof.is_fresh(t0 + ms(40)));
        assert!(proof.is_fresh(t0 + ms(110) - Duration::from_nanos(1)));
        assert!(!proof.is_fresh(t0 + ms(110)));
        // A later reply extends it; an older one, arriving late, does not
        // shorten it.
        proof.proved(0, 1, t0 + ms(60));
        proof.proved(0, 1, t0 + ms(20));
        assert!(proof.is_fresh(t0 + ms(159)));
        assert!(!proof.is_fresh(t0 + ms(160)));
    }

    #[test]
    fn every_open_stream_must_be_proven() {
        let t0 = Instant::now();
        let proof = Freshness::new(BOUND, t0);
        proof.opened(0, 1);
        proof.proved(0, 1, t0);
        proof.opened(2, 2);
        assert!(!proof.is_fresh(t0), "stream 2 has not answered");
        proof.proved(2, 2, t0 + ms(30));
        assert!(proof.is_fresh(t0 + ms(99)));
        // Stream 0 stalls (no more replies), stream 2 keeps answering: the
        // stalled one's deadline holds for both.
        proof.proved(2, 2, t0 + ms(80));
        assert!(!proof.is_fresh(t0 + ms(100)));
    }

    #[test]
    fn a_replaced_stream_starts_unproven_and_old_replies_do_not_count() {
        let t0 = Instant::now();
        let proof = Freshness::new(BOUND, t0);
        proof.opened(0, 1);
        proof.proved(0, 1, t0);
        proof.closed(0, 1);
        assert!(!proof.is_fresh(t0 + ms(1)), "no stream open");
        proof.opened(0, 5);
        // The old connection's ping, answered late: not proof for the new.
        proof.proved(0, 1, t0 + ms(2));
        assert!(!proof.is_fresh(t0 + ms(3)));
        // Closing a generation that is not the open one changes nothing.
        proof.proved(0, 5, t0 + ms(4));
        proof.closed(0, 1);
        assert!(proof.is_fresh(t0 + ms(5)));
        proof.closed(0, 5);
        assert!(!proof.is_fresh(t0 + ms(5)));
    }

    #[test]
    fn instants_before_the_origin_and_far_after_it_saturate() {
        let t0 = Instant::now() + ms(1000);
        let proof = Freshness::new(BOUND, t0);
        proof.opened(0, 1);
        proof.proved(0, 1, t0 - ms(500)); // counts as the origin
        assert!(proof.is_fresh(t0 - ms(900)));
        assert!(!proof.is_fresh(t0 + BOUND));
    }
}
