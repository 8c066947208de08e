//! The rules a set of type definitions must keep: names, references and layering, field
//! options, inheritance (resolved here), view queries and seed items. Each rule adds to the
//! loader's list of problems instead of stopping at the first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::loader::{Declared, Problems, parse};
use super::{Field, FieldKind, Layer, Pattern, SeedItem, TypeDef, TypeRegistry, View};
use crate::query::ItemQuery;

/// Route segments under `/api/` that a type endpoint may not take.
const RESERVED_ENDPOINTS: &[&str] = &[
    "items",
    "types",
    "auth",
    "apps",
    "jobs",
    "extensions",
    "openapi.json",
    "ping",
    "time",
];

fn field_kind(kind: &str) -> Option<FieldKind> {
    serde_json::from_value(Value::String(kind.to_string())).ok()
}

/// "a resource type", "an app type".
fn a(layer: Layer) -> String {
    match layer {
        Layer::App | Layer::Access => format!("an {}", layer.as_str()),
        _ => format!("a {}", layer.as_str()),
    }
}

/// Whether `name` is 1 to 64 ASCII characters, the first `first`, the others `rest` (plain
/// checks: as regular expressions, `{0,63}` made automata that took most of a cold start to
/// compile).
fn identifier(name: &str, first: fn(char) -> bool, rest: fn(char) -> bool) -> bool {
    let mut chars = name.chars();
    name.len() <= 64 && chars.next().is_some_and(first) && chars.all(rest)
}

/// `[A-Z][A-Za-z0-9]{0,63}`
fn name_ok(name: &str) -> bool {
    identifier(
        name,
        |c| c.is_ascii_uppercase(),
        |c| c.is_ascii_alphanumeric(),
    )
}

