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
