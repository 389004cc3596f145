//! The benches' settings from the environment.

/// A number from the environment, `default` when unset or not a number.
pub fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
