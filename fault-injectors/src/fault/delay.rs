//! Latency distributions: fixed, uniform and lognormal, sampled from the
//! per-request seeded RNG so a seed reproduces every delay exactly.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal};

/// How long a latency fault holds a request before it is answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Delay {
    /// Always the same delay.
    Fixed(Duration),
    /// Uniformly distributed between `lo` and `hi` (inclusive).
    Uniform {
        /// Shortest delay.
        lo: Duration,
        /// Longest delay.
        hi: Duration,
    },
    /// Lognormal with the given median and shape (`sigma` of the underlying
    /// normal): a long right tail, the usual shape of real service latency.
    /// A draw beyond [`super::MAX_DELAY`] (1 hour) is cut to it, as every
    /// delay is bounded by it.
    LogNormal {
        /// Half of the delays are shorter than this.
        median: Duration,
        /// Spread; 0 gives a constant, 1 a very heavy tail.
        sigma: f64,
    },
}

impl Delay {
    /// Draws one delay.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match self {
            Delay::Fixed(d) => *d,
            Delay::Uniform { lo, hi } => {
                let (lo, hi) = (lo.as_nanos() as u64, hi.as_nanos() as u64);
                Duration::from_nanos(rng.random_range(lo..=hi))
            }
            Delay::LogNormal { median, sigma } => {
                // The median of a lognormal is e^mu, so mu = ln(median).
                let mu = median.as_secs_f64().max(f64::MIN_POSITIVE).ln();
                match LogNormal::new(mu, *sigma) {
                    // Cut at the stated bound of every delay, MAX_DELAY (a
                    // NaN draw, impossible with a validated sigma, also
                    // lands there: `min` prefers the number).
                    Ok(dist) => Duration::from_secs_f64(
                        dist.sample(rng)
                            .min(super::MAX_DELAY.as_secs_f64())
                            .max(0.0),
                    ),
                    // sigma is validated non-negative and finite, so this is unreachable
                    // in practice; fall back to the median rather than panic.
                    Err(_) => *median,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn lognormal_median_matches_the_parameter() {
        let delay = Delay::LogNormal {
            median: Duration::from_millis(40),
            sigma: 0.8,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut samples: Vec<Duration> = (0..20_001).map(|_| delay.sample(&mut rng)).collect();
        samples.sort();
        let median = samples[samples.len() / 2].as_secs_f64() * 1000.0;
        assert!((median - 40.0).abs() < 40.0 * 0.02, "median {median} ms");
        // A heavy right tail: p99 well above the median (e^(2.326*0.8) ≈ 6.4×).
        let p99 = samples[samples.len() * 99 / 100].as_secs_f64() * 1000.0;
        assert!(p99 > 40.0 * 5.5 && p99 < 40.0 * 7.5, "p99 {p99} ms");
    }

    #[test]
    fn lognormal_draws_are_cut_at_the_stated_bound() {
        let delay = Delay::LogNormal {
            median: super::super::MAX_DELAY,
            sigma: super::super::MAX_SIGMA,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let longest = (0..1000).map(|_| delay.sample(&mut rng)).max();
        assert_eq!(longest, Some(super::super::MAX_DELAY));
    }

    #[test]
    fn uniform_stays_within_bounds_and_covers_them() {
        let delay = Delay::Uniform {
            lo: Duration::from_millis(10),
            hi: Duration::from_millis(20),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let samples: Vec<Duration> = (0..10_000).map(|_| delay.sample(&mut rng)).collect();
        let min = samples.iter().min().copied().unwrap_or_default();
        let max = samples.iter().max().copied().unwrap_or_default();
        assert!(min >= Duration::from_millis(10) && min < Duration::from_millis(11));
        assert!(max <= Duration::from_millis(20) && max > Duration::from_millis(19));
    }
}