/// `[a-z][a-z0-9_]{0,63}`
fn field_name_ok(name: &str) -> bool {
    identifier(
        name,
        |c| c.is_ascii_lowercase(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
    )
}

/// `[a-z][a-z0-9-]{0,63}`
fn endpoint_ok(name: &str) -> bool {
    identifier(
        name,
        |c| c.is_ascii_lowercase(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
    )
}

/// Checks names, references, layering and fields, and resolves inheritance. Types with
/// problems are still returned (as far as they resolve) so later checks can report more.
pub(super) fn check_types(declared: &[Declared], problems: &mut Problems) -> Vec<TypeDef> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut endpoints: HashMap<&str, &str> = HashMap::new();
    for (i, d) in declared.iter().enumerate() {
        let name = d.raw.name.as_str();
        if !name_ok(name) {
            problems.add(
                &d.file,
                format!("{}/name", d.at),
                format!("{name:?} is not a type name: use CamelCase letters and digits"),
            );
        }
        if index.insert(name, i).is_some() {
            problems.add(
                &d.file,
                format!("{}/name", d.at),
                format!("duplicate type name {name:?}"),
            );
        }
        if let Some(ep) = d.raw.endpoint.as_deref() {
            if !endpoint_ok(ep) {
                problems.add(
                    &d.file,
                    format!("{}/endpoint", d.at),
                    format!("{ep:?} is not an endpoint: use lowercase letters, digits and -"),
                );
            } else if RESERVED_ENDPOINTS.contains(&ep) {
                problems.add(
                    &d.file,
                    format!("{}/endpoint", d.at),
                    format!("endpoint {ep:?} would shadow the built-in route /api/{ep}"),
                );
            } else if let Some(other) = endpoints.insert(ep, name) {
                problems.add(
                    &d.file,
                    format!("{}/endpoint", d.at),
                    format!("endpoint {ep:?} is already taken by type {other:?}"),
                );
            }
        }
    }

    // A reference must name a known type of the same or a lower layer.
    let check_ref = |problems: &mut Problems, d: &Declared, path: String, target: &str| match index
        .get(target)
    {
        None => problems.add(&d.file, path, format!("unknown type {target:?}")),
        Some(&j) if declared[j].layer > d.layer => problems.add(
            &d.file,
            path,
            format!(
                "{} type may not reference {target:?}, which is {} type",
                a(d.layer),
                a(declared[j].layer)
            ),
        ),
        Some(_) => {}
    };

    for d in declared {
        if let Some(base) = d.raw.base.as_deref() {
            check_ref(problems, d, format!("{}/base", d.at), base);
        }
        let mut own = HashSet::new();
        for (k, f) in d.raw.fields.iter().enumerate() {
            let at = format!("{}/fields/{k}", d.at);
            if !field_name_ok(&f.name) {
                problems.add(
                    &d.file,
                    format!("{at}/name"),
                    format!(
                        "{:?} is not a field name: use lowercase letters, digits and _",
                        f.name
                    ),
                );
            }
            if !own.insert(f.name.as_str()) {
                problems.add(
                    &d.file,
                    format!("{at}/name"),
                    format!("duplicate field {:?}", f.name),
                );
            }
            let Some(kind) = field_kind(&f.kind) else {
                problems.add(
                    &d.file,
                    format!("{at}/kind"),
                    format!(
                        "unknown field kind {:?}: use one of string, text, integer, number, boolean, datetime, json, enum, ref, file",
                        f.kind
                    ),
                );
                continue;
            };
            match (kind, f.target.as_deref()) {
                (FieldKind::Ref, Some(target)) => {
                    check_ref(problems, d, format!("{at}/ref"), target)
                }
                (FieldKind::Ref, None) => problems.add(
                    &d.file,
                    format!("{at}/ref"),
                    "a ref field names its target type in \"ref\"",
                ),
                (_, Some(_)) => {
                    problems.add(&d.file, format!("{at}/ref"), "only ref fields take \"ref\"")
                }
                _ => {}
            }
            match (kind, &f.values) {
                (FieldKind::Enum, Some(v)) if v.is_empty() => problems.add(
                    &d.file,
                    format!("{at}/values"),
                    "an enum needs at least one value",
                ),
                (FieldKind::Enum, None) => problems.add(
                    &d.file,
                    format!("{at}/values"),
                    "an enum field lists its \"values\"",
                ),
                (FieldKind::Enum, Some(_)) | (_, None) => {}
                (_, Some(_)) => problems.add(
                    &d.file,
                    format!("{at}/values"),
                    "only enum fields take \"values\"",
                ),
            }
            if f.pattern.is_some() && !matches!(kind, FieldKind::String | FieldKind::Text) {
                problems.add(
                    &d.file,
                    format!("{at}/pattern"),
                    "only string and text fields take a pattern",
                );
            }
            if (f.min.is_some() || f.max.is_some())
                && !matches!(
                    kind,
                    FieldKind::String | FieldKind::Text | FieldKind::Integer | FieldKind::Number
                )
            {
                problems.add(
                    &d.file,
                    at.clone(),
                    "only string, text, integer and number fields take min and max",
                );
            }
            if let (Some(min), Some(max)) = (f.min, f.max)
                && min > max
            {
                problems.add(
                    &d.file,
                    format!("{at}/min"),
                    format!("min {min} is greater than max {max}"),
                );
            }
        }
        for (k, v) in d.raw.views.iter().enumerate() {
            if d.raw.views[..k].iter().any(|w| w.name == v.name) {
                problems.add(
                    &d.file,
                    format!("{}/views/{k}/name", d.at),
                    format!("duplicate view {:?}", v.name),
                );
            }
        }
    }

    // Base cycles: follow each chain; a chain that comes back to its start is a cycle.
    let mut in_cycle = HashSet::new();
    for d in declared {
        let mut seen = HashSet::new();
        let mut cur = d.raw.name.as_str();
        while let Some(base) = index
            .get(cur)
            .and_then(|&j| declared[j].raw.base.as_deref())
        {
            if base == d.raw.name {
                problems.add(
                    &d.file,
                    format!("{}/base", d.at),
                    format!(
                        "type {:?} inherits from itself through {base:?}",
                        d.raw.name
                    ),
                );
                in_cycle.insert(d.raw.name.as_str());
                break;
            }
            if !seen.insert(base) {
                break;
            }
            cur = base;
        }
    }

    // Resolve inheritance in load order: a valid base is always declared earlier or at a lower
    // layer, so resolve recursively with memoisation.
    let mut resolved: HashMap<String, TypeDef> = HashMap::new();
    let mut out = Vec::new();
    for d in declared {
        if in_cycle.contains(d.raw.name.as_str()) || resolved.contains_key(&d.raw.name) {
            continue;
        }
        if let Some(t) = resolve(d, declared, &index, &in_cycle, &mut resolved, problems) {
            out.push(t);
        }
    }
    out
}

fn resolve(
    d: &Declared,
    declared: &[Declared],
    index: &HashMap<&str, usize>,
    in_cycle: &HashSet<&str>,
    resolved: &mut HashMap<String, TypeDef>,
    problems: &mut Problems,
) -> Option<TypeDef> {
    if let Some(t) = resolved.get(&d.raw.name) {
        return Some(t.clone());
    }
    let base = match d.raw.base.as_deref() {
        None => None,
        Some(b) if in_cycle.contains(b) => return None,
        Some(b) => {
            let &j = index.get(b)?;
            Some(resolve(
                &declared[j],
                declared,
                index,
                in_cycle,
                resolved,
                problems,
            )?)
        }
    };
    let mut fields = base.as_ref().map(|b| b.fields.clone()).unwrap_or_default();
    for (k, f) in d.raw.fields.iter().enumerate() {
        let at = format!("{}/fields/{k}", d.at);
        // Reported by check_types.
        let Some(kind) = field_kind(&f.kind) else {
            continue;
        };
        if fields.iter().any(|g| g.name == f.name) {
            problems.add(
                &d.file,
                format!("{at}/name"),
                format!("field {:?} is already defined by a base type", f.name),
            );
            continue;
        }
        let regex = match f.pattern.as_deref().map(Pattern::parse) {
            Some(Err(e)) => {
                let reason = e.to_string();
                let reason = reason
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string();
                problems.add(
                    &d.file,
                    format!("{at}/pattern"),
                    format!("bad pattern: {reason}"),
                );
                None
            }
            Some(Ok(re)) => Some(Arc::new(re)),
            None => None,
        };
        let target = match kind {
            FieldKind::File => Some("File".to_string()),
            _ => f.target.clone(),
        };
        let mut field = Field {
            name: f.name.clone(),
            kind,
            required: f.required,
            default: None,
            values: f.values.clone(),
            min: f.min,
            max: f.max,
            pattern: f.pattern.clone(),
            target,
            managed: f.managed,
            indexed: f.indexed,
            regex,
        };
        if f.indexed && !super::indexable(kind) {
            problems.add(
                &d.file,
                format!("{at}/indexed"),
                format!("a {} field cannot be indexed: index a field of one value (string, enum, ref, integer, number, boolean, datetime)", f.kind),
            );
        }
        if let Some(default) = &f.default {
            match field.check(default) {
                Ok(v) => field.default = Some(v),
                Err(msg) => problems.add(&d.file, format!("{at}/default"), msg),
            }
        }
        fields.push(field);
    }
    let indexed = fields.iter().filter(|f| f.indexed).count();
    if indexed > super::MAX_INDEXED_FIELDS {
        problems.add(
            &d.file,
            format!("{}/fields", d.at),
            format!(
                "type {} has {indexed} indexed fields (with those it inherits); at most {} may be indexed",
                d.raw.name,
                super::MAX_INDEXED_FIELDS
            ),
        );
    }
    let mut attributes = base
        .as_ref()
        .map(|b| b.attributes.clone())
        .unwrap_or_default();
    attributes.extend(d.raw.attributes.clone());
    let mut views = base.as_ref().map(|b| b.views.clone()).unwrap_or_default();
    views.retain(|v| !d.raw.views.iter().any(|w| w.name == v.name));
    views.extend(d.raw.views.iter().map(|v| View {
        name: v.name.clone(),
        title: v.title.clone(),
        query: v.query.clone(),
    }));
    let t = TypeDef {
        name: d.raw.name.clone(),
        base: d.raw.base.clone(),
        layer: d.layer,
        endpoint: d.raw.endpoint.clone(),
        fields,
        attributes,
        extra_attributes: d.raw.extra_attributes
            || base.as_ref().is_some_and(|b| b.extra_attributes),
        views,
        file: d.file.clone(),
    };
    resolved.insert(t.name.clone(), t.clone());
    Some(t)
}

/// A view's query must parse as an item query against the registry, and may name only types
/// of its own type's layer or lower.
pub(super) fn check_views(registry: &TypeRegistry, declared: &[Declared], problems: &mut Problems) {
    for d in declared {
        for (k, v) in d.raw.views.iter().enumerate() {
            let at = format!("{}/views/{k}/query", d.at);
            let mut params = Vec::new();
            for (key, value) in &v.query {
                match value {
                    Value::String(s) => params.push((key.clone(), s.clone())),
                    _ => problems.add(&d.file, format!("{at}/{key}"), "expected a string"),
                }
            }
            if let Some(t) = v.query.get("type").and_then(Value::as_str)
                && let Some(target) = registry.get(t)
                && target.layer > d.layer
            {
                problems.add(
                    &d.file,
                    format!("{at}/type"),
                    format!(
                        "{} type may not reference {t:?}, which is {} type",
                        a(d.layer),
                        a(target.layer)
                    ),
                );
            }
            if v.query.contains_key("cursor") {
                problems.add(
                    &d.file,
                    format!("{at}/cursor"),
                    "a view query takes no cursor",
                );
            }
            if let Err(e) = ItemQuery::parse(registry, &params, None) {
                let path = e.parameter().map(|p| format!("{at}/{p}")).unwrap_or(at);
                problems.add(&d.file, path, e.to_string());
            }
        }
    }
}

pub(super) fn check_seeds(
    registry: &TypeRegistry,
    seeds: Vec<(String, Layer, String, Value)>,
    problems: &mut Problems,
) -> Vec<SeedItem> {
    let mut out = Vec::new();
    for (file, layer, at, value) in seeds {
        match parse::<SeedItem>(value) {
            Ok(item) => {
                check_seed(registry, &file, layer, &at, &item, problems);
                out.push(item);
            }
            Err((path, msg)) => problems.add(&file, format!("{at}{path}"), msg),
        }
    }
    out
}

fn check_seed(
    registry: &TypeRegistry,
    file: &str,
    layer: Layer,
    at: &str,
    item: &SeedItem,
    problems: &mut Problems,
) {
    match registry.get(&item.type_name) {
        None => problems.add(
            file,
            format!("{at}/type"),
            format!("unknown type {:?}", item.type_name),
        ),
        Some(t) if t.layer > layer => problems.add(
            file,
            format!("{at}/type"),
            format!(
                "{} file may not create items of {:?}, which is {} type",
                a(layer),
                t.name,
                a(t.layer)
            ),
        ),
        Some(t) => {
            if let Err(errors) = crate::item::attributes::validate_new(t, &item.attributes) {
                for (field, msg) in errors.0 {
                    problems.add(file, format!("{at}/attributes/{field}"), msg);
                }
            }
        }
    }
    if item.name.trim().is_empty() {
        problems.add(file, format!("{at}/name"), "an item needs a name");
    }
    for (k, child) in item.children.iter().enumerate() {
        check_seed(
            registry,
            file,
            layer,
            &format!("{at}/children/{k}"),
            child,
            problems,
        );
    }
}
