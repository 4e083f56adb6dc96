//! unionfsd
fn main() {}
