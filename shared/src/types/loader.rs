//! Reading an initialization folder: the manifest, then each definition file in its order,
//! checked against the layering and schema rules. Every problem is collected and reported at
//! once, each with the file and the JSON path at fault, so one run shows the whole list.

use std::fmt;
use std::path::PathBuf;

use include_dir::{Dir, include_dir};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::rules;
use super::{Layer, TypeRegistry};

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../initialization");

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

/// A definition file a linked extension ships, loaded after the manifest's files of its layer.
#[derive(Debug, Clone)]
pub struct TypeFile {
    /// How errors name it: `<extension>/<file>`.
    pub name: String,
    pub layer: Layer,
    pub json: &'static str,
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

#[derive(Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawType {
    pub(super) name: String,
    pub(super) base: Option<String>,
    pub(super) endpoint: Option<String>,
    #[serde(default)]
    pub(super) fields: Vec<RawField>,
    #[serde(default)]
    pub(super) attributes: Map<String, Value>,
    #[serde(default)]
    pub(super) extra_attributes: bool,
    #[serde(default)]
    pub(super) views: Vec<RawView>,
}

#[derive(Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawField {
    pub(super) name: String,
    /// Parsed by `check_types`, so that a bad kind does not hide the type's other errors.
    pub(super) kind: String,
    #[serde(default)]
    pub(super) required: bool,
    pub(super) default: Option<Value>,
    pub(super) values: Option<Vec<String>>,
    pub(super) min: Option<f64>,
    pub(super) max: Option<f64>,
    pub(super) pattern: Option<String>,
    #[serde(rename = "ref")]
    pub(super) target: Option<String>,
    #[serde(default)]
    pub(super) managed: bool,
    #[serde(default)]
    pub(super) indexed: bool,
}

#[derive(Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawView {
    pub(super) name: String,
    pub(super) title: Option<String>,
    pub(super) query: Map<String, Value>,
}

/// A type as read, with where it came from.
pub(super) struct Declared {
    pub(super) raw: RawType,
    pub(super) file: String,
    pub(super) layer: Layer,
    /// JSON pointer of the type in its file, e.g. `/types/2`.
    pub(super) at: String,
}

/// Collects problems while loading.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<LoadError>);

impl Problems {
    pub(super) fn add(&mut self, file: &str, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(LoadError {
            file: file.to_string(),
            path: path.into(),
            message: message.into(),
        });
    }
}

pub(super) fn parse<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
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

/// The core types are Realnet's own (its type behaviours rely on them): a folder must declare
/// each exactly as the compiled-in `core.json` does, and may extend them only by subtyping.
fn check_core_types(declared: &[Declared], problems: &mut Problems) {
    #[derive(Deserialize)]
    struct CoreFile {
        types: Vec<RawType>,
    }
    let core: CoreFile = EMBEDDED
        .get_file("core.json")
        .and_then(|f| f.contents_utf8())
        .and_then(|t| serde_json::from_str(t).ok())
        .expect("the compiled-in core.json parses");
    for t in &core.types {
        match declared.iter().find(|d| d.raw.name == t.name) {
            None => problems.add(
                MANIFEST,
                "",
                format!(
                    "the core type {:?} is missing: keep every type of Realnet's core.json as it is",
                    t.name
                ),
            ),
            Some(d) if d.raw != *t => problems.add(
                &d.file,
                d.at.clone(),
                format!(
                    "redefines the core type {:?}: core types are Realnet's own; make a subtype (\"base\": {:?}) instead",
                    t.name, t.name
                ),
            ),
            Some(_) => {}
        }
    }
}

