//! placeholder
pub fn run(_r: &std::path::Path, _a: &[String]) -> anyhow::Result<()> { Ok(()) }
