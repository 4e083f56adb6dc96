//! Content-addressed blobs under `blobs/sha256/`, written only after their digest checks.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;

use super::{Store, atomic};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};

impl Store {
    /// Where a blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob is stored.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The blob's size on disk.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let p = self.blob_path(digest);
        Ok(fs::metadata(&p).at(&p)?.len())
    }

    /// Reads a (small) blob whole, checking its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        let bytes = fs::read(&p).at(&p)?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: "stored blob",
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.blob_path(digest);
        File::open(&p).at(&p)
    }

    /// Stores bytes as a blob (no-op when already there) and returns their digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if !self.has_blob(&d) {
            atomic::write_file(&self.blob_path(&d), bytes)?;
        }
        Ok(d)
    }

    /// Streams `reader` into the store. When `expected` is given the content must hash
    /// to it, or nothing is stored and the error names the blob.
    pub fn put_blob_stream<R: Read>(
        &self,
        mut reader: R,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let tmp_dir = self.root.join("tmp");
        let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).at(&tmp_dir)?;
        let mut w = HashingWriter::new(tmp);
        let what = expected
            .map(|d| d.to_string())
            .unwrap_or_else(|| "blob".to_string());
        io::copy(&mut reader, &mut w).map_err(|e| Error::Other(format!("reading {what}: {e}")))?;
        let (tmp, digest, size) = w.finish();
        if let Some(exp) = expected
            && exp != &digest
        {
            return Err(Error::DigestMismatch {
                what: "blob",
                expected: exp.to_string(),
                actual: digest.to_string(),
            });
        }
        self.adopt_blob_file(tmp, &digest)?;
        Ok((digest, size))
    }

    /// Moves a fully written temp file (whose digest the caller computed) into place.
    pub fn adopt_blob_file(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(());
        }
        tmp.as_file().sync_all().at(tmp.path().to_path_buf())?;
        tmp.persist(&dest).map_err(|e| e.error).at(&dest)?;
        atomic::sync_dir(dest.parent().unwrap_or(&self.root))
    }

    /// All stored blob digests.
    pub fn list_blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            if let Some(name) = e.file_name().to_str()
                && let Ok(d) = Digest::parse(&format!("sha256:{name}"))
            {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// A blob fetcher for [`Store::put_blob_resumable`]: asked for the bytes from an
/// offset, it returns the offset it really serves from (0 when the source can not skip)
/// and a reader.
pub type RangeFetch<'a> = dyn Fn(u64) -> Result<(u64, Box<dyn Read + Send + 'a>)> + 'a;

impl Store {
    /// Downloads a blob into `partial/HEX`, resuming from what an interrupted earlier
    /// run left there, and moves it into place once its digest checks. A blob whose
    /// content is wrong is deleted and the error names it. Two processes fetching the
    /// same blob take turns (file lock), the second finding the blob done.
    pub fn put_blob_resumable(&self, expected: &Digest, fetch: &RangeFetch<'_>) -> Result<u64> {
        use fs2::FileExt;
        use sha2::Digest as _;
        use std::io::{Seek, SeekFrom, Write};

        let dir = self.root.join("partial");
        atomic::ensure_dir(&dir)?;
        let path = dir.join(expected.hex());
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        file.lock_exclusive().at(&path)?;
        if self.has_blob(expected) {
            let _ = fs::remove_file(&path);
            return self.blob_size(expected);
        }
        for attempt in 0..2 {
            let have = if attempt == 0 {
                file.metadata().at(&path)?.len()
            } else {
                0
            };
            let (start, mut reader) = fetch(have)?;
            let start = start.min(have);
            file.set_len(start).at(&path)?;
            let mut hasher = sha2::Sha256::new();
            file.seek(SeekFrom::Start(0)).at(&path)?;
            let mut kept = (&mut file).take(start);
            io::copy(&mut kept, &mut HashWrite(&mut hasher)).at(&path)?;
            file.seek(SeekFrom::Start(start)).at(&path)?;
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = start;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = file.flush();
                        return Err(Error::Other(format!("reading {expected}: {e}")));
                    }
                };
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n]).at(&path)?;
                total += n as u64;
            }
            let actual = Digest::from_hasher(hasher);
            if &actual == expected {
                file.sync_all().at(&path)?;
                let dest = self.blob_path(expected);
                fs::rename(&path, &dest).at(&dest)?;
                atomic::sync_dir(dest.parent().unwrap_or(&self.root))?;
                return Ok(total);
            }
            file.set_len(0).at(&path)?;
            if start == 0 {
                let _ = fs::remove_file(&path);
                return Err(Error::DigestMismatch {
                    what: "blob",
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
            // The kept prefix was bad (or the source changed): start over once.
        }
        let _ = fs::remove_file(&path);
        Err(Error::Other(format!("{expected}: download did not verify")))
    }
}

struct HashWrite<'a>(&'a mut sha2::Sha256);

impl io::Write for HashWrite<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        sha2::Digest::update(self.0, b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
