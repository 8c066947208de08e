//! The table's index layout: which global secondary indexes exist and what each item writes
//! into their keys.
//!
//! - `by_type`: `gsi1pk = <org>#<type>`, `gsi1sk = <created>#<id>` (creation order).
//! - `by_parent`: `gsi2pk = <org>#<parent id or root>`, `gsi2sk = <created>#<id>`.
//! - `by_created`: `pk` (the org), `created_at`: each org's items in creation order.
//! - `by_name`: `gsi3pk = <org>#<type>`, `gsi3sk = <name>\u{1}<id>` (names hold no control
//!   characters, so `\u{1}` sorts below every name that extends another).
//! - `by_owner`: `gsi4pk = <org>#<owner>`, `gsi4sk = <created>#<id>`, for items that have an
//!   owner: what a member who may read only what they own can read, in creation order.
//! - `by_field_1` to `by_field_3`: one per slot of a type's indexed fields (a type has at most
//!   [`MAX_INDEXED_FIELDS`]); `x<n>pk = <org>#<type>#<field>`, `x<n>sk` = `1<value>\u{1}<created>#<id>`
//!   for an item with a value (numbers encoded so that text order is numeric order) and
//!   `2\u{1}<id>` for one without (absent values sort last, by id, either way). Equality
//!   filters page in creation order straight off the key; sorts on the field read runs of
//!   equal values whole and put them in id order.
//!
//! One design for every indexed field, rather than an index per field, keeps the table within
//! DynamoDB's 20 indexes whatever the types declare, and lets `realnet init` create the same
//! table for every deployment.

use std::collections::HashMap;

use serde_json::Value;

use super::{Record, created_key, s};
use crate::item::Item;
use crate::query::Scalar;
use crate::types::{FieldKind, MAX_INDEXED_FIELDS, TypeRegistry};

/// The index of each type's items in name order.
pub(super) const BY_NAME: &str = "by_name";

/// The index of each owner's items in creation order.
pub(super) const BY_OWNER: &str = "by_owner";

/// Separates a value from what follows it in a sort key: below every character a name or an
/// indexed string holds (control characters excepted).
pub(super) const END: char = '\u{1}';

/// The longest value a key holds, in bytes (DynamoDB's sort keys take 1,024): longer values
/// are cut, and the in-page filters and run ordering keep the answers exact.
const MAX_VALUE: usize = 900;

/// The name of the index of field slot `slot` (0-based).
pub(super) fn field_index(slot: usize) -> &'static str {
    ["by_field_1", "by_field_2", "by_field_3"][slot]
}

pub(super) fn field_pk(slot: usize) -> &'static str {
    ["x1pk", "x2pk", "x3pk"][slot]
}

pub(super) fn field_sk(slot: usize) -> &'static str {
    ["x1sk", "x2sk", "x3sk"][slot]
}

const _: () = assert!(MAX_INDEXED_FIELDS == 3, "one index per slot");

/// Every index a table needs beyond `by_type`, `by_parent` and `by_created`: name and key
/// attributes.
pub(super) fn extra_indexes() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out = vec![
        (BY_NAME, "gsi3pk", "gsi3sk"),
        (BY_OWNER, "gsi4pk", "gsi4sk"),
    ];
    for slot in 0..MAX_INDEXED_FIELDS {
        out.push((field_index(slot), field_pk(slot), field_sk(slot)));
    }
    out
}

/// An indexed field of a type, with its slot.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct IndexedField {
    pub(super) slot: usize,
    pub(super) name: String,
    pub(super) kind: FieldKind,
}

/// The indexed fields of every type.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Indexes {
    fields: HashMap<String, Vec<IndexedField>>,
}

impl Indexes {
    pub(super) fn of(types: &TypeRegistry) -> Indexes {
        let fields = types
            .all()
            .iter()
            .map(|t| {
                let fields = t
                    .indexed_fields()
                    .map(|(slot, f)| IndexedField {
                        slot,
                        name: f.name.clone(),
                        kind: f.kind,
                    })
                    .collect();
                (t.name.clone(), fields)
            })
            .collect();
        Indexes { fields }
    }

