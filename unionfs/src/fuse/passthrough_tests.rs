//! The per-inode mode rules, with a number standing in for the kernel's backing id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

const UPPER: Backing = Backing::Stable;
const LOWER: Backing = Backing::Lower { large: true };
const SMALL: Backing = Backing::Lower { large: false };

fn registers(id: u32) -> impl FnOnce() -> std::io::Result<u32> {
    move || Ok(id)
}

fn not_again() -> std::io::Result<u32> {
    panic!("a second backing file registered for one inode")
}

fn refused() -> std::io::Result<u32> {
    Err(std::io::Error::from_raw_os_error(libc::ELOOP))
}

fn passed(d: &Decision<u32>) -> Option<u32> {
    match d {
        Decision::Pass(id) => Some(**id),
        Decision::Serve => None,
    }
}

#[test]
fn handles_on_one_inode_share_one_backing_id() {
    let pt = Passthrough::new(PassthroughScope::Stable);
    assert_eq!(passed(&pt.open(7, 1, UPPER, registers(5))), Some(5));
    assert_eq!(passed(&pt.open(7, 2, UPPER, not_again)), Some(5));
    // Even a handle that would not be passed through on its own: the kernel refuses a
    // plain open beside a passed-through one.
    assert_eq!(passed(&pt.open(7, 3, LOWER, not_again)), Some(5));
}

#[test]
fn stable_scope_serves_lower_files() {
    let pt = Passthrough::new(PassthroughScope::Stable);
    assert!(matches!(pt.open(7, 1, LOWER, not_again), Decision::Serve));
    assert!(matches!(pt.open(8, 2, SMALL, not_again), Decision::Serve));
    assert!(
        pt.begin_data_change(7).is_ok(),
        "lower files are never held"
    );
}

#[test]
fn served_handles_keep_the_inode_served_until_the_last_closes() {
    let pt = Passthrough::new(PassthroughScope::Stable);
    pt.open(7, 1, LOWER, not_again);
    assert!(matches!(pt.open(7, 2, UPPER, not_again), Decision::Serve));
    pt.release(1);
    pt.release(2);
    assert_eq!(passed(&pt.open(7, 3, UPPER, registers(9))), Some(9));
}

#[test]
fn a_refused_registration_serves_the_inode() {
    let pt = Passthrough::new(PassthroughScope::All);
    assert!(matches!(pt.open(7, 1, LOWER, refused), Decision::Serve));
    assert!(matches!(pt.open(7, 2, LOWER, not_again), Decision::Serve));
    assert!(
        pt.begin_data_change(7).is_ok(),
        "a served lower file can be written"
    );
}

#[test]
fn a_lower_file_held_by_a_reader_cannot_change_until_it_is_released() {
    let pt = Passthrough::new(PassthroughScope::All);
    assert_eq!(passed(&pt.open(7, 1, LOWER, registers(5))), Some(5));
    let start = Instant::now();
    assert!(pt.begin_data_change(7).is_err());
    assert!(
        start.elapsed() >= RELEASE_GRACE,
        "waited for a late release first"
    );
    // Other inodes are not affected.
    assert!(pt.begin_data_change(8).is_ok());
    pt.release(1);
    assert!(pt.begin_data_change(7).is_ok());
}

#[test]
fn a_writer_waits_for_a_release_on_its_way() {
    let pt = Arc::new(Passthrough::new(PassthroughScope::All));
    pt.open(7, 1, LOWER, registers(5));
    let releaser = {
        let pt = Arc::clone(&pt);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            pt.release(1);
        })
    };
    assert!(
        pt.begin_data_change(7).is_ok(),
        "the release came within the grace time"
    );
    releaser.join().expect("releaser");
}

#[test]
fn a_lower_file_changing_is_not_passed_through() {
    let pt = Passthrough::new(PassthroughScope::All);
    let change = pt.begin_data_change(7).expect("nothing holds it");
    // A reader opening while a writer copies the file up is served, so its reads follow
    // the copy; the upper copy itself (stable) may still pass through.
    assert!(matches!(pt.open(7, 1, LOWER, not_again), Decision::Serve));
    drop(change);
    pt.release(1);
    assert_eq!(passed(&pt.open(7, 2, LOWER, registers(6))), Some(6));
}

#[test]
fn the_upper_copy_passes_through_while_it_changes() {
    let pt = Passthrough::new(PassthroughScope::All);
    let change = pt.begin_data_change(7).expect("nothing holds it");
    assert_eq!(passed(&pt.open(7, 1, UPPER, registers(5))), Some(5));
    drop(change);
    assert!(
        pt.begin_data_change(7).is_ok(),
        "an upper file can be written while passed through"
    );
}

#[test]
fn releasing_an_unknown_handle_changes_nothing() {
    let pt = Passthrough::new(PassthroughScope::All);
    pt.open(7, 1, LOWER, registers(5));
    pt.release(99);
    assert_eq!(passed(&pt.open(7, 2, LOWER, not_again)), Some(5));
}

#[test]
fn small_lower_files_are_served_under_all() {
    let pt = Passthrough::new(PassthroughScope::All);
    assert!(matches!(pt.open(7, 1, SMALL, not_again), Decision::Serve));
    assert!(
        pt.begin_data_change(7).is_ok(),
        "a served file can be written"
    );
}
