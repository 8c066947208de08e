//! Filters no key serves, run by DynamoDB as a `FilterExpression` on the candidates a page
//! reads in key order, so that what a page does not use is never sent back.
//!
//! Every item record carries its top-level scalar attributes as DynamoDB attributes of their
//! own, `a.<field>` (besides the whole object in `attributes`): a string as `S`, a number as
//! `N`, a boolean as `BOOL`. A value DynamoDB cannot compare the way the query language does
//! (a string longer than [`MAX_TEXT`] bytes or past [`MAX_COPIED`] bytes of them, an integer
//! past 2^53, a number outside DynamoDB's range) is written as `NULL`, which every clause lets through. Records written
//! before this layout lack the marker [`LAYOUT`] and pass the attribute clauses whole.
//!
//! The expression is a necessary condition only: a record it lets through still goes through
//! the in-page check ([`ItemQuery::matches`](crate::query::ItemQuery::matches)), which alone
//! decides words, the access filter and whatever a clause cannot express (`>` on booleans,
//! `in` over more than 100 values). DynamoDB counts the records it read before filtering
//! (`ScannedCount`) against `Limit` and in the read units, so the page's read budget is the
//! same with or without it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::{Record, s};
use crate::item::Item;
use crate::query::{ItemQuery, NameFilter, Op, ParentFilter, Scalar};
use crate::types::FieldKind;

/// Set on every record whose attributes are written as their own attributes (its value, the
/// layout's version).
pub(super) const LAYOUT: &str = "fv";

/// The prefix of an attribute written as its own DynamoDB attribute.
const PREFIX: &str = "a.";

/// The longest string written as its own attribute, in bytes; longer ones are `NULL`.
const MAX_TEXT: usize = 900;

/// The most bytes of strings one record carries twice (DynamoDB's items hold 400 KB): past
/// them, strings are `NULL`.
const MAX_COPIED: usize = 64 * 1024;

/// The largest integer a number attribute holds exactly as the query language reads it (an
/// `f64` for number fields).
const MAX_EXACT: i64 = 1 << 53;

/// The most values of one `IN` DynamoDB takes.
const MAX_IN: usize = 100;

/// Whether `name` is one of the attributes this module writes.
pub(super) fn is_own(name: &str) -> bool {
    name == LAYOUT || name.starts_with(PREFIX)
}

/// Writes the marker and the top-level scalar attributes of `item` into `record`.
pub(super) fn write(item: &Item, record: &mut Record) {
    record.insert(LAYOUT.into(), AttributeValue::N("1".into()));
    let mut copied = 0usize;
    for (field, value) in &item.attributes {
        let stored = match value {
            Value::String(t) if t.len() <= MAX_TEXT && copied + t.len() <= MAX_COPIED => {
                copied += t.len();
                s(t)
            }
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::Number(num) => match num.as_i64() {
                Some(i) if i.abs() <= MAX_EXACT => AttributeValue::N(i.to_string()),
                Some(_) => AttributeValue::Null(true),
                None => num
                    .as_f64()
                    .and_then(number)
                    .map_or(AttributeValue::Null(true), AttributeValue::N),
            },
            Value::String(_) => AttributeValue::Null(true),
            // Objects, arrays and nulls match no comparison: absent, like in SQL.
            _ => continue,
        };
        record.insert(format!("{PREFIX}{field}"), stored);
    }
}

/// `f` as DynamoDB number text, if DynamoDB holds it (its range is 1e-130 to 1e126 in
/// magnitude). The shortest text that reads back as `f` keeps the order of `f64`s.
fn number(f: f64) -> Option<String> {
    let magnitude = f.abs();
    if f == 0.0 {
        return Some("0".into());
    }
    if !(1e-129..=1e125).contains(&magnitude) {
        return None;
    }
    serde_json::Number::from_f64(f).map(|n| n.to_string())
}

