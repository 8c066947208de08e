//! The item query language of `GET /api/items` and of app views: parsing query parameters into
//! a checked [`ItemQuery`]. Every field name and value is checked against the type registry
//! here, so the stores only ever see names taken from the registry and typed values.

pub mod cursor;
mod eval;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::item::Item;
use crate::types::value::parse_datetime;
use crate::types::{FieldKind, TypeRegistry};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
const MAX_WORDS: usize = 8;

/// A query parameter that could not be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    parameter: Option<String>,
    message: String,
}

impl QueryError {
    pub fn new(parameter: &str, message: impl Into<String>) -> Self {
        QueryError {
            parameter: Some(parameter.to_string()),
            message: message.into(),
        }
    }

    /// The query parameter at fault, if one is.
    pub fn parameter(&self) -> Option<&str> {
        self.parameter.as_deref()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParentFilter {
    Root,
    Id(Uuid),
}

#[derive(Debug, Clone, PartialEq)]
pub enum NameFilter {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
}

/// A typed value to compare with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
}

/// `attr.<field>[.<op>]=<value>`, with the field's kind from the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrFilter {
    pub field: String,
    pub kind: FieldKind,
    pub op: Op,
    /// One value, or several for `in`.
    pub values: Vec<Scalar>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Name,
    Created,
    Updated,
    Attr { field: String, kind: FieldKind },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// The sort as written in a query (`-attr.amount`), also used to bind cursors to it.
    pub fn spec(&self) -> String {
        let key = match &self.key {
            SortKey::Name => "name".to_string(),
            SortKey::Created => "created".to_string(),
            SortKey::Updated => "updated".to_string(),
            SortKey::Attr { field, .. } => format!("attr.{field}"),
        };
        if self.descending {
            format!("-{key}")
        } else {
            key
        }
    }

    /// Where `item` stands in this order: the keyset a next page starts after.
    pub fn position_of(&self, item: &Item) -> Position {
        let value = match &self.key {
            SortKey::Name => Some(Scalar::Text(item.name.clone())),
            SortKey::Created => Some(Scalar::Time(item.created_at)),
            SortKey::Updated => Some(Scalar::Time(item.updated_at)),
            SortKey::Attr { field, kind } => item
                .attributes
                .get(field)
                .and_then(|v| scalar_from_json(*kind, v)),
        };
        Position { value, id: item.id }
    }
}

/// A keyset position: the sort value (absent attributes sort last) and the id.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub value: Option<Scalar>,
    pub id: Uuid,
}

/// Which items a query may return. Set from the caller's access rules (never from query
/// parameters) and applied by the store inside the query itself, so pages stay full and
/// cursors stay correct.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Readable {
    /// Everything in the org (org admins, the installation).
    #[default]
    All,
    /// Items of `types`, items of `owned_types` owned by `owner`, and the items of
    /// `subtrees` (each root and its descendants). With all of them empty, nothing.
    Only {
        types: Vec<String>,
        owner: Option<Uuid>,
        owned_types: Vec<String>,
        subtrees: Vec<Uuid>,
    },
}

/// A checked item query.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemQuery {
    /// The type asked for; `types` holds it and its subtypes.
    pub type_name: Option<String>,
    pub types: Vec<String>,
    pub parent: Option<ParentFilter>,
    pub name: Option<NameFilter>,
    /// Lowercased words that must all occur in the name or a string attribute.
    pub words: Vec<String>,
    pub attrs: Vec<AttrFilter>,
    pub sort: Sort,
    pub limit: usize,
    /// The raw `cursor` parameter; see [`cursor::CursorCodec::decode`].
    pub cursor: Option<String>,
    /// The position this page starts after, once the cursor is decoded.
    pub after: Option<Position>,
    pub readable: Readable,
}

impl ItemQuery {
    /// Parses query parameters. `scope` restricts the query to a type and its subtypes (type
    /// endpoints such as `/api/files`).
    pub fn parse(
        registry: &TypeRegistry,
        params: &[(String, String)],
        scope: Option<&str>,
    ) -> Result<ItemQuery, QueryError> {
        let mut seen = std::collections::HashSet::new();
        for (key, value) in params {
            if key.contains('\0') || value.contains('\0') {
                return Err(QueryError::new(
                    key,
                    format!("{key} contains a NUL character"),
                ));
            }
            if !seen.insert(key.as_str()) {
                return Err(QueryError::new(
                    key,
                    format!("{key} is given more than once"),
                ));
            }
        }
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };

        let type_name = match (get("type"), scope) {
            (Some(t), _) if registry.get(t).is_none() => {
                return Err(QueryError::new("type", format!("unknown type {t:?}")));
            }
            (Some(t), Some(s)) if !registry.is_a(t, s) => {
                return Err(QueryError::new(
                    "type",
                    format!("type {t:?} is not a {s} and cannot be listed here"),
                ));
            }
            (Some(t), _) => Some(t.to_string()),
            (None, s) => s.map(str::to_string),
        };
        let types = type_name
            .as_deref()
            .map(|t| registry.subtypes(t).to_vec())
            .unwrap_or_default();
        let type_def = type_name.as_deref().and_then(|t| registry.get(t));

        let mut query = ItemQuery {
            type_name: type_name.clone(),
            types,
            parent: None,
            name: None,
            words: Vec::new(),
            attrs: Vec::new(),
            sort: Sort {
                key: SortKey::Created,
                descending: false,
            },
            limit: DEFAULT_LIMIT,
            cursor: None,
            after: None,
            readable: Readable::All,
        };
        let field_of = |param: &str, name: &str| {
            let Some(t) = type_def else {
                return Err(QueryError::new(
                    param,
                    format!("{param} needs a type=... so that the field {name:?} has a meaning"),
                ));
            };
            t.field(name).ok_or_else(|| {
                QueryError::new(
                    param,
                    format!(
                        "type {} has no field {name:?}{}",
                        t.name,
                        t.field_hint(name)
                    ),
                )
            })
        };

        for (key, value) in params {
            match key.as_str() {
                "type" => {}
                "parent" => {
                    query.parent = Some(if value == "root" {
                        ParentFilter::Root
                    } else {
                        ParentFilter::Id(Uuid::parse_str(value).map_err(|_| {
                            QueryError::new(
                                "parent",
                                format!("{value:?} is not an item id or root"),
                            )
                        })?)
                    })
                }
                "name" => {
                    if value.is_empty() || value.len() > 255 {
                        return Err(QueryError::new("name", "name must be 1 to 255 characters"));
                    }
                    query.name = Some(match value.strip_suffix('*') {
                        Some(prefix) => NameFilter::Prefix(prefix.to_string()),
                        None => NameFilter::Exact(value.clone()),
                    })
                }
                "q" => {
                    let words: Vec<String> =
                        value.split_whitespace().map(str::to_lowercase).collect();
                    if words.is_empty() || words.len() > MAX_WORDS || value.len() > 200 {
                        return Err(QueryError::new(
                            "q",
                            format!("q takes 1 to {MAX_WORDS} words, 200 characters at most"),
                        ));
                    }
                    query.words = words;
                }
                "sort" => {
                    let (descending, key) = match value.strip_prefix('-') {
                        Some(k) => (true, k),
                        None => (false, value.as_str()),
                    };
                    let key = match key {
                        "name" => SortKey::Name,
                        "created" => SortKey::Created,
                        "updated" => SortKey::Updated,
                        other => match other.strip_prefix("attr.") {
                            Some(f) => {
                                let field = field_of("sort", f)?;
                                if field.kind == FieldKind::Json {
                                    return Err(QueryError::new(
                                        "sort",
                                        format!("json field {f:?} cannot be sorted on"),
                                    ));
                                }
                                SortKey::Attr {
                                    field: field.name.clone(),
                                    kind: field.kind,
                                }
                            }
                            None => {
                                return Err(QueryError::new(
                                    "sort",
                                    format!(
                                        "unknown sort key {other:?}: use name, created, updated or attr.<field>, with - for descending"
                                    ),
                                ));
                            }
                        },
                    };
                    query.sort = Sort { key, descending };
                }
                "limit" => {
                    query.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            QueryError::new(
                                "limit",
                                format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                }
                "cursor" => query.cursor = Some(value.clone()),
                other => {
                    let Some(rest) = other.strip_prefix("attr.") else {
                        return Err(QueryError::new(
                            other,
                            format!(
                                "unknown query parameter {other:?}: use type, parent, name, q, attr.<field>[.<op>], sort, limit or cursor"
                            ),
                        ));
                    };
                    let (name, op) = match rest.split_once('.') {
                        None => (rest, Op::Eq),
                        Some((name, op)) => (
                            name,
                            match op {
                                "ne" => Op::Ne,
                                "gt" => Op::Gt,
                                "gte" => Op::Gte,
                                "lt" => Op::Lt,
                                "lte" => Op::Lte,
                                "in" => Op::In,
                                _ => {
                                    return Err(QueryError::new(
                                        other,
                                        format!(
                                            "unknown operator {op:?}: use ne, gt, gte, lt, lte or in"
                                        ),
                                    ));
                                }
                            },
                        ),
                    };
                    let field = field_of(other, name)?;
                    if field.kind == FieldKind::Json {
                        return Err(QueryError::new(
                            other,
                            format!("json field {name:?} cannot be filtered on"),
                        ));
                    }
                    let raw: Vec<&str> = if op == Op::In {
                        value.split(',').collect()
                    } else {
                        vec![value.as_str()]
                    };
                    if raw.len() > 50 {
                        return Err(QueryError::new(other, "in takes at most 50 values"));
                    }
                    let values = raw
                        .into_iter()
                        .map(|v| scalar_from_param(field.kind, field, v))
                        .collect::<Result<Vec<_>, String>>()
                        .map_err(|m| QueryError::new(other, m))?;
                    query.attrs.push(AttrFilter {
                        field: field.name.clone(),
                        kind: field.kind,
                        op,
                        values,
                    });
                }
            }
        }
        Ok(query)
    }
}

