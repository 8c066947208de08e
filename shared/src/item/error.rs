//! Why an item operation did not happen: each variant is one answer at the edge (`422`,
//! `404`, `409`, `401`, `403`, `503`).

use uuid::Uuid;

use super::attributes::ValidationErrors;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("no item with id {0}")]
    NotFound(Uuid),
    #[error("{0}")]
    Cycle(String),
    /// The caller has no credentials and the public may not do this.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(StoreError),
    /// Too many passwords are being hashed: try again shortly.
    #[error(transparent)]
    Busy(#[from] crate::auth::password::Busy),
}

impl From<StoreError> for ItemError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ItemError::NotFound(id),
            e => ItemError::Store(e),
        }
    }
}
