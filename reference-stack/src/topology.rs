//! Who is who: the modelled services and their downstreams, as the platform
//! contract ([`platform_contract`]) writes them down — names, ports, env var
//! names, which downstreams each service calls and which it cannot do without.

pub use platform_contract::{Downstream, ServiceKind};

/// Comma-separated short names, for error messages.
pub(crate) fn names(downstreams: &[Downstream]) -> String {
    let names: Vec<&str> = downstreams.iter().map(|d| d.name()).collect();
    names.join(", ")
}