/// A filter value as the attribute it is compared with.
fn operand(kind: FieldKind, value: &Scalar) -> Option<AttributeValue> {
    match (kind, value) {
        (FieldKind::Number, Scalar::Int(i)) => number(*i as f64).map(AttributeValue::N),
        (_, Scalar::Int(i)) => Some(AttributeValue::N(i.to_string())),
        (_, Scalar::Float(f)) => number(*f).map(AttributeValue::N),
        (_, Scalar::Bool(b)) => Some(AttributeValue::Bool(*b)),
        (_, Scalar::Text(t)) => Some(s(t)),
        (_, Scalar::Time(_)) => None,
    }
}

/// A `FilterExpression` with its names and values (`#f<n>`, `:f<n>`: apart from the key
/// condition's).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Filter {
    pub(super) expression: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: Record,
}

impl Filter {
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#f{}", self.names.len());
        self.names
            .insert(placeholder.clone(), attribute.to_string());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":f{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// The clause of one attribute filter, if DynamoDB can run it.
    fn attr_clause(
        &mut self,
        field: &str,
        kind: FieldKind,
        op: Op,
        values: &[Scalar],
    ) -> Option<String> {
        let operands: Vec<AttributeValue> = values
            .iter()
            .map(|v| operand(kind, v))
            .collect::<Option<_>>()?;
        let boolean = operands.iter().any(|v| v.is_bool());
        let symbol = match op {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Gt if !boolean => ">",
            Op::Gte if !boolean => ">=",
            Op::Lt if !boolean => "<",
            Op::Lte if !boolean => "<=",
            Op::In if !operands.is_empty() && operands.len() <= MAX_IN => "IN",
            _ => return None,
        };
        let a = self.name(&format!("{PREFIX}{field}"));
        let mut placeholders: Vec<String> = operands.into_iter().map(|v| self.value(v)).collect();
        let comparison = match op {
            Op::In => format!("{a} IN ({})", placeholders.join(", ")),
            // An absent attribute matches no comparison, `<>` included.
            Op::Ne => format!(
                "(attribute_exists({a}) AND {a} <> {})",
                placeholders.remove(0)
            ),
            _ => format!("{a} {symbol} {}", placeholders.remove(0)),
        };
        let null = self.value(s("NULL"));
        Some(format!("({comparison} OR attribute_type({a}, {null}))"))
    }
}

