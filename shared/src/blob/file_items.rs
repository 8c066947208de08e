//! The behaviour of `File` items: they are made by `POST /api/files` (which declares the
//! content type and size), their `status`, `checksum`, `size` and `content_type` are the
//! server's (a file is `ready` only through confirm), and their name, shown to whoever
//! downloads them, may not hide paths or unicode tricks.

use async_trait::async_trait;

use crate::item::ItemError;
use crate::item::attributes::ValidationErrors;
use crate::item::behaviour::{Pending, TypeBehaviour};

pub struct FileItems;

#[async_trait]
impl TypeBehaviour for FileItems {
    fn made_by_server(&self) -> Option<&'static str> {
        Some("files are made with POST /api/files, which says where to upload their bytes")
    }

    async fn check(&self, w: &Pending<'_>, errors: &mut ValidationErrors) -> Result<(), ItemError> {
        if let Err(m) = super::check_file_name(&w.item.name) {
            errors.add("name", m);
        }
        Ok(())
    }
}
