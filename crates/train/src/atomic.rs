//! Crash-safe writes: a file or a folder appears whole or not at all (write to a temp name, fsync, rename).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};
use crate::faults;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through `.<name>.tmp-<pid>` + fsync + rename. On failure (a full disk) the temp file
/// is removed and `path` keeps its old content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        let granted = faults::take_write_budget(bytes.len());
        f.write_all(&bytes[..granted])?;
        if granted < bytes.len() {
            return Err(faults::disk_full());
        }
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Fills a fresh temp folder with `fill`, then swaps it in for `dir` (the old `dir`, if any, is removed only
/// after the new one is in place under its final name).
pub fn atomic_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let tmp = temp_sibling(dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = dir.with_file_name(format!(
        ".{}.old-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id()
    ));
    let had_old = dir.exists();
    if had_old {
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    if had_old {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// Cleans up after a process that was killed inside [`write_atomic`] or [`atomic_dir`] in `dir`: removes the temp
/// files and folders it left (`.<name>.tmp-<pid>` of another pid), and for a folder swap cut between its two
/// renames (`.<name>.old-<pid>` left, `<name>` missing) puts the old folder back. Returns what it removed or
/// restored (file names).
pub fn recover_interrupted_writes(dir: &Path) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(io(dir)(e)),
    };
    let me = std::process::id();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some((target, kind, pid)) = leftover(&name) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let path = entry.path();
        let restore = kind == "old" && !dir.join(target).exists();
        if restore {
            std::fs::rename(&path, dir.join(target)).map_err(io(&path))?;
        } else if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        } else {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        done.push(name);
    }
    done.sort();
    Ok(done)
}

/// `.<target>.<tmp|old>-<pid>` split into its parts.
fn leftover(name: &str) -> Option<(&str, &str, u32)> {
    let rest = name.strip_prefix('.')?;
    let (head, pid) = rest.rsplit_once('-')?;
    let pid = pid.parse().ok()?;
    let (target, kind) = head.rsplit_once('.')?;
    (matches!(kind, "tmp" | "old") && !target.is_empty()).then_some((target, kind, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("temper-atomic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    }

    #[test]
    fn leftovers_of_a_killed_writer_are_removed_or_restored() -> Result<()> {
        let d = scratch("recover");
        let other = std::process::id().wrapping_add(1);
        // A file cut short mid-write, a checkpoint folder half filled, and a swap cut between its renames.
        std::fs::write(d.join(format!(".metrics.jsonl.tmp-{other}")), b"{\"step\":")
            .expect("write");
        std::fs::create_dir_all(d.join(format!(".checkpoint-4.tmp-{other}"))).expect("mkdir");
        std::fs::create_dir_all(d.join(format!(".final.old-{other}"))).expect("mkdir");
        std::fs::write(
            d.join(format!(".final.old-{other}/model.safetensors")),
            b"old",
        )
        .expect("write");
        // An old folder whose replacement is in place is just removed; other names are left alone.
        std::fs::create_dir_all(d.join("checkpoint-2")).expect("mkdir");
        std::fs::create_dir_all(d.join(format!(".checkpoint-2.old-{other}"))).expect("mkdir");
        std::fs::write(d.join(".hidden-note"), b"keep").expect("write");
        let done = recover_interrupted_writes(&d)?;
        assert_eq!(done.len(), 4, "{done:?}");
        assert_eq!(
            std::fs::read(d.join("final/model.safetensors")).expect("restored"),
            b"old"
        );
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden-note", "checkpoint-2", "final"]);
        std::fs::remove_dir_all(&d).ok();
        Ok(())
    }

    #[test]
    fn a_full_disk_fails_the_write_names_the_file_and_keeps_the_old_content() {
        let d = scratch("full");
        let path = d.join("trainer_state.json");
        write_atomic(&path, b"old state").expect("first write");
        faults::set_write_budget(Some(3));
        let err = write_atomic(&path, b"new state").expect_err("the disk is full");
        faults::set_write_budget(None);
        let text = err.to_string();
        assert!(
            text.contains(".trainer_state.json.tmp-") && text.contains("No space left on device"),
            "{text}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"old state");
        assert_eq!(
            std::fs::read_dir(&d).expect("ls").count(),
            1,
            "the temp file is gone"
        );
        std::fs::remove_dir_all(&d).ok();
    }
}
