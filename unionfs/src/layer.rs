//! The stack of layer directories a union is made of.
//!
//! Layers are held open as descriptors from the start: every later access is relative to
//! them, so a layer path that is renamed or replaced while mounted can not redirect us,
//! and no absolute path string is ever rebuilt.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Why a layer stack could not be opened; each names the directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A layer directory is missing or unreadable.
    #[error("{role} {path}: {source}")]
    Open {
        /// Which option named it (`lowerdir`, `upperdir`, `workdir`).
        role: &'static str,
        /// The directory.
        path: PathBuf,
        /// What the kernel said.
        source: nix::errno::Errno,
    },
    /// A layer is not a directory.
    #[error("{role} {path}: not a directory")]
    NotDir {
        /// Which option named it.
        role: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// No lower layer was given.
    #[error("no lowerdir given: at least one lower layer is needed")]
    NoLower,
    /// More layers than a layer number can count.
    #[error("{0} layers: at most {max} are supported", max = MAX_LAYERS)]
    TooMany(usize),
}

/// The most layers a stack may have (upper included; one number stays free for the
/// hard-link index). Kernel overlayfs allows 500 lower layers, Docker 125.
pub const MAX_LAYERS: usize = LayerIdx::MAX as usize - 1;

/// One layer directory of the stack.
#[derive(Debug)]
pub struct Layer {
    /// The path it was opened from, for messages and for the image manager.
    pub path: PathBuf,
    /// `O_PATH` descriptor of its root; everything else is opened relative to it.
    pub root: OwnedFd,
    /// Device of the layer's root, to keep inode numbers unique across filesystems.
    pub dev: u64,
    /// The filesystem's UUID (`FS_IOC_GETFSUUID`), part of overlayfs' origin handles;
    /// all zeros where the filesystem has none.
    pub uuid: [u8; 16],
    /// A real (not `O_PATH`) descriptor of the root, for the calls that refuse `O_PATH`
    /// (`open_by_handle_at`'s mount descriptor, ioctls).
    pub real: OwnedFd,
}

impl Layer {
    /// Opens a layer directory, naming `role` in errors.
    pub fn open(role: &'static str, path: &Path) -> Result<Self, LayerError> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| match source {
            nix::errno::Errno::ENOTDIR => LayerError::NotDir {
                role,
                path: path.to_path_buf(),
            },
            source => LayerError::Open {
                role,
                path: path.to_path_buf(),
                source,
            },
        })?;
        let st = crate::sys::stat_fd(root.as_fd()).map_err(|source| LayerError::Open {
            role,
            path: path.to_path_buf(),
            source,
        })?;
        let real = crate::sys::open_child(
            root.as_fd(),
            std::ffi::OsStr::new("."),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            0,
        )
        .map_err(|source| LayerError::Open {
            role,
            path: path.to_path_buf(),
            source,
        })?;
        let uuid = crate::sys::handle::fs_uuid(real.as_fd()).unwrap_or([0; 16]);
        Ok(Layer {
            path: path.to_path_buf(),
            root,
            dev: st.st_dev,
            uuid,
            real,
        })
    }

    /// The root descriptor, borrowed.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

/// Index of a layer in a [`LayerStack`]: 0 is the top (the upper layer when there is one).
/// Two bytes: it is stored in every merged entry and node.
pub type LayerIdx = u16;

/// The layers top-down, the upper (writable) one first when present.
#[derive(Debug)]
pub struct LayerStack {
    layers: Vec<Layer>,
    has_upper: bool,
    inos: InoMapper,
    index: Option<Layer>,
}

impl LayerStack {
    /// Builds a stack from an optional upper layer and the lower layers, top first.
    pub fn new(upper: Option<Layer>, lowers: Vec<Layer>) -> Result<Self, LayerError> {
        if lowers.is_empty() {
            return Err(LayerError::NoLower);
        }
        let has_upper = upper.is_some();
        let layers: Vec<Layer> = upper.into_iter().chain(lowers).collect();
        if layers.len() > MAX_LAYERS {
            return Err(LayerError::TooMany(layers.len()));
        }
        let inos = InoMapper::new(layers.iter().map(|l| l.dev));
        Ok(LayerStack {
            layers,
            has_upper,
            inos,
            index: None,
        })
    }