/// A query-string value as a typed scalar of `kind`.
fn scalar_from_param(
    kind: FieldKind,
    field: &crate::types::Field,
    raw: &str,
) -> Result<Scalar, String> {
    match kind {
        FieldKind::Integer => raw
            .parse()
            .map(Scalar::Int)
            .map_err(|_| format!("{raw:?} is not an integer")),
        FieldKind::Number => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Scalar::Float)
            .ok_or_else(|| format!("{raw:?} is not a number")),
        FieldKind::Boolean => match raw {
            "true" => Ok(Scalar::Bool(true)),
            "false" => Ok(Scalar::Bool(false)),
            _ => Err(format!("{raw:?} is not true or false")),
        },
        FieldKind::Datetime => {
            parse_datetime(raw).map(|t| Scalar::Text(crate::types::value::format_datetime(t)))
        }
        FieldKind::Enum | FieldKind::Ref | FieldKind::File => field
            .check(&Value::String(raw.to_string()))
            .map(|v| Scalar::Text(v.as_str().unwrap_or_default().to_string())),
        FieldKind::String | FieldKind::Text | FieldKind::Json => Ok(Scalar::Text(raw.to_string())),
    }
}

/// A stored attribute value as a scalar of `kind` (for keyset positions).
pub(crate) fn scalar_from_json(kind: FieldKind, v: &Value) -> Option<Scalar> {
    match kind {
        FieldKind::Integer => v.as_i64().map(Scalar::Int),
        FieldKind::Number => v.as_f64().map(Scalar::Float),
        FieldKind::Boolean => v.as_bool().map(Scalar::Bool),
        _ => v.as_str().map(|s| Scalar::Text(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<ItemQuery, QueryError> {
        let registry = TypeRegistry::with_crm();
        let params: Vec<(String, String)> = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ItemQuery::parse(&registry, &params, None)
    }

    #[test]
    fn a_full_query_parses() {
        let q = parse(&[
            ("type", "Deal"),
            ("attr.amount.gte", "100.5"),
            ("attr.stage.in", "won,lost"),
            ("sort", "-attr.amount"),
            ("limit", "10"),
        ])
        .expect("valid query");
        assert_eq!(q.types, vec!["Deal".to_string()]);
        assert_eq!(q.attrs[0].values, vec![Scalar::Float(100.5)]);
        assert_eq!(q.attrs[1].op, Op::In);
        assert!(q.sort.descending);
        assert_eq!(q.limit, 10);
    }

    #[test]
    fn refusals_name_the_parameter() {
        for (params, parameter) in [
            (vec![("type", "Deal"), ("attr.stag", "won")], "attr.stag"),
            (
                vec![("type", "Deal"), ("attr.stage.like", "w")],
                "attr.stage.like",
            ),
            (
                vec![("type", "Deal"), ("attr.stage", "closed")],
                "attr.stage",
            ),
            (
                vec![("type", "Deal"), ("attr.amount.gt", "1; DROP TABLE items")],
                "attr.amount.gt",
            ),
            (vec![("attr.stage", "won")], "attr.stage"),
            (vec![("sort", "size")], "sort"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "100000")], "limit"),
            (vec![("colour", "red")], "colour"),
            (vec![("type", "Dael")], "type"),
            (vec![("parent", "nope")], "parent"),
        ] {
            let err = parse(&params).expect_err("query must be refused");
            assert_eq!(err.parameter(), Some(parameter), "{params:?}: {err}");
        }
    }

    #[test]
    fn a_misspelled_field_gets_a_suggestion() {
        let err = parse(&[("type", "Deal"), ("attr.stag", "won")]).expect_err("refused");
        assert!(err.to_string().contains("did you mean \"stage\""), "{err}");
    }
}
