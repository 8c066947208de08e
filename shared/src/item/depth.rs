//! The bound on how deep item hierarchies go (`REALNET_MAX_DEPTH`, 64 levels by default). A
//! root item is at level 1; no item is created or moved below the last level, so that every
//! walk up a hierarchy (the access check of each request) stays short, on every store.

use uuid::Uuid;

use super::attributes::ValidationErrors;
use crate::context::Realnet;
use crate::store::StoreError;

/// Refuses, as an error on `parent`, to put an item under `parent` if that puts it (or, for
/// the `moved` item, its deepest descendant) below the last level. Skipped when `parent` is
/// already refused: an unreadable parent must not reveal how deep it is.
pub(crate) async fn check(
    rn: &Realnet,
    org: &str,
    parent: Option<Uuid>,
    moved: Option<Uuid>,
    errors: &mut ValidationErrors,
) -> Result<(), StoreError> {
    let Some(parent) = parent else {
        return Ok(());
    };
    if errors.0.iter().any(|(field, _)| field == "parent") {
        return Ok(());
    }
    let max = rn.config.max_depth;
    // The parent's ancestors and the parent, then the item: a walk cut short at `max` puts
    // the item beyond the last level already.
    let above = rn.store.ancestors(org, parent, max).await?;
    if moved.is_some_and(|id| id == parent || above.contains(&id)) {
        // A move under itself: the cycle check refuses it, for the right reason.
        return Ok(());
    }
    let level = above.len() + 2;
    let below = match moved {
        Some(id) if level <= max => rn.store.levels_below(org, id, max + 1 - level).await?,
        _ => 0,
    };
    if level + below > max {
        let what = if below > 0 {
            "its deepest descendant"
        } else {
            "the item"
        };
        let at = if level > max + 1 {
            format!("below level {max}")
        } else {
            format!("at level {}", level + below)
        };
        errors.add(
            "parent",
            format!(
                "items nest at most {max} levels deep (REALNET_MAX_DEPTH): under {parent}, {what} would be {at}"
            ),
        );
    }
    Ok(())
}