/// The `FilterExpression` of what `query` filters on, if any of it can be run by DynamoDB:
/// attribute filters, the name, the parent and the types.
pub(super) fn of(query: &ItemQuery) -> Option<Filter> {
    let mut filter = Filter::default();
    let mut clauses = Vec::new();
    match &query.name {
        Some(NameFilter::Exact(n)) => {
            let name = filter.name("name");
            let value = filter.value(s(n));
            clauses.push(format!("{name} = {value}"));
        }
        Some(NameFilter::Prefix(p)) if !p.is_empty() => {
            let name = filter.name("name");
            let value = filter.value(s(p));
            clauses.push(format!("begins_with({name}, {value})"));
        }
        _ => {}
    }
    // Not `gsi2pk`: a filter names no key attribute of the index it reads.
    match &query.parent {
        Some(ParentFilter::Root) => {
            let parent = filter.name("parent");
            clauses.push(format!("attribute_not_exists({parent})"));
        }
        Some(ParentFilter::Id(id)) => {
            let parent = filter.name("parent");
            let value = filter.value(s(id.to_string()));
            clauses.push(format!("{parent} = {value}"));
        }
        None => {}
    }
    if !query.types.is_empty() && query.types.len() <= MAX_IN {
        let name = filter.name("type");
        let values: Vec<String> = query.types.iter().map(|t| filter.value(s(t))).collect();
        clauses.push(format!("{name} IN ({})", values.join(", ")));
    }
    let attrs: Vec<String> = query
        .attrs
        .iter()
        .filter_map(|f| filter.attr_clause(&f.field, f.kind, f.op, &f.values))
        .collect();
    if !attrs.is_empty() {
        let marker = filter.name(LAYOUT);
        // AND binds tighter than OR; DynamoDB refuses parentheses right inside parentheses.
        clauses.push(format!(
            "(attribute_not_exists({marker}) OR {})",
            attrs.join(" AND ")
        ));
    }
    if clauses.is_empty() {
        return None;
    }
    filter.expression = clauses.join(" AND ");
    Some(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeRegistry;

    fn query(params: &[(&str, &str)]) -> ItemQuery {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ItemQuery::parse(&TypeRegistry::with_crm(), &params, None).expect("valid query")
    }

    fn deal(attributes: serde_json::Map<String, Value>) -> Item {
        Item::sample("Deal", "d", attributes)
    }

    #[test]
    fn clauses_let_through_what_they_cannot_compare() {
        let q = query(&[
            ("type", "Deal"),
            ("attr.amount.gte", "10"),
            ("attr.stage.in", "won,lost"),
            ("name", "big*"),
        ]);
        let f = of(&q).expect("a filter");
        assert_eq!(
            f.expression,
            "begins_with(#f0, :f0) AND #f1 IN (:f1) AND (attribute_not_exists(#f4) OR \
             (#f2 >= :f2 OR attribute_type(#f2, :f3)) AND (#f3 IN (:f4, :f5) OR attribute_type(#f3, :f6)))"
        );
        assert_eq!(f.names.get("#f2").map(String::as_str), Some("a.amount"));
        assert_eq!(f.values.get(":f2"), Some(&AttributeValue::N("10.0".into())));
    }

    #[test]
    fn values_it_cannot_compare_are_null() {
        let attributes = serde_json::json!({
            "title": "x".repeat(MAX_TEXT + 1),
            "big": 1i64 << 60,
            "huge": 1e300,
            "amount": 2.5,
            "done": true,
            "tags": ["a"],
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        let item = deal(attributes);
        let mut record = Record::new();
        write(&item, &mut record);
        assert_eq!(record.get("a.title"), Some(&AttributeValue::Null(true)));
        assert_eq!(record.get("a.big"), Some(&AttributeValue::Null(true)));
        assert_eq!(record.get("a.huge"), Some(&AttributeValue::Null(true)));
        assert_eq!(
            record.get("a.amount"),
            Some(&AttributeValue::N("2.5".into()))
        );
        assert_eq!(record.get("a.done"), Some(&AttributeValue::Bool(true)));
        assert_eq!(record.get("a.tags"), None);
        assert!(record.contains_key(LAYOUT));
    }

    #[test]
    fn a_record_carries_a_bounded_copy_of_its_strings() {
        let attributes = (0..200)
            .map(|n| (format!("f{n}"), Value::String("x".repeat(800))))
            .collect();
        let item = deal(attributes);
        let mut record = Record::new();
        write(&item, &mut record);
        let copied: usize = record
            .values()
            .filter_map(|v| v.as_s().ok())
            .map(String::len)
            .sum();
        let nulls = record.values().filter(|v| v.is_null()).count();
        assert!(
            copied <= MAX_COPIED && copied > MAX_COPIED - 800,
            "{copied}"
        );
        assert_eq!(nulls, 200 - copied / 800);
    }

    #[test]
    fn numbers_keep_their_order_as_text_dynamodb_compares() {
        let values = [
            -2.5e100, -1.0, -1e-100, 0.0, 1e-100, 0.1, 1.0, 7.0, 1e20, 1e125,
        ];
        let parsed: Vec<f64> = values
            .iter()
            .map(|f| number(*f).and_then(|t| t.parse().ok()).unwrap_or(f64::NAN))
            .collect();
        assert_eq!(parsed, values);
        assert_eq!(number(1e300), None);
        assert_eq!(number(1e-300), None);
    }
}
