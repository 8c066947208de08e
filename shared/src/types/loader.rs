//! Reading an initialization folder: the manifest, then each definition file in its order,
//! checked against the layering and schema rules. Every problem is collected and reported at
//! once, each with the file and the JSON path at fault, so one run shows the whole list.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use include_dir::{Dir, include_dir};
use regex::Regex;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Field, FieldKind, Layer, SeedItem, TypeDef, TypeRegistry, View};
use crate::query::ItemQuery;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../initialization");

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

const MANIFEST: &str = "manifest.json";

/// One problem in an initialization folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// A JSON pointer into the file; empty for the file as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{} {}: {}", self.file, self.path, self.message)
        }
    }
}

/// Every problem found in an initialization folder, one per line when displayed.
#[derive(Debug, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the type definitions have {} error(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

pub(crate) enum Source {
    Embedded,
    Dir(PathBuf),
}

impl Source {
    fn read(&self, file: &str) -> Result<String, String> {
        match self {
            Source::Embedded => EMBEDDED
                .get_file(file)
                .and_then(|f| f.contents_utf8())
                .map(str::to_owned)
                .ok_or_else(|| "no such file in the embedded definitions".to_string()),
            Source::Dir(dir) => {
                std::fs::read_to_string(dir.join(file)).map_err(|e| format!("cannot read: {e}"))
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    files: Vec<ManifestEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    file: String,
    layer: Layer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    name: String,
    base: Option<String>,
    endpoint: Option<String>,
    #[serde(default)]
    fields: Vec<RawField>,
    #[serde(default)]
    attributes: Map<String, Value>,
    #[serde(default)]
    extra_attributes: bool,
    #[serde(default)]
    views: Vec<RawView>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    /// Parsed by `check_types`, so that a bad kind does not hide the type's other errors.
    kind: String,
    #[serde(default)]
    required: bool,
    default: Option<Value>,
    values: Option<Vec<String>>,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<String>,
    #[serde(rename = "ref")]
    target: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawView {
    name: String,
    title: Option<String>,
    query: Map<String, Value>,
}

/// A type as read, with where it came from.
struct Declared {
    raw: RawType,
    file: String,
    layer: Layer,
    /// JSON pointer of the type in its file, e.g. `/types/2`.
    at: String,
}

/// Collects problems while loading.
#[derive(Default)]
struct Problems(Vec<LoadError>);

impl Problems {
    fn add(&mut self, file: &str, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(LoadError {
            file: file.to_string(),
            path: path.into(),
            message: message.into(),
        });
    }
}

fn parse<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let pointer = if path == "." {
            String::new()
        } else {
            format!("/{}", path.replace('.', "/").replace(['[', ']'], "/"))
                .replace("//", "/")
                .trim_end_matches('/')
                .to_string()
        };
        (pointer, e.into_inner().to_string())
    })
}

pub(crate) fn load(source: &Source) -> Result<TypeRegistry, LoadErrors> {
    let mut problems = Problems::default();
    let manifest: Manifest = match source
        .read(MANIFEST)
        .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()))
    {
        Ok(value) => match parse(value) {
            Ok(m) => m,
            Err((path, msg)) => {
                problems.add(MANIFEST, path, msg);
                return Err(LoadErrors(problems.0));
            }
        },
        Err(msg) => {
            problems.add(MANIFEST, "", msg);
            return Err(LoadErrors(problems.0));
        }
    };
    let mut layer_seen = Layer::Core;
    let mut declared = Vec::new();
    let mut seeds: Vec<(String, Layer, String, Value)> = Vec::new();
    for (i, entry) in manifest.files.iter().enumerate() {
        if entry.layer < layer_seen {
            problems.add(
                MANIFEST,
                format!("/files/{i}/layer"),
                format!(
                    "layer {} comes after {}: files load core, resource, app, access in that order",
                    entry.layer.as_str(),
                    layer_seen.as_str()
                ),
            );
        }
        layer_seen = layer_seen.max(entry.layer);
        let file = entry.file.as_str();
        let doc = match source
            .read(file)
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        {
            Ok(Value::Object(doc)) => doc,
            Ok(_) => {
                problems.add(
                    file,
                    "",
                    "expected a JSON object with \"types\" and/or \"items\"",
                );
                continue;
            }
            Err(msg) => {
                problems.add(file, "", msg);
                continue;
            }
        };
        for key in doc.keys() {
            if key != "types" && key != "items" {
                problems.add(
                    file,
                    format!("/{key}"),
                    "unknown key: a definition file holds \"types\" and \"items\"",
                );
            }
        }
        for (key, into_types) in [("types", true), ("items", false)] {
            let Some(list) = doc.get(key) else { continue };
            let Some(list) = list.as_array() else {
                problems.add(file, format!("/{key}"), "expected an array");
                continue;
            };
            for (j, value) in list.iter().enumerate() {
                let at = format!("/{key}/{j}");
                if into_types {
                    match parse::<RawType>(value.clone()) {
                        Ok(raw) => declared.push(Declared {
                            raw,
                            file: file.to_string(),
                            layer: entry.layer,
                            at,
                        }),
                        Err((path, msg)) => problems.add(file, format!("{at}{path}"), msg),
                    }
                } else {
                    seeds.push((file.to_string(), entry.layer, at, value.clone()));
                }
            }
        }
    }

    let types = check_types(&declared, &mut problems);
    let registry = TypeRegistry::new(types, Vec::new());
    check_views(&registry, &declared, &mut problems);
    let seeds = check_seeds(&registry, seeds, &mut problems);
    if problems.0.is_empty() {
        Ok(TypeRegistry::new(registry.types, seeds))
    } else {
        Err(LoadErrors(problems.0))
    }
}

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