    /// Adds the hard-link index directory (in the work directory) as a pseudo-layer,
    /// so index entries are reached like any layer entry; returns its index.
    pub fn set_index(&mut self, index: Layer) -> LayerIdx {
        self.index = Some(index);
        self.count()
    }

    /// The pseudo-layer index of the hard-link index, if there is one.
    pub fn index_idx(&self) -> Option<LayerIdx> {
        self.index.as_ref().map(|_| self.count())
    }

    /// Number of real layers, as a layer number (bounded by [`MAX_LAYERS`] in `new`).
    fn count(&self) -> LayerIdx {
        self.layers.len() as LayerIdx
    }

    /// Opens lower directories (top first) and an optional upper directory.
    pub fn open(lowers: &[PathBuf], upper: Option<&Path>) -> Result<Self, LayerError> {
        let upper = upper.map(|p| Layer::open("upperdir", p)).transpose()?;
        let lowers = lowers
            .iter()
            .map(|p| Layer::open("lowerdir", p))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(upper, lowers)
    }

    /// The writable layer, if the union has one.
    pub fn upper(&self) -> Option<&Layer> {
        if self.has_upper {
            self.layers.first()
        } else {
            None
        }
    }

    /// Index of the upper layer, if any.
    pub fn upper_idx(&self) -> Option<LayerIdx> {
        self.has_upper.then_some(0)
    }

    /// True when `idx` is the upper layer.
    pub fn is_upper(&self, idx: LayerIdx) -> bool {
        self.has_upper && idx == 0
    }

    /// The indexes of the read-only layers, top first.
    pub fn lower_indexes(&self) -> std::ops::Range<LayerIdx> {
        (self.has_upper as LayerIdx)..self.count()
    }

    /// The layer at `idx` (one past the real layers: the hard-link index).
    pub fn get(&self, idx: LayerIdx) -> &Layer {
        match (self.layers.get(usize::from(idx)), &self.index) {
            (Some(layer), _) => layer,
            (None, Some(index)) => index,
            (None, None) => &self.layers[self.layers.len() - 1],
        }
    }

    /// All layers top-down.
    pub fn all(&self) -> &[Layer] {
        &self.layers
    }

    /// The inode number the union reports for a file whose real identity is `(dev, ino)`.
    pub fn map_ino(&self, dev: u64, ino: u64) -> u64 {
        self.inos.map(dev, ino)
    }
}

/// Gives every file of the stack an inode number unique within the union.
///
/// When all layers share one filesystem the real inode numbers are already unique and are
/// used as they are (as kernel overlayfs does). Otherwise the filesystem's position among
/// the stack's distinct filesystems goes into the top bits, as overlayfs' `xino` does;
/// that position depends only on the layer order, so numbers survive a remount.
#[derive(Debug)]
pub struct InoMapper {
    fs_index: HashMap<u64, u64>,
}

/// Bits left for the real inode number when several filesystems are stacked.
const XINO_SHIFT: u32 = 56;

impl InoMapper {
    fn new(devs: impl Iterator<Item = u64>) -> Self {
        let mut fs_index = HashMap::new();
        for dev in devs {
            let next = fs_index.len() as u64;
            fs_index.entry(dev).or_insert(next);
        }
        InoMapper { fs_index }
    }

    /// Maps a real `(dev, ino)` to the union's inode number.
    pub fn map(&self, dev: u64, ino: u64) -> u64 {
        let mapped = self.map_raw(dev, ino);
        // Node id 1 is the FUSE root and node ids are inode numbers: move a file that
        // really has inode 1 out of the way.
        if mapped == 1 {
            (0xfe << XINO_SHIFT) | 1
        } else {
            mapped
        }
    }

    fn map_raw(&self, dev: u64, ino: u64) -> u64 {
        if self.fs_index.len() <= 1 {
            return ino;
        }
        let fs = self.fs_index.get(&dev).copied().unwrap_or(0xff);
        let low = ino & ((1u64 << XINO_SHIFT) - 1);
        if low != ino {
            // Out of room: fold the high bits in so the number stays stable, if not unique.
            return (fs << XINO_SHIFT) | (low ^ (ino >> XINO_SHIFT));
        }
        (fs << XINO_SHIFT) | low
    }
}
