//! Built-in tools that need no network: [`calculator`] (exact arithmetic), [`date_tool`] (date arithmetic) and
//! [`unit_tool`] (unit conversion), and [`builtin_registry`] with all three; with feature `retrieval`,
//! [`retrieval::RetrievalTool`] (search over a local corpus through temper-rag's `Retriever` seam).

pub mod calculator;
pub mod date;
#[cfg(feature = "retrieval")]
pub mod retrieval;
pub mod units;

pub use calculator::calculator;
pub use date::date_tool;
pub use units::unit_tool;

use crate::error::Result;
use crate::tool::Registry;

/// The names of the built-in tools that need no set-up (`units` is accepted for `convert_units`).
pub const BUILTIN_NAMES: [&str; 3] = ["calculator", "date", "convert_units"];

/// Registers the built-in tool named `name` ([`BUILTIN_NAMES`], or `units`); `Ok(false)` when there is none by
/// that name.
pub fn register_builtin(registry: &mut Registry, name: &str) -> Result<bool> {
    match name {
        "calculator" => registry.register(calculator())?,
        "date" => registry.register(date_tool())?,
        "convert_units" | "units" => registry.register(unit_tool())?,
        _ => return Ok(false),
    };
    Ok(true)
}

/// A registry of the three built-in tools.
pub fn builtin_registry() -> Result<Registry> {
    let mut r = Registry::new();
    r.register(calculator())?
        .register(date_tool())?
        .register(unit_tool())?;
    Ok(r)
}
