//! Client-side load balancing over the usable instances of one service.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::endpoint::Endpoint;

/// How to spread requests over instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Balance {
    /// Each instance in turn. The default: easy to see in a curl loop, and fair when instances
    /// are alike.
    #[default]
    RoundRobin,
    /// Power of two choices: of two random instances, the one with fewer requests in flight.
    /// Steers away from a slow instance without the herd effect of "always the least loaded".
    LeastPending,
}

/// Picks one of `candidates` (never empty) and returns its position.
pub(crate) fn pick(balance: Balance, cursor: &AtomicUsize, candidates: &[&Arc<Endpoint>]) -> usize {
    let n = candidates.len();
    debug_assert!(n > 0);
    match balance {
        Balance::RoundRobin => cursor.fetch_add(1, Ordering::Relaxed) % n,
        Balance::LeastPending if n == 1 => 0,
        Balance::LeastPending => {
            let a = fastrand::usize(..n);
            // A second, distinct choice.
            let b = (a + 1 + fastrand::usize(..n - 1)) % n;
            if candidates[b].in_flight() < candidates[a].in_flight() {
                b
            } else {
                a
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Instance;
    use tokio::time::Instant;

    fn endpoints(n: u16) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|port| {
                Arc::new(Endpoint::new(Instance {
                    id: port.to_string(),
                    address: "127.0.0.1".into(),
                    port,
                }))
            })
            .collect()
    }

    #[test]
    fn round_robin_visits_each_in_turn() {
        let all = endpoints(3);
        let refs: Vec<_> = all.iter().collect();
        let cursor = AtomicUsize::new(0);
        let picks: Vec<_> = (0..6)
            .map(|_| pick(Balance::RoundRobin, &cursor, &refs))
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[tokio::test]
    async fn least_pending_avoids_the_busy_instance() {
        let all = endpoints(2);
        let _busy: Vec<_> = (0..5)
            .map(|_| all[0].begin(Instant::now()).unwrap())
            .collect();
        let refs: Vec<_> = all.iter().collect();
        let cursor = AtomicUsize::new(0);
        for _ in 0..50 {
            assert_eq!(pick(Balance::LeastPending, &cursor, &refs), 1);
        }
    }
}
