//! A checked change: what the item operations prepare and commit, alone or with others.

use super::Item;
use crate::store::Write;

/// A checked change, ready to be written with others in one transaction by
/// [`super::ops::commit`].
#[derive(Debug)]
pub struct Prepared {
    pub(crate) writes: Vec<Write>,
    /// The item as it will be (none for a delete).
    pub item: Option<Item>,
    /// The types written, whose behaviours run once the write committed.
    pub(crate) types: Vec<String>,
    /// An API key's token, to show once.
    pub(crate) secret: Option<String>,
}
