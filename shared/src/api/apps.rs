//! `/api/apps`: the app items (`App` and its subtypes) the caller may read, each with the views
//! its type defines, and `/api/apps/{id}/views/{view}`, which runs one view's query as the
//! caller. Both are item queries underneath, so they go through the same access filter, paging
//! and cursor signing as `GET /api/items`. A caller may narrow a view with further filters of
//! that syntax but never change or drop one the view sets: a view is a lens an admin chose, and
//! a client must not widen it by overriding its parameters.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

use super::extract::{PathParams, QueryPairs, item_id};
use super::items::{ItemPage, page};
use super::state::ApiState;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::item::Item;
use crate::item::ops;
use crate::query::{ItemQuery, QueryError};
use crate::types::View;

/// The core type every app type inherits from.
const APP: &str = "App";

/// Parameters a caller may set although the fixed query sets them: they order and size a
/// page, they do not choose which items belong to it.
const OVERRIDABLE: &[&str] = &["sort", "limit"];

/// An app item and the views of its type.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AppEntry {
    #[serde(flatten)]
    item: Item,
    /// The views of the app's type, each a named query in the `GET /api/items` syntax; run one
    /// with `GET /api/apps/{id}/views/{name}`.
    views: Vec<View>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AppPage {
    items: Vec<AppEntry>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// `fixed` with the caller's `extra` parameters added. Adding a parameter only narrows an item
/// query (every filter must hold), so an extra one is accepted unless the fixed query already
/// sets it, which would replace the fixed filter; `sort` and `limit` may be replaced.
fn narrowed(
    fixed: Vec<(String, String)>,
    extra: Vec<(String, String)>,
    what: &str,
) -> Result<Vec<(String, String)>, QueryError> {
    for (at, (key, _)) in extra.iter().enumerate() {
        if extra[..at].iter().any(|(k, _)| k == key) {
            return Err(QueryError::new(
                key,
                format!("{key} is given more than once"),
            ));
        }
    }
    let mut params = fixed;
    for (key, value) in extra {
        match params.iter().position(|(k, _)| *k == key) {
            Some(at) if OVERRIDABLE.contains(&key.as_str()) => params[at].1 = value,
            Some(_) => {
                return Err(QueryError::new(
                    &key,
                    format!(
                        "{what} sets {key} itself: add other filters to narrow it, it cannot be changed"
                    ),
                ));
            }
            None => params.push((key, value)),
        }
    }
    Ok(params)
}

#[utoipa::path(get, path = "/api/apps", operation_id = "list_apps", tag = "apps",
    params(
        ("name" = Option<String>, Query, description = "Exact name, or a prefix ending in *"),
        ("q" = Option<String>, Query, description = "Words to find in the name and string attributes"),
        ("sort" = Option<String>, Query, description = "name (the default), created, updated or attr.<field>; - for descending"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, description = "A page of the apps the caller may read, each with its type's views", body = AppPage),
        (status = 400, description = "Unknown or refused parameter, or a bad cursor", body = ErrorBody)))]
pub async fn list(
    State(api): State<ApiState>,
    principal: Principal,
    QueryPairs(params): QueryPairs,
) -> Result<Json<AppPage>, ApiError> {
    let fixed = vec![
        ("type".to_string(), APP.to_string()),
        ("sort".to_string(), "name".to_string()),
    ];
    let params = narrowed(fixed, params, "the app list")?;
    let query = ItemQuery::parse(&api.rn.types, &params, None)?;
    let Json(ItemPage { items, next_cursor }) = page(&api, &principal, query).await?;
    let items = items
        .into_iter()
        .map(|item| AppEntry {
            views: api
                .rn
                .types
                .get(&item.type_name)
                .map(|t| t.views.clone())
                .unwrap_or_default(),
            item,
        })
        .collect();
    Ok(Json(AppPage { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/apps/{id}/views/{view}", operation_id = "run_view", tag = "apps",
    params(
        ("id" = Uuid, Path, description = "App item id"),
        ("view" = String, Path, description = "The name of one of the app type's views"),
        ("name" = Option<String>, Query, description = "Narrows the view: exact name, or a prefix ending in *"),
        ("q" = Option<String>, Query, description = "Narrows the view: words to find in the name and string attributes"),
        ("sort" = Option<String>, Query, description = "Replaces the view's sort: name, created, updated or attr.<field>; - for descending"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, description = "A page of the items the view selects that the caller may read", body = ItemPage),
        (status = 400, description = "Malformed id; an unknown parameter, field, operator or sort key; one the view sets itself; or a bad cursor", body = ErrorBody),
        (status = 404, description = "No such app, the caller may not read it, its type is no longer defined, or its type has no such view", body = ErrorBody)))]
pub async fn view(
    State(api): State<ApiState>,
    principal: Principal,
    PathParams(path): PathParams<HashMap<String, String>>,
    QueryPairs(params): QueryPairs,
) -> Result<Json<ItemPage>, ApiError> {
    let raw = |key: &str| path.get(key).map(String::as_str).unwrap_or_default();
    let id = item_id(raw("id"))?;
    let name = raw("view");
    let types = &api.rn.types;
    let app = ops::get(&api.rn, &principal, id, None).await?;
    // An app stored while its type was defined outlives a change of definitions; its views
    // went with the type.
    let Some(app_type) = types.get(&app.type_name) else {
        return Err(ApiError::not_found(format!(
            "app {id} is of type {:?}, which this deployment no longer defines: it has no views",
            app.type_name
        )));
    };
    if !types.is_a(&app_type.name, APP) {
        return Err(ApiError::not_found(format!(
            "item {id} is not an app: its type {} does not derive from App",
            app_type.name
        )));
    }
    let view = app_type.view(name).ok_or_else(|| {
        let known: Vec<&str> = app_type.views.iter().map(|v| v.name.as_str()).collect();
        ApiError::not_found(format!(
            "app type {} has no view {name:?}; its views: {}",
            app_type.name,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })?;
    let params = narrowed(view_params(view), params, &format!("view {name:?}"))?;
    let query = ItemQuery::parse(types, &params, None)?;
    page(&api, &principal, query).await
}

/// A view's query as query parameters. The loader checked that every value is a string and
/// that the whole query parses, so a deployment whose definitions break a view does not start.
fn view_params(view: &View) -> Vec<(String, String)> {
    view.query
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_caller_narrows_a_fixed_query_but_never_replaces_a_filter() {
        let fixed = pairs(&[("type", "Deal"), ("attr.stage", "won"), ("sort", "name")]);
        let more = narrowed(
            fixed.clone(),
            pairs(&[("q", "acme"), ("sort", "-updated"), ("limit", "5")]),
            "view",
        )
        .expect("narrowing is fine");
        assert_eq!(
            more,
            pairs(&[
                ("type", "Deal"),
                ("attr.stage", "won"),
                ("sort", "-updated"),
                ("q", "acme"),
                ("limit", "5")
            ])
        );
        let twice = narrowed(fixed.clone(), pairs(&[("q", "a"), ("q", "b")]), "view")
            .expect_err("a parameter given twice");
        assert_eq!(twice.to_string(), "q is given more than once");
        for key in ["type", "attr.stage"] {
            let err = narrowed(fixed.clone(), pairs(&[(key, "x")]), "view")
                .expect_err("a fixed filter cannot be replaced");
            assert_eq!(err.parameter(), Some(key));
        }
    }
}
