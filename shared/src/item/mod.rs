//! Items: what every stored thing is (`Item`), how attributes are checked against their type
//! ([`attributes`]), the operations that create, change and remove them ([`ops`]) and what is
//! special about some types ([`behaviour`]).

pub mod attributes;
pub mod behaviour;
mod depth;
mod error;
pub mod ops;
pub mod prepared;

pub use error::ItemError;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A stored item, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    pub parent: Option<Uuid>,
    pub org: String,
    pub owner: Option<Uuid>,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Item {
    /// Lowercased name and top-level string attribute values: what `q=` searches.
    pub fn search_text(&self) -> String {
        let mut text = self.name.to_lowercase();
        for value in self.attributes.values() {
            if let Value::String(s) = value {
                text.push('\n');
                text.push_str(&s.to_lowercase());
            }
        }
        text
    }
}

#[cfg(test)]
impl Item {
    /// A new item of `type_name` at the top of org `acme`, for unit tests.
    pub(crate) fn sample(type_name: &str, name: &str, attributes: Map<String, Value>) -> Item {
        let now = now();
        Item {
            id: Uuid::now_v7(),
            type_name: type_name.into(),
            name: name.into(),
            parent: None,
            org: "acme".into(),
            owner: None,
            attributes,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// The current time at the precision every store keeps (microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
