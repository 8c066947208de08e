//! Checking an item's attributes against its type: unknown names, kinds, required fields and
//! defaults. References to other items are checked by [`super::ops`], which can reach the store.

use serde_json::{Map, Value};

use crate::types::TypeDef;

/// Problems with an item's input, keyed by the field (or `name`, `parent`) at fault.
#[derive(Debug, Clone, PartialEq, Default, thiserror::Error)]
#[error("the item is not valid: {}", self.summary())]
pub struct ValidationErrors(pub Vec<(String, String)>);

impl ValidationErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push((field.into(), message.into()));
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = ValidationErrors::default();
        e.add(field, message);
        e
    }

    /// Each problem as `field: message`, joined.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn into_result<T>(self, ok: T) -> Result<T, ValidationErrors> {
        if self.0.is_empty() { Ok(ok) } else { Err(self) }
    }
}

/// Checks a complete attribute set for an item of type `t` and returns it normalised, with
/// defaults filled in. `null` values count as absent.
pub fn validate_new(
    t: &TypeDef,
    attributes: &Map<String, Value>,
) -> Result<Map<String, Value>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut out = Map::new();
    for (name, value) in attributes {
        if value.is_null() {
            continue;
        }
        if has_nul(value) || name.contains('\0') {
            // No store can keep NUL in text (PostgreSQL refuses it in jsonb).
            errors.add(name, "must not contain NUL characters");
            continue;
        }
        match t.field(name) {
            Some(field) => match field.check(value) {
                Ok(v) => {
                    out.insert(name.clone(), v);
                }
                Err(msg) => errors.add(name, msg),
            },
            None if t.extra_attributes => {
                out.insert(name.clone(), value.clone());
            }
            None => errors.add(name, unknown(t, name)),
        }
    }
    for field in &t.fields {
        if out.contains_key(&field.name) || errors.0.iter().any(|(f, _)| f == &field.name) {
            continue;
        }
        match &field.default {
            Some(d) => {
                out.insert(field.name.clone(), d.clone());
            }
            None if field.required => errors.add(&field.name, "is required"),
            None => {}
        }
    }
    errors.into_result(out)
}

/// Merges `patch` into `current` (a `null` removes an attribute) and checks the result.
pub fn validate_merge(
    t: &TypeDef,
    current: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, ValidationErrors> {
    let mut merged = current.clone();
    for (name, value) in patch {
        if value.is_null() {
            if t.field(name).is_none() && !t.extra_attributes && !current.contains_key(name) {
                return Err(ValidationErrors::single(name, unknown(t, name)));
            }
            merged.remove(name);
        } else {
            merged.insert(name.clone(), value.clone());
        }
    }
    validate_new(t, &merged)
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Checks an item name: what people see and what `name=` matches.
pub fn validate_name(name: &str) -> Result<(), ValidationErrors> {
    if name.trim().is_empty() {
        Err(ValidationErrors::single("name", "must not be empty"))
    } else if name.chars().count() > 255 {
        Err(ValidationErrors::single(
            "name",
            "must be at most 255 characters long",
        ))
    } else if name.chars().any(char::is_control) {
        Err(ValidationErrors::single(
            "name",
            "must not contain control characters",
        ))
    } else {
        Ok(())
    }
}

fn unknown(t: &TypeDef, name: &str) -> String {
    format!(
        "type {} has no attribute {name:?}{}",
        t.name,
        t.field_hint(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeRegistry;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn defaults_fill_in_and_required_fields_are_named() {
        let registry = TypeRegistry::with_crm();
        let deal = registry.get("Deal").expect("Deal");
        let err = validate_new(deal, &obj(json!({"amount": 5}))).expect_err("company missing");
        assert_eq!(
            err.0,
            vec![("company".to_string(), "is required".to_string())]
        );
        let ok = validate_new(
            deal,
            &obj(json!({"company": "0190a6f0-0000-7000-8000-000000000000"})),
        )
        .expect("valid");
        assert_eq!(ok.get("stage"), Some(&json!("lead")));
    }

    #[test]
    fn a_misspelled_attribute_is_refused_with_a_hint() {
        let registry = TypeRegistry::with_crm();
        let contact = registry.get("Contact").expect("Contact");
        let err = validate_new(contact, &obj(json!({"email": "a@b.c", "phnoe": "123"})))
            .expect_err("unknown attribute");
        assert_eq!(err.0[0].0, "phnoe");
        assert!(err.0[0].1.contains("did you mean \"phone\""), "{err}");
    }

    #[test]
    fn nul_characters_are_refused_anywhere() {
        let registry = TypeRegistry::with_crm();
        let view = registry.get("View").expect("View");
        let err = validate_new(view, &obj(json!({"query": {"a": ["x\u{0}y"]}})))
            .expect_err("NUL inside JSON");
        assert_eq!(err.0[0].0, "query");
    }

    #[test]
    fn merge_removes_nulls_and_rechecks() {
        let registry = TypeRegistry::with_crm();
        let contact = registry.get("Contact").expect("Contact");
        let current = obj(json!({"email": "a@b.c", "phone": "12345"}));
        let merged = validate_merge(contact, &current, &obj(json!({"phone": null}))).expect("ok");
        assert!(!merged.contains_key("phone"));
        assert!(validate_merge(contact, &current, &obj(json!({"email": null}))).is_err());
    }
}
