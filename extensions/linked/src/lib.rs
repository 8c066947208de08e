//! The extensions linked into every runner (`functions/*`, `realnet`): the one place they
//! are listed. Adding one is a crate in `extensions/` and a line here (and its dependency in
//! this crate's `Cargo.toml`).

use realnet::extensions::Extension;

/// Every linked extension.
pub fn linked() -> Vec<Extension> {
    vec![realnet_crm::extension(), realnet_ops::extension()]
}