pub(crate) fn load(source: &Source, extra: &[TypeFile]) -> Result<TypeRegistry, LoadErrors> {
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
    }
    // The manifest's files, each extension's after those of its layer.
    let mut files: Vec<(&str, Layer, Option<&str>)> = manifest
        .files
        .iter()
        .map(|e| (e.file.as_str(), e.layer, None))
        .chain(
            extra
                .iter()
                .map(|f| (f.name.as_str(), f.layer, Some(f.json))),
        )
        .collect();
    files.sort_by_key(|(_, layer, _)| *layer);
    let mut declared = Vec::new();
    let mut seeds: Vec<(String, Layer, String, Value)> = Vec::new();
    for (file, layer, shipped) in files {
        let entry = ManifestEntry {
            file: file.to_string(),
            layer,
        };
        let text = match shipped {
            Some(json) => Ok(json.to_string()),
            None => source.read(file),
        };
        let doc =
            match text.and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string())) {
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

    if let Source::Dir(_) = source {
        check_core_types(&declared, &mut problems);
    }
    let types = rules::check_types(&declared, &mut problems);
    let registry = TypeRegistry::new(types, Vec::new());
    rules::check_views(&registry, &declared, &mut problems);
    let seeds = rules::check_seeds(&registry, seeds, &mut problems);
    if problems.0.is_empty() {
        Ok(TypeRegistry::new(registry.types, seeds))
    } else {
        Err(LoadErrors(problems.0))
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
        ] {
            assert!(registry.get(name).is_some(), "missing core type {name}");
        }
        assert!(registry.is_a("Folder", "Resource"));
        assert_eq!(
            registry.by_endpoint("files").map(|t| t.name.as_str()),
            Some("File")
        );
    }

    #[test]
    fn a_shipped_file_loads_in_its_layer_after_the_folders_files() {
        let shipped = |layer, json| TypeFile {
            name: "ext/types.json".into(),
            layer,
            json,
        };
        // A resource type may not reference an app type, even one of the folder's.
        let refs_app = r#"{"types": [{"name": "Gadget", "base": "Resource",
            "fields": [{"name": "app", "kind": "ref", "ref": "FilesApp"}]}]}"#;
        let errors = messages(TypeRegistry::load(
            None,
            &[shipped(Layer::Resource, refs_app)],
        ));
        assert_eq!(
            errors,
            [
                "ext/types.json /types/0/fields/0/ref: a resource type may not reference \"FilesApp\", which is an app type"
            ]
        );
        // An app file sees the folder's resource and app types, and its seeds are made.
        let app = r#"{"types": [{"name": "GadgetApp", "base": "App"}],
            "items": [{"type": "GadgetApp", "name": "Gadgets"}]}"#;
        let registry = TypeRegistry::load(None, &[shipped(Layer::App, app)]).expect("loads");
        assert!(registry.is_a("GadgetApp", "App"));
        assert!(registry.seeds().iter().any(|s| s.name == "Gadgets"));
        // A type the folder defines cannot be defined again.
        let twice = r#"{"types": [{"name": "FilesApp", "base": "App"}]}"#;
        let errors = messages(TypeRegistry::load(None, &[shipped(Layer::App, twice)]));
        assert!(
            errors[0].contains("duplicate type name \"FilesApp\""),
            "{errors:?}"
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
    fn indexed_fields_are_checked() {
        let crm = r#"{"types": [
            {"name": "Note", "base": "Resource", "fields": [
                {"name": "body", "kind": "text", "indexed": true},
                {"name": "a", "kind": "string", "indexed": true},
                {"name": "b", "kind": "integer", "indexed": true}]},
            {"name": "LongNote", "base": "Note", "fields": [
                {"name": "c", "kind": "number", "indexed": true},
                {"name": "d", "kind": "enum", "values": ["x"], "indexed": true}]}
        ]}"#;
        let errors = messages(load_dir(&[
            ("manifest.json", MANIFEST2),
            ("core.json", CORE),
            ("crm.json", crm),
            ("apps.json", "{}"),
        ]));
        for e in [
            "crm.json /types/0/fields/0/indexed: a text field cannot be indexed",
            "crm.json /types/1/fields: type LongNote has 5 indexed fields (with those it inherits); at most 3 may be indexed",
        ] {
            assert!(
                errors.iter().any(|m| m.starts_with(e)),
                "missing {e:?} in {errors:#?}"
            );
        }
        assert!(
            !errors
                .iter()
                .any(|m| m.starts_with("crm.json /types/0/fields:")),
            "three indexed fields are allowed: {errors:#?}"
        );
        let registry = TypeRegistry::with_crm();
        let deal = registry.get("Deal").expect("Deal");
        let slots: Vec<(usize, &str)> = deal
            .indexed_fields()
            .map(|(slot, f)| (slot, f.name.as_str()))
            .collect();
        assert_eq!(slots, [(0, "company"), (1, "amount"), (2, "stage")]);
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
    fn a_folder_must_keep_the_core_types_as_they_are() {
        let core = include_str!("../../../initialization/core.json");
        let changed = core.replacen(
            r#"{ "name": "admin", "kind": "boolean", "default": false }"#,
            r#"{ "name": "admin", "kind": "boolean", "default": true }"#,
            1,
        );
        assert_ne!(core, changed);
        let manifest = r#"{"files": [{"file": "core.json", "layer": "core"}]}"#;
        let errors = messages(load_dir(&[
            ("manifest.json", manifest),
            ("core.json", &changed),
        ]));
        assert!(
            errors
                .iter()
                .any(|m| m.starts_with("core.json /types/5: redefines the core type \"Account\"")),
            "{errors:#?}"
        );
        let errors = messages(load_dir(&[
            ("manifest.json", manifest),
            ("core.json", CORE),
        ]));
        assert!(
            errors
                .iter()
                .any(|m| m.contains("the core type \"Account\" is missing")),
            "{errors:#?}"
        );
        assert!(load_dir(&[("manifest.json", manifest), ("core.json", core)]).is_ok());
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
