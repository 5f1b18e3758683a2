//! Files only this user may read: the sandbox data key and the sandbox app's credentials.

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