    /// The indexed field `field` of `type_name`.
    pub(super) fn field(&self, type_name: &str, field: &str) -> Option<&IndexedField> {
        self.fields.get(type_name)?.iter().find(|f| f.name == field)
    }

    /// A digest of the layout, stored once the items' keys follow it.
    pub(super) fn fingerprint(&self) -> String {
        let mut lines: Vec<String> = self
            .fields
            .iter()
            .flat_map(|(t, fields)| {
                fields
                    .iter()
                    .map(move |f| format!("{t}.{}:{}:{:?}", f.name, f.slot, f.kind))
            })
            .collect();
        lines.sort();
        // The version of the key formats (and of the filterable attributes) comes first.
        format!("v4;{}", lines.join(";"))
    }

    /// The index keys `item` carries beyond `by_type`, `by_parent` and `by_created`.
    pub(super) fn keys(&self, org: &str, item: &Item, record: &mut Record) {
        record.insert("gsi3pk".into(), s(format!("{org}#{}", item.type_name)));
        record.insert(
            "gsi3sk".into(),
            s(format!("{}{END}{}", cut(&item.name), item.id)),
        );
        if let Some(owner) = item.owner {
            record.insert("gsi4pk".into(), s(format!("{org}#{owner}")));
            record.insert("gsi4sk".into(), s(created_key(item)));
        }
        for f in self.fields.get(&item.type_name).into_iter().flatten() {
            let sk = match item
                .attributes
                .get(&f.name)
                .and_then(|v| encode_json(f.kind, v))
            {
                Some(v) => format!("1{v}{END}{}", created_key(item)),
                None => format!("2{END}{}", item.id),
            };
            record.insert(
                field_pk(f.slot).into(),
                s(format!("{org}#{}#{}", item.type_name, f.name)),
            );
            record.insert(field_sk(f.slot).into(), s(sk));
        }
    }
}

/// `text` cut to at most [`MAX_VALUE`] bytes, at a character boundary.
fn cut(text: &str) -> &str {
    if text.len() <= MAX_VALUE {
        return text;
    }
    let mut end = MAX_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A number as text whose order is the number's (the IEEE 754 bits, sign-flipped).
fn encode_float(f: f64) -> String {
    // -0.0 and 0.0 are equal to SQL, and so here.
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    let key = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    format!("{key:016x}")
}

fn encode_int(i: i64) -> String {
    format!("{:016x}", (i as u64) ^ (1 << 63))
}

/// A stored attribute value as key text, read the way the query language reads it.
fn encode_json(kind: FieldKind, v: &Value) -> Option<String> {
    crate::query::scalar_from_json(kind, v).map(|s| encode(kind, &s))
}

/// A value to compare with, as key text of a field of `kind`.
pub(super) fn encode(kind: FieldKind, value: &Scalar) -> String {
    match (kind, value) {
        (FieldKind::Number, Scalar::Float(f)) => encode_float(*f),
        (FieldKind::Number, Scalar::Int(i)) => encode_float(*i as f64),
        (_, Scalar::Int(i)) => encode_int(*i),
        (_, Scalar::Float(f)) => encode_float(*f),
        (_, Scalar::Bool(b)) => if *b { "1" } else { "0" }.to_string(),
        (_, Scalar::Text(t)) => cut(t).to_string(),
        (_, Scalar::Time(t)) => crate::types::value::format_datetime(*t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_keys_sort_as_numbers() {
        let values = [-1e300, -2.5, -1.0, 0.0, 1e-9, 1.0, 2.5, 10.0, 1e300];
        let keys: Vec<String> = values.iter().map(|f| encode_float(*f)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(encode_float(-0.0), encode_float(0.0));
        let ints: Vec<String> = [i64::MIN, -5, 0, 7, i64::MAX]
            .iter()
            .map(|i| encode_int(*i))
            .collect();
        let mut sorted = ints.clone();
        sorted.sort();
        assert_eq!(ints, sorted);
    }

    #[test]
    fn long_values_are_cut_at_a_character() {
        let long = "é".repeat(600);
        let key = cut(&long);
        assert!(key.len() <= MAX_VALUE && long.starts_with(key));
    }
}
