//! Private files: what only their owner may read.
//!
//! A client's database holds its history, outbox and pins in plaintext; the
//! relay's holds every stored envelope and who talks to whom. Both live in
//! directories of mode 0700 and are files of mode 0600 from the moment they
//! exist, and so are SQLite's side files (`-wal`, `-shm`, `-journal`,
//! created with the database's mode). A file or directory found readable by
//! others is tightened, and the caller is told which, so it can say so.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::PkiError;

/// Mode of private directories.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of private files.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of private key files.
pub const PRIVATE_KEY_MODE: u32 = 0o600;
/// Mode of certificates and the CRL.
pub const PUBLIC_FILE_MODE: u32 = 0o644;
/// SQLite's side files of a database `NAME`: `NAME-wal` and so on.
pub const SQLITE_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |error| PkiError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Sets `mode` on `path` if it allows more; true if it did.
fn tighten(path: &Path, mode: u32) -> Result<bool, PkiError> {
    let current = fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
    if current & !mode == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))?;
    Ok(true)
}

/// Makes `dir` (and its missing parents) a private directory: created with
/// mode 0700, or tightened to it. True if an existing one was tightened.
pub fn private_dir(dir: &Path) -> Result<bool, PkiError> {
    if dir.is_dir() {
        return tighten(dir, PRIVATE_DIR_MODE);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(io(dir))?;
    Ok(false)
}

/// Makes `path` a private file: created empty with mode 0600 if missing, or
/// tightened to it. True if an existing one was tightened.
pub fn private_file(path: &Path) -> Result<bool, PkiError> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => tighten(path, PRIVATE_FILE_MODE),
        Err(e) => Err(io(path)(e)),
    }
}

/// Prepares a SQLite database at `path` that only its owner can read: its
/// directory 0700 (when it is not the current directory), the database and
/// any side files 0600. Returns what had to be tightened.
pub fn private_database(path: &Path) -> Result<Vec<PathBuf>, PkiError> {
    let mut fixed = Vec::new();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && private_dir(dir)?
    {
        fixed.push(dir.to_path_buf());
    }
    if private_file(path)? {
        fixed.push(path.to_path_buf());
    }
    for suffix in SQLITE_SIDE_FILES {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() && tighten(&side, PRIVATE_FILE_MODE)? {
            fixed.push(side);
        }
    }
    Ok(fixed)
}

/// Writes `bytes` to `path` atomically with the given mode.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_is_private_from_the_start() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("state").join("alice.db");
        assert!(private_database(&db).unwrap().is_empty());
        assert_eq!(mode(db.parent().unwrap()), 0o700);
        assert_eq!(mode(&db), 0o600);
    }

    #[test]
    fn files_found_readable_by_others_are_tightened_and_named() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("alice.db");
        fs::write(&db, b"").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        let wal = dir.join("alice.db-wal");
        fs::write(&wal, b"").unwrap();
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o664)).unwrap();
        let fixed = private_database(&db).unwrap();
        assert_eq!(fixed, vec![dir.clone(), db.clone(), wal.clone()]);
        assert_eq!((mode(&dir), mode(&db), mode(&wal)), (0o700, 0o600, 0o600));
        // Already private: nothing to say.
        assert!(private_database(&db).unwrap().is_empty());
    }
}
