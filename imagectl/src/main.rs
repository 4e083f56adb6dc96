//! imagectl
fn main() {}
