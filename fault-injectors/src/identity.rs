//! Which part of a business id keys a fault decision.
//!
//! A load generator makes its ids unique across runs against one SUT by
//! prefixing them with a run tag (`FL<seed>-<unique>-`, see [`run_tag`]).
//! That prefix differs between a run and its replay, so a decision keyed by
//! the whole id would differ too; the decision is keyed by the id without
//! it ([`decision_identity`]). Ids without the prefix (ones the SUT made,
//! e.g. a `payment_no`) are used whole: they replay only if the SUT makes
//! them deterministically.

/// The run tag a load generator puts before the ids it makes: `seed` (the
/// run's seed) and `unique` (anything that differs between runs, e.g. the
/// start time in ms), both in hex.
pub fn run_tag(seed: u64, unique: u128) -> String {
    format!("FL{seed:x}-{unique:x}")
}

/// `id` without a leading run tag and its separator (`FL<hex>-<hex>-`);
/// `id` whole when it does not start with one.
pub fn decision_identity(id: &str) -> &str {
    let strip = || -> Option<&str> {
        let rest = id.strip_prefix("FL")?;
        let (seed, rest) = rest.split_once('-')?;
        let (unique, rest) = rest.split_once('-')?;
        let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(seed) && hex(unique) && !rest.is_empty()).then_some(rest)
    };
    strip().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_tag_is_dropped_and_nothing_else() {
        let a = format!("{}-0-17", run_tag(42, 0x18f_a3b2));
        let b = format!("{}-0-17", run_tag(42, 0x18f_ffff));
        assert_ne!(a, b);
        assert_eq!(decision_identity(&a), "0-17");
        assert_eq!(decision_identity(&b), "0-17");
        for whole in [
            "P-123",
            "FL-1-2",
            "FLxy-1-2",
            "FL1-2-",
            "FL1-2",
            "order-FL1-2-3",
        ] {
            assert_eq!(decision_identity(whole), whole);
        }
    }
}
