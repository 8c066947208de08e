//! The initialization folder is compiled into the library (see `types::embedded`); rebuild
//! when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../initialization");
}
