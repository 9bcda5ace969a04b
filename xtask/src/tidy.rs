//! Source-tree conventions, checked by `cargo xtask tidy` and by a plain `#[test]`.

use std::path::{Path, PathBuf};

use anyhow::Result;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "fixtures" {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every problem found, one line each: `file:line: what`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for top in ["crates", "xtask", "examples"] {
        let d = root.join(top);
        if d.is_dir() {
            rust_files(&d, &mut files)?;
        }
    }
    let mut problems = Vec::new();
    // Spelled in two halves so that this file does not flag itself.
    let banned = [
        (concat!("#[", "ignore"), "an ignored test"),
        (concat!("todo", "!("), "a todo stub"),
        (concat!("unimplemented", "!("), "an unimplemented stub"),
        (concat!("#[", "should_panic"), "a should_panic test (assert on the error instead)"),
    ];
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let shown = f.strip_prefix(root).unwrap_or(&f).display().to_string();
        if !text.starts_with("//!") {
            problems.push(format!("{shown}:1: file does not start with a `//!` line saying what lives there"));
        }
        for (i, line) in text.lines().enumerate() {
            for (pat, what) in banned {
                if line.contains(pat) {
                    problems.push(format!("{shown}:{}: {what}", i + 1));
                }
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    #[test]
    fn source_tree_is_tidy() {
        let problems = super::check(&crate::root()).expect("walk the tree");
        assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
    }
}
