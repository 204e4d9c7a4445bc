//! The `breakerd` command line.
fn main() {}
