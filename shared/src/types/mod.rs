//! The type system: what a type is once loaded (`TypeDef`, `Field`), and the registry every
//! request consults. Types are read and checked once, at start, by [`loader`]; afterwards the
//! registry is immutable and shared.

pub mod loader;
mod rules;
pub mod value;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use loader::{LoadError, LoadErrors, TypeFile};

/// The layers a definition file belongs to, lowest first. A type may reference only types of
/// its own or a lower layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Core,
    Resource,
    App,
    Access,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Core => "core",
            Layer::Resource => "resource",
            Layer::App => "app",
            Layer::Access => "access",
        }
    }
}

/// What values a field holds. Attribute values are checked against it on every write, and
/// query filters compare by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    String,
    Text,
    Integer,
    Number,
    Boolean,
    Datetime,
    Json,
    Enum,
    Ref,
    File,
}

impl FieldKind {
    /// Kinds whose values are item ids that must name an existing item in the same org.
    pub fn is_reference(self) -> bool {
        matches!(self, FieldKind::Ref | FieldKind::File)
    }
}

/// One field of a type's schema.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The target type of a `ref` field (`File` for `file` fields).
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Set by the server alone: clients read it but never write it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub managed: bool,
    /// Equality and range filters and sorts on it are served by an index (DynamoDB; the SQL
    /// stores serve every field alike).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub indexed: bool,
    #[serde(skip)]
    pub(crate) regex: Option<Arc<Pattern>>,
}

/// A field's pattern: parsed when the types load (a bad one is a load error), compiled when a
/// value is first checked against it. Compiling every pattern at start (bounded repetitions
/// such as `{1,512}` make large automata) was most of a function's start-up work.
#[derive(Debug)]
pub(crate) struct Pattern {
    source: String,
    pub(super) compiled: std::sync::OnceLock<Result<regex::Regex, String>>,
}

impl Pattern {
    /// `source` if it parses as a regular expression, or why not.
    pub(crate) fn parse(source: &str) -> Result<Pattern, String> {
        regex_syntax::Parser::new()
            .parse(source)
            .map_err(|e| e.to_string())?;
        Ok(Pattern {
            source: source.to_string(),
            compiled: std::sync::OnceLock::new(),
        })
    }

    /// Whether `text` matches; an error if the pattern, though well-formed, cannot be
    /// compiled (over the regex engine's size limit).
    pub(crate) fn is_match(&self, text: &str) -> Result<bool, String> {
        match self
            .compiled
            .get_or_init(|| regex::Regex::new(&self.source).map_err(|e| e.to_string()))
        {
            Ok(re) => Ok(re.is_match(text)),
            Err(e) => Err(e.clone()),
        }
    }
}

/// A named query an app type offers, in the same syntax as `GET /api/items`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct View {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[schema(value_type = Object)]
    pub query: Map<String, Value>,
}

/// A loaded type with everything inherited from its bases already merged in.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TypeDef {
    pub name: String,
    pub base: Option<String>,
    #[schema(value_type = String)]
    pub layer: Layer,
    pub endpoint: Option<String>,
    pub fields: Vec<Field>,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// Whether attributes that no field declares are accepted.
    pub extra_attributes: bool,
    pub views: Vec<View>,
    /// The definition file the type came from.
    #[serde(skip)]
    pub file: String,
}

/// The most fields one type (with what it inherits) may declare indexed: each takes one of the
/// DynamoDB table's field indexes.
pub const MAX_INDEXED_FIELDS: usize = 3;

/// The kinds a field may have to be indexed: those with one comparable value.
pub fn indexable(kind: FieldKind) -> bool {
    !matches!(kind, FieldKind::Text | FieldKind::Json)
}

impl TypeDef {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The indexed fields, each with its slot (0-based, in field order, base fields first, so
    /// a field keeps its slot in every subtype).
    pub fn indexed_fields(&self) -> impl Iterator<Item = (usize, &Field)> {
        self.fields.iter().filter(|f| f.indexed).enumerate()
    }

    /// ` (did you mean "stage"?)` for a misspelled field name, or nothing.
    pub fn field_hint(&self, name: &str) -> String {
        self.fields
            .iter()
            .map(|f| (strsim::levenshtein(name, &f.name), &f.name))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, f)| format!(" (did you mean {f:?}?)"))
            .unwrap_or_default()
    }

    pub fn view(&self, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.name == name)
    }
}

/// An item declared in a definition file, created by `realnet init` in the default org.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedItem {
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default)]
    pub children: Vec<SeedItem>,
}

/// Every type of a deployment, checked, with inheritance resolved.
#[derive(Debug)]
pub struct TypeRegistry {
    /// In load order.
    types: Vec<TypeDef>,
    by_name: HashMap<String, usize>,
    /// For each type, itself and every type that inherits from it.
    subtypes: HashMap<String, Vec<String>>,
    seeds: Vec<SeedItem>,
}

impl TypeRegistry {
    /// The definitions compiled into the binary from the repository's `initialization/`.
    pub fn embedded() -> Result<Self, LoadErrors> {
        TypeRegistry::load(None, &[])
    }

    /// The definitions in a folder (`REALNET_INIT_DIR`, `realnet types check DIR`).
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, LoadErrors> {
        TypeRegistry::load(Some(dir), &[])
    }

    /// The definitions in `dir` (or the compiled-in ones), with the files linked extensions
    /// ship, each loaded after the folder's files of its layer.
    pub fn load(dir: Option<&std::path::Path>, shipped: &[TypeFile]) -> Result<Self, LoadErrors> {
        let source = match dir {
            Some(dir) => loader::Source::Dir(dir.to_path_buf()),
            None => loader::Source::Embedded,
        };
        loader::load(&source, shipped)
    }

    pub(crate) fn new(types: Vec<TypeDef>, seeds: Vec<SeedItem>) -> Self {
        let by_name = types
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let mut subtypes: HashMap<String, Vec<String>> = HashMap::new();
        for t in &types {
            let mut cursor = Some(t);
            while let Some(ancestor) = cursor {
                subtypes
                    .entry(ancestor.name.clone())
                    .or_default()
                    .push(t.name.clone());
                cursor = ancestor
                    .base
                    .as_deref()
                    .and_then(|b| types.iter().find(|x| x.name == b));
            }
        }
        TypeRegistry {
            types,
            by_name,
            subtypes,
            seeds,
        }
    }

    /// The compiled-in definitions with the CRM extension's types, for unit tests that need
    /// a few ordinary types (this crate cannot depend on the extension's crate).
    #[cfg(test)]
    pub(crate) fn with_crm() -> Self {
        let crm = TypeFile {
            name: "crm/crm.json".into(),
            layer: Layer::Resource,
            json: include_str!("../../../extensions/crm/types/crm.json"),
        };
        TypeRegistry::load(None, &[crm]).expect("the definitions with the CRM types")
    }

    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.by_name.get(name).map(|&i| &self.types[i])
    }

    pub fn all(&self) -> &[TypeDef] {
        &self.types
    }

    pub fn seeds(&self) -> &[SeedItem] {
        &self.seeds
    }

    /// `name` and every type that inherits from it (empty if `name` is unknown).
    pub fn subtypes(&self, name: &str) -> &[String] {
        self.subtypes.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `name` is `ancestor` or inherits from it.
    pub fn is_a(&self, name: &str, ancestor: &str) -> bool {
        self.subtypes(ancestor).iter().any(|t| t == name)
    }

    pub fn by_endpoint(&self, endpoint: &str) -> Option<&TypeDef> {
        self.types
            .iter()
            .find(|t| t.endpoint.as_deref() == Some(endpoint))
    }
}
