//! Files only this user may read: the data dir, the sandbox data key and the sandbox app's credentials.

use std::io::Write;
use std::path::Path;

/// Creates `path` with mode 0600 (on unix) and writes `text`; fails if the file exists, so a key is never
/// silently replaced.
pub fn create(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// Writes `text` to `path` (mode 0600), replacing what is there in one rename: a crash leaves the old file or the
/// new one, never half of either.
pub fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let mut staging = path.as_os_str().to_owned();
    staging.push(".new");
    let staging = std::path::PathBuf::from(staging);
    match std::fs::remove_file(&staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    create(&staging, text)?;
    std::fs::rename(&staging, path)
}

/// Creates the directory (and its parents) with mode 0700, or makes an existing one 0700: it holds the SQLite
/// database and, in sandbox mode, the data key.
pub fn create_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            tracing::info!(path = %path.display(), from = format_args!("{mode:o}"), "data dir made private (0700)");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}
