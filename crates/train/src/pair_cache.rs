//! DPO's sampled preference pairs cached beside its checkpoints (`pairs.jsonl`, `eval_pairs.jsonl` in the output
//! folder), so a resumed run trains on the very pairs it started with instead of sampling new ones.

use std::path::Path;

use crate::data::{PreferencePair, parse_preference, read_jsonl};
use crate::dpo::write_pairs_jsonl;
use crate::error::TrainError;

/// Training and held-out pairs.
pub type Pairs = (Vec<PreferencePair>, Vec<PreferencePair>);

/// The pairs of a run writing to `dir`: with `resume` and a `dir/pairs.jsonl` from an earlier start, those (and
/// `dir/eval_pairs.jsonl` when present); otherwise `make()`'s, written there first (the held-out file only when
/// there are held-out pairs).
pub fn cached_pairs<E: From<TrainError>>(
    dir: &Path,
    resume: bool,
    make: impl FnOnce() -> Result<Pairs, E>,
) -> Result<Pairs, E> {
    let (train_path, eval_path) = (dir.join("pairs.jsonl"), dir.join("eval_pairs.jsonl"));
    if resume && train_path.is_file() {
        let read = |p: &Path| read_jsonl(p, parse_preference).map_err(TrainError::from);
        let eval = if eval_path.is_file() {
            read(&eval_path)?
        } else {
            Vec::new()
        };
        return Ok((read(&train_path)?, eval));
    }
    let (train, eval) = make()?;
    // The held-out file first: `pairs.jsonl` marks the cache complete, so a crash between the two writes makes
    // the next start sample again instead of resuming without held-out pairs.
    if eval.is_empty() {
        if eval_path.is_file() {
            std::fs::remove_file(&eval_path).map_err(|source| TrainError::Io {
                path: eval_path.clone(),
                source,
            })?;
        }
    } else {
        write_pairs_jsonl(&eval_path, &eval)?;
    }
    write_pairs_jsonl(&train_path, &train)?;
    Ok((train, eval))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(i: usize) -> PreferencePair {
        PreferencePair {
            prompt: format!("p{i}"),
            chosen: "good".into(),
            rejected: "bad".into(),
            margin: i.is_multiple_of(2).then_some(0.5),
        }
    }

    #[test]
    fn a_resumed_run_reads_the_pairs_it_started_with() -> Result<(), TrainError> {
        let dir = std::env::temp_dir().join(format!("temper-pair-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = cached_pairs(&dir, true, || {
            Ok::<_, TrainError>((vec![pair(0), pair(1)], Vec::new()))
        })?;
        assert_eq!(first.0.len(), 2);
        assert!(
            !dir.join("eval_pairs.jsonl").exists(),
            "no held-out file without held-out pairs"
        );
        let resumed = cached_pairs(&dir, true, || -> Result<Pairs, TrainError> {
            panic!("must not sample again")
        })?;
        assert_eq!(resumed, first);
        // Without `resume` the pairs are made and written anew.
        let fresh = cached_pairs(&dir, false, || {
            Ok::<_, TrainError>((vec![pair(2)], vec![pair(3)]))
        })?;
        assert_eq!(
            cached_pairs(&dir, true, || -> Result<Pairs, TrainError> {
                panic!("cached")
            })?,
            fresh
        );
        // A crash after the held-out file but before `pairs.jsonl`: the next start samples again and keeps both.
        std::fs::remove_file(dir.join("pairs.jsonl")).map_err(|source| TrainError::Io {
            path: dir.join("pairs.jsonl"),
            source,
        })?;
        let again = cached_pairs(&dir, true, || {
            Ok::<_, TrainError>((vec![pair(4)], vec![pair(5)]))
        })?;
        assert_eq!(again, (vec![pair(4)], vec![pair(5)]));
        assert_eq!(
            cached_pairs(&dir, true, || -> Result<Pairs, TrainError> {
                panic!("cached")
            })?,
            again
        );
        std::fs::remove_dir_all(&dir).ok();
        Ok(())
    }
}
