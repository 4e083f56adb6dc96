//! READs of lower files answered from a mapping of the file, not a copy in a buffer.
//!
//! Served through a buffer, every byte of a lower file is copied twice: `pread` from
//! the page cache into the buffer, then `writev` from the buffer into the kernel's
//! request. Mapping the requested range and handing the mapping to `writev` leaves one
//! copy, page cache to request, the one libfuse gets by splicing (which fuser can't do).
//! Measured on the bench's cold 1 GiB read: 0.80 s through a buffer, 0.53 s mapped,
//! fuse-overlayfs 0.53 s (BENCHMARKS.md).
//!
//! Only lower files are mapped. Layers don't change while mounted (overlayfs says the
//! same of its lower dirs), so the range checked against the file's size stays inside
//! it. Should a layer be truncated from outside anyway, nothing in the daemon touches
//! the mapped bytes: only the kernel reads them, inside `writev`, and a fault past the
//! end of a file there fails the call with `EFAULT` (the reader gets `EIO`) rather than
//! raising `SIGBUS` in the daemon. Upper files are changed by the daemon itself while
//! other requests read them, so they keep the buffer.
//!
//! Each READ maps its own range and unmaps it when the reply is sent, so the daemon's
//! resident set never holds more than the ranges being answered: mapping a whole file
//! once would put every page read into the daemon's RSS.

use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd};

use memmap2::{Mmap, MmapOptions};

use super::Union;
use crate::sys::{self, SysResult};

/// A range of a lower file, mapped read-only for the length of one reply; empty past
/// the end of the file.
#[derive(Debug)]
pub struct MappedRange(Option<Mmap>);

impl Deref for MappedRange {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl Union {
    /// Maps up to `size` bytes from `offset` of the lower file behind handle `fh`, or
    /// `None` when the handle reads an upper file or the file can't be mapped (then
    /// [`Union::read_into`] answers).
    pub fn map_lower_range(
        &self,
        fh: u64,
        offset: u64,
        size: usize,
    ) -> SysResult<Option<MappedRange>> {
        let Some(fd) = self.lower_read_fd(fh)? else {
            return Ok(None);
        };
        let file_size = u64::try_from(sys::stat_fd(fd.as_fd())?.st_size).unwrap_or(0);
        let len = file_size.saturating_sub(offset).min(size as u64);
        if len == 0 {
            return Ok(Some(MappedRange(None)));
        }
        let mut options = MmapOptions::new();
        options.offset(offset).len(len as usize);
        // SAFETY: a read-only shared mapping of a file of a read-only layer, within the
        // size it has now. The bytes are only read by the kernel, in `writev`, where a
        // page gone from under the mapping fails the call instead of faulting the daemon
        // (module doc); the daemon never dereferences them itself.
        match unsafe { options.map(fd.as_raw_fd()) } {
            Ok(map) => Ok(Some(MappedRange(Some(map)))),
            // Not every layer's filesystem can map its files (a FUSE layer serving
            // `direct_io` answers ENODEV): the buffer reads those.
            Err(e) => {
                log::debug!(
                    "mapping a lower file for a READ failed ({e}); reading it into a buffer"
                );
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    use memmap2::MmapOptions;

    /// What the module's safety rests on: a mapped page gone past a truncated end makes
    /// a `write` from it fail with `EFAULT`; the process gets no `SIGBUS`.
    #[test]
    fn a_write_from_a_mapping_past_a_truncated_end_fails_without_a_signal() {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(&vec![7u8; 64 * 1024]).expect("fill");
        // SAFETY: the test truncates the file on purpose and only the kernel reads the
        // mapping afterwards.
        let map = unsafe { MmapOptions::new().len(64 * 1024).map(file.as_raw_fd()) }.expect("map");
        file.set_len(0).expect("truncate");
        let (_reader, writer) = nix::unistd::pipe().expect("pipe");
        let result = nix::unistd::write(&writer, &map[32 * 1024..36 * 1024]);
        assert_eq!(result, Err(nix::errno::Errno::EFAULT));
    }
}
