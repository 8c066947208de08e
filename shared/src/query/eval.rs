//! An [`ItemQuery`] evaluated on items in memory, with exactly the semantics of the SQL the
//! SQLite and PostgreSQL stores run: text compares bytewise, an absent attribute matches no
//! comparison and sorts last in either direction, ties are broken by id. Stores that cannot
//! run the query where the items are (DynamoDB) filter, sort and page with this.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde_json::Value;
use uuid::Uuid;

use super::{
    AttrFilter, ItemQuery, NameFilter, Op, ParentFilter, Position, Readable, Scalar,
    scalar_from_json,
};
use crate::item::Item;

/// Orders two scalars of the same kind (bytewise for text).
fn compare_scalars(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    match (a, b) {
        (Scalar::Text(a), Scalar::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Scalar::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
        (Scalar::Int(a), Scalar::Float(b)) => (*a as f64).partial_cmp(b),
        (Scalar::Float(a), Scalar::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Scalar::Float(a), Scalar::Float(b)) => a.partial_cmp(b),
        (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Scalar::Time(a), Scalar::Time(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn attr_matches(f: &AttrFilter, value: Option<&Value>) -> bool {
    let Some(v) = value.and_then(|v| scalar_from_json(f.kind, v)) else {
        return false;
    };
    let cmp = |w: &Scalar| compare_scalars(&v, w);
    match f.op {
        Op::Eq => cmp(&f.values[0]) == Some(Ordering::Equal),
        Op::Ne => matches!(cmp(&f.values[0]), Some(o) if o != Ordering::Equal),
        Op::Gt => cmp(&f.values[0]) == Some(Ordering::Greater),
        Op::Gte => matches!(cmp(&f.values[0]), Some(Ordering::Greater | Ordering::Equal)),
        Op::Lt => cmp(&f.values[0]) == Some(Ordering::Less),
        Op::Lte => matches!(cmp(&f.values[0]), Some(Ordering::Less | Ordering::Equal)),
        Op::In => f.values.iter().any(|w| cmp(w) == Some(Ordering::Equal)),
    }
}

impl ItemQuery {
    /// Whether `item` passes every filter and the access filter; `subtree` holds the ids of
    /// the readable subtrees (their roots and descendants), which only the store can expand.
    pub fn matches(&self, item: &Item, subtree: &HashSet<Uuid>) -> bool {
        if !self.types.is_empty() && !self.types.contains(&item.type_name) {
            return false;
        }
        match &self.parent {
            Some(ParentFilter::Root) if item.parent.is_some() => return false,
            Some(ParentFilter::Id(p)) if item.parent != Some(*p) => return false,
            _ => {}
        }
        match &self.name {
            Some(NameFilter::Exact(n)) if &item.name != n => return false,
            Some(NameFilter::Prefix(p)) if !item.name.as_bytes().starts_with(p.as_bytes()) => {
                return false;
            }
            _ => {}
        }
        if !self.words.is_empty() {
            let text = item.search_text();
            if !self.words.iter().all(|w| text.contains(w.as_str())) {
                return false;
            }
        }
        if !self
            .attrs
            .iter()
            .all(|f| attr_matches(f, item.attributes.get(&f.field)))
        {
            return false;
        }
        match &self.readable {
            Readable::All => true,
            Readable::Only {
                types,
                owner,
                owned_types,
                ..
            } => {
                types.contains(&item.type_name)
                    || (owner.is_some()
                        && item.owner == *owner
                        && owned_types.contains(&item.type_name))
                    || subtree.contains(&item.id)
            }
        }
    }

    /// The sort value of `item`: what its keyset position holds.
    fn sort_value(&self, item: &Item) -> Option<Scalar> {
        self.sort.position_of(item).value
    }

    /// `a` before `b` in this query's order.
    pub fn compare(&self, a: &Item, b: &Item) -> Ordering {
        self.compare_positions(&self.sort.position_of(a), &self.sort.position_of(b))
    }

    /// Position `a` before `b` in this query's order.
    pub fn compare_positions(&self, a: &Position, b: &Position) -> Ordering {
        // Absent values sort last in both directions; the rest (and ties, by id) reverse for
        // a descending sort.
        let by_value = match (&a.value, &b.value) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) => compare_scalars(x, y).unwrap_or(Ordering::Equal),
        };
        let order = by_value.then_with(|| a.id.cmp(&b.id));
        if self.sort.descending {
            order.reverse()
        } else {
            order
        }
    }

    /// Whether `item` comes after the page start `after` (everything does without one).
    pub fn is_after(&self, item: &Item) -> bool {
        match &self.after {
            None => true,
            Some(p) => {
                let position = Position {
                    value: self.sort_value(item),
                    id: item.id,
                };
                self.compare_positions(&position, p) == Ordering::Greater
            }
        }
    }
}