fn name_ok(name: &str) -> bool {
    static RE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new("^[A-Z][A-Za-z0-9]{0,63}$").expect("valid regex"));
    RE.is_match(name)
}

fn field_name_ok(name: &str) -> bool {
    static RE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new("^[a-z][a-z0-9_]{0,63}$").expect("valid regex"));
    RE.is_match(name)
}

fn endpoint_ok(name: &str) -> bool {
    static RE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new("^[a-z][a-z0-9-]{0,63}$").expect("valid regex"));
    RE.is_match(name)
}

/// Checks names, references, layering and fields, and resolves inheritance. Types with
/// problems are still returned (as far as they resolve) so later checks can report more.
fn check_types(declared: &[Declared], problems: &mut Problems) -> Vec<TypeDef> {
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
        let regex = match f.pattern.as_deref().map(Regex::new) {
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
            Some(Ok(re)) => Some(re),
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
            regex,
        };
        if let Some(default) = &f.default {
            match field.check(default) {
                Ok(v) => field.default = Some(v),
                Err(msg) => problems.add(&d.file, format!("{at}/default"), msg),
            }
        }
        fields.push(field);
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
fn check_views(registry: &TypeRegistry, declared: &[Declared], problems: &mut Problems) {
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

fn check_seeds(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write test file");
    }

    fn load_dir(files: &[(&str, &str)]) -> Result<TypeRegistry, LoadErrors> {
        let dir = std::env::temp_dir().join(format!("realnet-loader-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (name, text) in files {
            write(&dir, name, text);
        }
        let result = TypeRegistry::from_dir(&dir);
        std::fs::remove_dir_all(&dir).ok();
        result
    }

    fn messages(result: Result<TypeRegistry, LoadErrors>) -> Vec<String> {
        match result {
            Ok(_) => panic!("expected load errors"),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    const MANIFEST2: &str = r#"{"files": [{"file": "core.json", "layer": "core"},
        {"file": "crm.json", "layer": "resource"}, {"file": "apps.json", "layer": "app"}]}"#;
    const CORE: &str = r#"{"types": [{"name": "Item"}, {"name": "Resource", "base": "Item"}]}"#;

    #[test]
    fn the_embedded_definitions_load() {
        let registry = TypeRegistry::embedded().expect("embedded definitions are valid");
        for name in [
            "Item",
            "Resource",
            "Folder",
            "File",
            "Org",
            "Account",
            "Group",
            "ApiKey",
            "Acl",
            "App",
            "View",
            "Schedule",
            "Job",
            "Extension",
            "Company",
            "Contact",
            "Deal",
        ] {
            assert!(registry.get(name).is_some(), "missing core type {name}");
        }
        assert!(registry.is_a("Deal", "Resource"));
        assert_eq!(
            registry.by_endpoint("files").map(|t| t.name.as_str()),
            Some("File")
        );
    }

    #[test]
    fn every_error_is_reported_with_file_and_path() {
        let crm = r#"{"types": [
            {"name": "Company", "base": "Resource"},
            {"name": "Deal", "base": "Resource", "fields": [
                {"name": "company", "kind": "ref", "ref": "Compnay"},
                {"name": "stage", "kind": "strng"}]},
            {"name": "Bad", "base": "Resource", "fields": [{"name": "x", "kind": "string", "pattern": "("}]},
            {"name": "Leak", "base": "Resource", "fields": [{"name": "app", "kind": "ref", "ref": "CrmApp"}]},
            {"name": "Shadow", "base": "Resource", "endpoint": "items"},
            {"name": "Company", "base": "Item"}
        ]}"#;
        let apps = r#"{"types": [{"name": "CrmApp", "base": "Item", "views": [
            {"name": "v", "query": {"type": "Dael"}}]}]}"#;
        let errors = messages(load_dir(&[
            ("manifest.json", MANIFEST2),
            ("core.json", CORE),
            ("crm.json", crm),
            ("apps.json", apps),
        ]));
        let expected = [
            "crm.json /types/1/fields/1/kind: unknown field kind \"strng\"",
            "crm.json /types/1/fields/0/ref: unknown type \"Compnay\"",
            "crm.json /types/2/fields/0/pattern: bad pattern",
            "crm.json /types/3/fields/0/ref: a resource type may not reference \"CrmApp\", which is an app type",
            "crm.json /types/4/endpoint: endpoint \"items\" would shadow the built-in route /api/items",
            "crm.json /types/5/name: duplicate type name \"Company\"",
            "apps.json /types/0/views/0/query/type: unknown type \"Dael\"",
        ];
        for e in expected {
            assert!(
                errors.iter().any(|m| m.starts_with(e)),
                "missing {e:?} in {errors:#?}"
            );
        }
    }

    #[test]
    fn base_cycles_are_refused() {
        let crm = r#"{"types": [{"name": "A", "base": "B"}, {"name": "B", "base": "A"}]}"#;
        let errors = messages(load_dir(&[
            ("manifest.json", MANIFEST2),
            ("core.json", CORE),
            ("crm.json", crm),
            ("apps.json", "{}"),
        ]));
        assert!(
            errors
                .iter()
                .any(|m| m.starts_with("crm.json /types/0/base: type \"A\" inherits from itself")),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|m| m.starts_with("crm.json /types/1/base")),
            "{errors:#?}"
        );
    }

    #[test]
    fn inherited_fields_and_bad_seed_items() {
        let crm = r#"{"types": [{"name": "Thing", "base": "Resource", "fields": [
                {"name": "size", "kind": "integer", "min": 0, "required": true}]},
            {"name": "Big", "base": "Thing", "fields": [{"name": "colour", "kind": "enum", "values": ["red"]}]}],
          "items": [{"type": "Big", "name": "b", "attributes": {"size": -1, "colour": "blue"}}]}"#;
        let errors = messages(load_dir(&[
            ("manifest.json", MANIFEST2),
            ("core.json", CORE),
            ("crm.json", crm),
            ("apps.json", "{}"),
        ]));
        assert!(
            errors.contains(&"crm.json /items/0/attributes/size: must be at least 0".to_string()),
            "{errors:#?}"
        );
        assert!(
            errors
                .contains(&"crm.json /items/0/attributes/colour: must be one of: red".to_string()),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let errors = messages(load_dir(&[
            ("manifest.json", MANIFEST2),
            ("core.json", CORE),
        ]));
        assert!(
            errors
                .iter()
                .any(|m| m.starts_with("crm.json: cannot read")),
            "{errors:#?}"
        );
    }
}
