//! The extensions linked into every runner (`functions/*`, `realnet`): the one place they
//! are listed. Adding one is a crate in `extensions/` and a line here (and its dependency in
//! this crate's `Cargo.toml`).

use realnet::extensions::Extension;

/// Every linked extension.
pub fn linked() -> Vec<Extension> {
    vec![realnet_crm::extension(), realnet_ops::extension()]
}

#[cfg(test)]
mod tests {
    /// Handlers' input schemas compile when first used; each linked one must compile.
    #[test]
    fn every_handler_input_schema_compiles() {
        for e in super::linked() {
            for h in e.handlers() {
                h.check_schemas()
                    .unwrap_or_else(|m| panic!("extension {}: {m}", e.name));
            }
        }
    }
}
