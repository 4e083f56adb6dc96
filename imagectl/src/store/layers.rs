//! Unpacked layers, one directory per ChainID, shared by every image that has them.
//!
//! A layer is extracted into `tmp/`, its DiffID checked, and only then renamed to
//! `layers/CHAINHEX`; a refused or corrupt tar therefore never appears in the store, and
//! two processes unpacking the same layer at once both succeed (the second rename loses
//! and its copy is thrown away). Once in place, the chain it ends gets its persistent
//! index (`chain_index.rs`).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Store, atomic};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::layer::{self, extract_layer};
use crate::oci::{Descriptor, media};

/// What the store knows about an unpacked layer (`layers/CHAINHEX/layer.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The layer's ChainID (its directory name).
    pub chain_id: Digest,
    /// The layer's DiffID.
    pub diff_id: Digest,
    /// ChainID of the layer below, if any.
    pub parent: Option<Digest>,
    /// Sum of regular file sizes in the layer.
    pub size: u64,
    /// Length of the uncompressed tar.
    pub tar_size: u64,
}

/// A layer just added from a tar or directory, ready to go into a manifest.
#[derive(Clone, Debug)]
pub struct NewLayer {
    /// Descriptor of the stored blob (uncompressed tar).
    pub descriptor: Descriptor,
    /// Its DiffID (equal to the blob digest, as the blob is uncompressed).
    pub diff_id: Digest,
    /// Its ChainID given the parent it was added on.
    pub chain_id: Digest,
    /// Sum of regular file sizes.
    pub size: u64,
}

/// ChainID of `diff_id` on top of `parent`.
pub fn chain_of(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// A reader that copies everything it reads into a writer.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl Store {
    /// `layers/CHAINHEX`.
    pub fn layer_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    /// The directory holding the layer's files, as given to `lowerdir=`.
    pub fn layer_diff_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layer_path(chain_id).join("diff")
    }

    /// Whether the layer is unpacked and complete.
    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_path(chain_id).join("layer.json").is_file()
    }

    /// The layer's record.
    pub fn layer_record(&self, chain_id: &Digest) -> Result<LayerRecord> {
        let p = self.layer_path(chain_id).join("layer.json");
        let bytes = fs::read(&p).at(&p)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(p.display().to_string(), e))
    }

    /// All unpacked layers' ChainIDs.
    pub fn list_layers(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("layers");
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

    /// Unpacks a stored layer blob (any compression) as `chain_id`, checking that the
    /// uncompressed stream hashes to `diff_id`.
    pub fn unpack_blob(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<LayerRecord> {
        let chain_id = chain_of(parent, diff_id);
        if self.has_layer(&chain_id) {
            // Unpacked before this store built indexes, or the build failed then.
            self.ensure_existing_chain_index(&chain_id);
            return self.layer_record(&chain_id);
        }
        let file = self.open_blob(blob)?;
        let (_, reader) = layer::decompress(file).at(self.blob_path(blob))?;
        self.unpack_stream(reader, Some(diff_id), parent)
    }

    /// Extracts an uncompressed tar stream as a new layer on `parent`; when
    /// `expected_diff_id` is given the stream must hash to it.
    pub fn unpack_stream<R: Read>(
        &self,
        reader: R,
        expected_diff_id: Option<&Digest>,
        parent: Option<&Digest>,
    ) -> Result<LayerRecord> {
        let work = self.temp_dir("layer-")?;
        let diff = work.path().join("diff");
        atomic::ensure_dir(&diff)?;
        let stats = extract_layer(reader, &diff, &self.extract)?;
        if let Some(exp) = expected_diff_id
            && exp != &stats.diff_id
        {
            return Err(Error::DigestMismatch {
                what: "layer diffID",
                expected: exp.to_string(),
                actual: stats.diff_id.to_string(),
            });
        }
        let record = LayerRecord {
            chain_id: chain_of(parent, &stats.diff_id),
            diff_id: stats.diff_id,
            parent: parent.cloned(),
            size: stats.content_size,
            tar_size: stats.tar_size,
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| Error::json("layer.json", e))?;
        atomic::write_file(&work.path().join("layer.json"), &json)?;
        self.commit_layer_dir(work, &record.chain_id)?;
        // Indexed at its final path: the index records each layer root's identity.
        self.ensure_chain_index(&record.chain_id);
        Ok(record)
    }

    fn commit_layer_dir(&self, work: tempfile::TempDir, chain_id: &Digest) -> Result<()> {
        let dest = self.layer_path(chain_id);
        if self.has_layer(chain_id) {
            return Ok(()); // someone else finished first; `work` is removed on drop
        }
        if dest.exists() {
            // A leftover without layer.json can not exist (rename is atomic), but be safe.
            fs::remove_dir_all(&dest).at(&dest)?;
        }
        let src = work.keep();
        match fs::rename(&src, &dest) {
            Ok(()) => atomic::sync_dir(&self.root.join("layers")),
            Err(e) if self.has_layer(chain_id) => {
                let _ = fs::remove_dir_all(&src);
                let _ = e;
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&src);
                Err(Error::Io {
                    path: dest,
                    source: e,
                })
            }
        }
    }

    /// Adds a layer from a tar stream (any compression): stores the uncompressed tar as
    /// a blob and unpacks it on `parent`. Used by import, commit and build.
    pub fn add_layer_tar<R: Read>(&self, reader: R, parent: Option<&Digest>) -> Result<NewLayer> {
        let (_, plain) =
            layer::decompress(reader).map_err(|e| Error::Other(format!("reading layer: {e}")))?;
        let tmp_dir = self.root.join("tmp");
        let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).at(&tmp_dir)?;
        let mut hw = HashingWriter::new(io::BufWriter::new(tmp));
        let record = {
            let tee = Tee {
                inner: plain,
                copy: &mut hw,
            };
            self.unpack_stream(tee, None, parent)?
        };
        let (buf, digest, size) = hw.finish();
        let tmp = buf
            .into_inner()
            .map_err(|e| Error::Other(format!("writing layer blob: {}", e.error())))?;
        self.adopt_blob_file(tmp, &digest)?;
        Ok(NewLayer {
            descriptor: Descriptor::new(media::OCI_LAYER_TAR, digest, size),
            diff_id: record.diff_id,
            chain_id: record.chain_id,
            size: record.size,
        })
    }

    /// Adds a layer from a directory tree (a rootfs, or an upper dir with on-disk
    /// whiteouts, which become OCI whiteouts in the tar).
    pub fn add_layer_dir(&self, dir: &Path, parent: Option<&Digest>) -> Result<NewLayer> {
        // Packing and unpacking run at once, joined by a pipe: no temp tar on disk.
        let (reader, writer) = io::pipe().at(dir)?;
        std::thread::scope(|s| {
            let packer = s.spawn(move || -> Result<()> {
                let w = layer::pack_dir(dir, io::BufWriter::with_capacity(1 << 20, writer))?;
                w.into_inner()
                    .map_err(|e| Error::Other(format!("writing layer tar: {}", e.error())))?;
                Ok(())
            });
            let added = self.add_layer_tar(io::BufReader::with_capacity(1 << 20, reader), parent);
            let packed = packer
                .join()
                .map_err(|_| Error::Other("layer packer panicked".into()))?;
            // A packing error ends the stream early, which could pass for a short tar:
            // it is the error to report.
            packed?;
            added
        })
    }
}
