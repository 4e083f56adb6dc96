//! A bound on how many merged directory entries the directory indexes hold at once.
//!
//! A directory's index is only a cache of what its layer directories say, and it is
//! consulted mostly while the directory is first read and its names first looked up:
//! after that the kernel answers from its own dentry and listing caches. Yet an index
//! would live as long as the kernel keeps the directory's inode, which after a walk of
//! an image is every directory: as much memory again as the inodes themselves. So each
//! built index joins a CLOCK queue with its entry count; past the budget the oldest
//! index not used since its last pass is dropped, to be rebuilt from the layers if the
//! directory is ever looked into again. An index in use (locked) is never dropped.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, TryLockError};

use super::dirindex::DirIndex;
use super::node::{NodeId, NodeTable};

/// Entries kept by default: a few large directories' worth (`/usr/bin`,
/// `/usr/lib/x86_64-linux-gnu`) and the chain of directories above them, about a
/// megabyte of memory.
pub const DEFAULT_DIR_CACHE_ENTRIES: usize = 8192;

/// The queue of built directory indexes, oldest first.
#[derive(Debug)]
pub struct DirCache {
    budget: usize,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    /// Directories with a built index, and its entry count when built.
    dirs: VecDeque<(NodeId, usize)>,
    /// Sum of the counts in `dirs`.
    entries: usize,
}

impl DirCache {
    /// A cache keeping about `budget` entries (`usize::MAX`: never drop an index; 0: keep
    /// only the index built last, with no second chance for any other).
    pub fn new(budget: usize) -> Self {
        DirCache {
            budget,
            queue: Mutex::new(Queue::default()),
        }
    }

    /// Records that directory `id` just built an index of `entries` names, and drops
    /// the indexes of directories unused for longest while the total is over budget.
    /// Never blocks on a directory's lock: one in use is passed over.
    pub fn admit(&self, nodes: &NodeTable, id: NodeId, entries: usize) {
        if self.budget == usize::MAX {
            return;
        }
        let mut dropped: Vec<Box<DirIndex>> = Vec::new();
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.dirs.push_back((id, entries));
            q.entries += entries;
            // One pass at most: a directory used since its last pass gets a second chance
            // and the next admission finds it unused.
            let mut visits = q.dirs.len();
            while q.entries > self.budget && visits > 0 {
                visits -= 1;
                let Some((victim, count)) = q.dirs.pop_front() else {
                    break;
                };
                let keep = victim == id
                    || match nodes
                        .get(victim)
                        .as_deref()
                        .and_then(|n| n.dir_part_if_any())
                    {
                        None => false,
                        Some(d) if self.budget > 0 && d.used.swap(false, Ordering::Relaxed) => true,
                        Some(d) => match d.index.try_write() {
                            Ok(mut guard) => {
                                dropped.extend(guard.take());
                                false
                            }
                            Err(TryLockError::Poisoned(p)) => {
                                dropped.extend(p.into_inner().take());
                                false
                            }
                            Err(TryLockError::WouldBlock) => true,
                        },
                    };
                if keep {
                    q.dirs.push_back((victim, count));
                } else {
                    q.entries -= count;
                }
            }
        }
        // Freed outside the queue's lock: a large index takes a while to free.
        drop(dropped);
    }
}

#[cfg(test)]
#[path = "dircache_tests.rs"]
mod tests;
