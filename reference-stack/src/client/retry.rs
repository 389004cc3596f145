//! The platform's retry loop: up to `max_attempts` attempts, linear backoff.

use std::future::Future;
use std::time::Duration;

/// When and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per logical call, the first included (platform: 4).
    pub max_attempts: u32,
    /// Base delay (platform: 1 s).
    pub retry_delay: Duration,
}

impl RetryPolicy {
    /// The sleep after failed attempt `attempt` (counted from 0): `retry_delay × (attempt+1)`,
    /// so 1 s, 2 s, 3 s with the platform's numbers.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.retry_delay.saturating_mul(attempt.saturating_add(1))
    }
}

/// Run `attempt` (given the attempt number from 0) until it succeeds, fails with an
/// error `retryable` refuses, or `max_attempts` are spent; sleeps the backoff between
/// attempts and never after the last one. Returns the last result.
pub async fn run<T, E, F, Fut>(
    policy: RetryPolicy,
    mut attempt: F,
    retryable: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut n = 0;
    loop {
        match attempt(n).await {
            Ok(value) => return Ok(value),
            Err(err) if n + 1 < policy.max_attempts && retryable(&err) => {
                tokio::time::sleep(policy.backoff(n)).await;
                n += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::time::Instant;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        retry_delay: Duration::from_secs(1),
    };

    #[test]
    fn backoff_is_linear() {
        let delays: Vec<Duration> = (0..3).map(|n| POLICY.backoff(n)).collect();
        assert_eq!(
            delays,
            [1, 2, 3].map(Duration::from_secs).to_vec(),
            "1 s, 2 s, 3 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_attempts_are_spent_with_six_seconds_of_sleep() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let result: Result<(), &str> = run(
            POLICY,
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err("503") }
            },
            |_| true,
        )
        .await;
        assert_eq!(result, Err("503"));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_on_success_and_on_non_retryable_errors() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, &str> = run(
            POLICY,
            |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { if n == 2 { Ok(n) } else { Err("503") } }
            },
            |_| true,
        )
        .await;
        assert_eq!(result, Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let result: Result<(), &str> = run(
            POLICY,
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err("400") }
            },
            |e| *e != "400",
        )
        .await;
        assert_eq!(result, Err("400"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(start.elapsed(), Duration::ZERO, "no sleep without a retry");
    }

    #[tokio::test(start_paused = true)]
    async fn single_attempt_policy_never_sleeps() {
        let policy = RetryPolicy {
            max_attempts: 1,
            ..POLICY
        };
        let start = Instant::now();
        let result: Result<(), &str> = run(policy, |_| async { Err("503") }, |_| true).await;
        assert!(result.is_err());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
