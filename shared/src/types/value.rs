//! Checking one attribute value against its field: kind, enum values, bounds and pattern.
//! Values are also normalised here (datetimes to UTC with microseconds, ids to lowercase), so
//! that stored values compare the same way in every store.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Field, FieldKind};

/// The canonical text form of a datetime: UTC, fixed width, so text order is time order.
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Field {
    /// Checks `value` against this field and returns its normalised form, or a message saying
    /// what is wrong with it.
    pub fn check(&self, value: &Value) -> Result<Value, String> {
        match self.kind {
            FieldKind::String | FieldKind::Text => {
                let s = value.as_str().ok_or("expected a string")?;
                let len = s.chars().count() as f64;
                if let Some(min) = self.min
                    && len < min
                {
                    return Err(format!("must be at least {min} characters long"));
                }
                if let Some(max) = self.max
                    && len > max
                {
                    return Err(format!("must be at most {max} characters long"));
                }
                if let Some(re) = &self.regex
                    && !re.is_match(s).map_err(|e| {
                        format!("cannot be checked: the type's pattern does not compile ({e})")
                    })?
                {
                    return Err(format!(
                        "does not match the pattern {}",
                        self.pattern.as_deref().unwrap_or_default()
                    ));
                }
                Ok(value.clone())
            }
            FieldKind::Integer => {
                let n = value.as_i64().ok_or("expected an integer")?;
                self.check_bounds(n as f64)?;
                Ok(value.clone())
            }
            FieldKind::Number => {
                let n = value.as_f64().ok_or("expected a number")?;
                self.check_bounds(n)?;
                Ok(value.clone())
            }
            FieldKind::Boolean => value
                .is_boolean()
                .then(|| value.clone())
                .ok_or_else(|| "expected true or false".to_string()),
            FieldKind::Datetime => {
                let s = value
                    .as_str()
                    .ok_or("expected an RFC 3339 date and time string")?;
                let t = parse_datetime(s)?;
                Ok(Value::String(format_datetime(t)))
            }
            FieldKind::Json => Ok(value.clone()),
            FieldKind::Enum => {
                let s = value.as_str().ok_or("expected a string")?;
                let values = self.values.as_deref().unwrap_or_default();
                if values.iter().any(|v| v == s) {
                    Ok(value.clone())
                } else {
                    Err(format!("must be one of: {}", values.join(", ")))
                }
            }
            FieldKind::Ref | FieldKind::File => {
                let s = value.as_str().ok_or("expected an item id")?;
                let id = Uuid::parse_str(s).map_err(|_| format!("{s:?} is not an item id"))?;
                Ok(Value::String(id.to_string()))
            }
        }
    }

    fn check_bounds(&self, n: f64) -> Result<(), String> {
        if let Some(min) = self.min
            && n < min
        {
            return Err(format!("must be at least {min}"));
        }
        if let Some(max) = self.max
            && n > max
        {
            return Err(format!("must be at most {max}"));
        }
        Ok(())
    }
}

pub fn parse_datetime(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{s:?} is not an RFC 3339 date and time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(kind: FieldKind) -> Field {
        Field {
            name: "f".into(),
            kind,
            required: false,
            default: None,
            values: None,
            min: None,
            max: None,
            pattern: None,
            target: None,
            managed: false,
            indexed: false,
            regex: None,
        }
    }

    #[test]
    fn datetimes_are_normalised_to_utc_micros() {
        let f = field(FieldKind::Datetime);
        assert_eq!(
            f.check(&json!("2026-01-02T03:04:05+02:00")),
            Ok(json!("2026-01-02T01:04:05.000000Z"))
        );
        assert!(f.check(&json!("yesterday")).is_err());
    }

    #[test]
    fn integers_refuse_fractions_and_respect_bounds() {
        let mut f = field(FieldKind::Integer);
        f.min = Some(0.0);
        assert!(f.check(&json!(1.5)).is_err());
        assert!(f.check(&json!(-1)).is_err());
        assert!(f.check(&json!("3")).is_err());
        assert_eq!(f.check(&json!(3)), Ok(json!(3)));
    }

    #[test]
    fn patterns_compile_when_first_used_and_still_check_values() {
        let mut f = field(FieldKind::String);
        let pattern = std::sync::Arc::new(
            crate::types::Pattern::parse("^[\\x21-\\x7e]{1,512}$").expect("well-formed"),
        );
        f.pattern = Some("^[\\x21-\\x7e]{1,512}$".into());
        f.regex = Some(pattern.clone());
        assert!(pattern.compiled.get().is_none(), "not compiled at load");
        assert_eq!(f.check(&json!("abc")), Ok(json!("abc")));
        assert!(pattern.compiled.get().is_some());
        assert!(f.check(&json!("a b")).is_err_and(|e| e.contains("pattern")));
        assert!(crate::types::Pattern::parse("^[a-z").is_err());
        // Well-formed, but over the engine's size limit: the value is refused, saying why.
        f.regex = Some(std::sync::Arc::new(
            crate::types::Pattern::parse("^(\\w{1000}){1000}$").expect("well-formed"),
        ));
        assert!(
            f.check(&json!("x"))
                .is_err_and(|e| e.contains("does not compile")),
        );
    }

    #[test]
    fn enums_name_the_allowed_values() {
        let mut f = field(FieldKind::Enum);
        f.values = Some(vec!["a".into(), "b".into()]);
        assert_eq!(f.check(&json!("c")), Err("must be one of: a, b".into()));
    }
}
