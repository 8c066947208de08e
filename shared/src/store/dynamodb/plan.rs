//! How a DynamoDB query is read: which index partitions ([`Source`]s) hold its candidates,
//! between which keys, in which direction, and whether their keys run in the query's order
//! (a [`Plan::Ordered`] the page reader merges) or must be sorted in memory
//! ([`Plan::Sorted`]). Creation order reads `by_type`, `by_parent` or `by_created` (or
//! `by_owner` for a member who may read only what they own); name order `by_name`; an
//! equality filter or a sort on an indexed field its `by_field_<n>` slot (see
//! [`super::indexes`]).

use uuid::Uuid;

use super::indexes::{
    BY_NAME, BY_OWNER, END, IndexedField, Indexes, encode, field_index, field_pk, field_sk,
};
use super::{BY_CREATED, Record, parent_key, s};
use crate::query::{ItemQuery, NameFilter, Op, ParentFilter, Position, Readable, Scalar, SortKey};
use crate::store::StoreError;
use crate::types::value::format_datetime;

/// How a source's sort keys relate to the query's order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Runs {
    /// Every key is unique and the keys run in the query's order.
    None,
    /// Equal keys (`by_created`'s creation times) come in no particular order: a run of them
    /// is read whole and put in the query's order (by id) before any of it is used.
    WholeKey,
    /// The same for runs of one value: the key up to [`END`] (a field index read for a sort
    /// on its field, where equal values follow creation order, not the id order asked for).
    Value,
}

/// One partition of an index, read in order between inclusive bounds of its sort key.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Source {
    pub(super) index: &'static str,
    pub(super) pk_attr: &'static str,
    pub(super) pk: String,
    pub(super) sk_attr: &'static str,
    /// Lowest and highest sort key to read, both inclusive (the cursor's record itself is
    /// dropped by [`ItemQuery::is_after`]).
    pub(super) lo: Option<String>,
    pub(super) hi: Option<String>,
    pub(super) forward: bool,
    pub(super) runs: Runs,
}

impl Source {
    fn new(index: &'static str, pk_attr: &'static str, pk: String, sk_attr: &'static str) -> Self {
        Source {
            index,
            pk_attr,
            pk,
            sk_attr,
            lo: None,
            hi: None,
            forward: true,
            runs: Runs::None,
        }
    }

    /// Reads between `lo` and `hi`, in the direction of `query`.
    fn between(mut self, query: &ItemQuery, lo: Option<String>, hi: Option<String>) -> Self {
        self.forward = !query.sort.descending;
        self.lo = lo;
        self.hi = hi;
        self
    }

    /// Reads in the direction of `query`, from `after` on.
    fn from(self, query: &ItemQuery, after: Option<String>) -> Self {
        if query.sort.descending {
            self.between(query, None, after)
        } else {
            self.between(query, after, None)
        }
    }

    /// Narrows the range to start at the cursor's key `at` (in the read's direction).
    fn starting_at(mut self, at: Option<String>) -> Self {
        let Some(at) = at else { return self };
        if self.forward {
            self.lo = Some(self.lo.take().map_or(at.clone(), |lo| lo.max(at)));
        } else {
            self.hi = Some(self.hi.take().map_or(at.clone(), |hi| hi.min(at)));
        }
        self
    }

    fn empty(&self) -> bool {
        matches!((&self.lo, &self.hi), (Some(lo), Some(hi)) if lo > hi)
    }

    /// The run a record with sort key `sk` belongs to, if this source reads runs.
    pub(super) fn run_of(&self, sk: &str) -> Option<String> {
        match self.runs {
            Runs::None => None,
            Runs::WholeKey => Some(sk.to_string()),
            Runs::Value => Some(sk.split(END).next().unwrap_or_default().to_string()),
        }
    }

    pub(super) fn key_condition(&self) -> (String, Record) {
        let mut values = Record::from([(":pk".to_string(), s(&self.pk))]);
        let mut condition = format!("{} = :pk", self.pk_attr);
        let sk = self.sk_attr;
        match (&self.lo, &self.hi) {
            (Some(lo), Some(hi)) => {
                condition.push_str(&format!(" AND {sk} BETWEEN :lo AND :hi"));
                values.insert(":lo".into(), s(lo));
                values.insert(":hi".into(), s(hi));
            }
            (Some(lo), None) => {
                condition.push_str(&format!(" AND {sk} >= :lo"));
                values.insert(":lo".into(), s(lo));
            }
            (None, Some(hi)) => {
                condition.push_str(&format!(" AND {sk} <= :hi"));
                values.insert(":hi".into(), s(hi));
            }
            (None, None) => {}
        }
        (condition, values)
    }
}

/// How a query is read.
#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    /// Each entry yields in the query's order, reading its sources one after the other; the
    /// page merges the entries (one per type of a type with subtypes).
    Ordered(Vec<Vec<Source>>),
    /// The candidates are read in key order and sorted in memory, if they fit in the budget.
    Sorted(Vec<Source>),
}

/// The sort key of `by_type` and `by_parent` at `position` of a creation-ordered query.
fn created_key(position: &Position) -> Option<String> {
    match &position.value {
        Some(Scalar::Time(t)) => Some(format!("{}#{}", format_datetime(*t), position.id)),
        _ => None,
    }
}

/// Above every key that starts with a given prefix and goes on with a creation time, an id
/// or hex digits.
const PAST: &str = "~";

/// The sources holding every candidate of `query` in `org`, read from `after` in creation
/// order (`None` reads them whole).
fn candidates(org: &str, query: &ItemQuery, after: Option<&Position>) -> Vec<Source> {
    let key = after.and_then(created_key);
    if let Some(parent) = &query.parent {
        let p = match parent {
            ParentFilter::Root => parent_key(org, None),
            ParentFilter::Id(id) => parent_key(org, Some(*id)),
        };
        return vec![Source::new("by_parent", "gsi2pk", p, "gsi2sk").from(query, key)];
    }
    if let Some(owner) = owner_only(query) {
        return vec![
            Source::new(BY_OWNER, "gsi4pk", format!("{org}#{owner}"), "gsi4sk").from(query, key),
        ];
    }
    if !query.types.is_empty() {
        return query
            .types
            .iter()
            .map(|t| {
                Source::new("by_type", "gsi1pk", format!("{org}#{t}"), "gsi1sk")
                    .from(query, key.clone())
            })
            .collect();
    }
    // Items created at the cursor's time may still follow it (ties go by id).
    let at = after.and_then(|p| match &p.value {
        Some(Scalar::Time(t)) => Some(format_datetime(*t)),
        _ => None,
    });
    let mut org_source =
        Source::new(BY_CREATED, "pk", org.to_string(), "created_at").from(query, at);
    org_source.runs = Runs::WholeKey;
    vec![org_source]
}

/// The owner whose items are all the caller may read, if that is the caller's only access:
/// their items are then the candidates, whatever else the query asks.
fn owner_only(query: &ItemQuery) -> Option<Uuid> {
    match &query.readable {
        Readable::Only {
            types,
            owner: Some(owner),
            subtrees,
            ..
        } if types.is_empty() && subtrees.is_empty() => Some(*owner),
        _ => None,
    }
}

/// The indexed field `field` in every type `query` asks for, if it is indexed in all of them.
fn indexed_in_all<'a>(
    indexes: &'a Indexes,
    query: &'a ItemQuery,
    field: &str,
) -> Option<Vec<(&'a str, &'a IndexedField)>> {
    if query.types.is_empty() {
        return None;
    }
    query
        .types
        .iter()
        .map(|t| indexes.field(t, field).map(|f| (t.as_str(), f)))
        .collect()
}

/// The range of a field index's present values that the filters on `field` allow (both
/// inclusive; exactness is left to the in-page filters), and whether any filter is on it.
fn value_range(query: &ItemQuery, field: &IndexedField) -> (String, String, bool) {
    let (mut lo, mut hi) = ("1".to_string(), "2".to_string());
    let mut filtered = false;
    for f in query.attrs.iter().filter(|f| f.field == field.name) {
        filtered = true;
        let Some(v) = f.values.first().map(|v| encode(field.kind, v)) else {
            continue;
        };
        let (l, h) = match f.op {
            Op::Eq => (Some(format!("1{v}{END}")), Some(format!("1{v}{END}{PAST}"))),
            Op::Gt | Op::Gte => (Some(format!("1{v}")), None),
            Op::Lt | Op::Lte => (None, Some(format!("1{v}{END}{PAST}"))),
            Op::Ne | Op::In => (None, None),
        };
        if let Some(l) = l {
            lo = lo.max(l);
        }
        if let Some(h) = h {
            hi = hi.min(h);
        }
    }
    (lo, hi, filtered)
}

/// A sort on an indexed field: per type, its present values (runs of one value put in id
/// order) and then, unless a filter on the field excludes them, the items without one.
fn field_sort(org: &str, query: &ItemQuery, fields: &[(&str, &IndexedField)]) -> Plan {
    let after = query.after.as_ref();
    Plan::Ordered(
        fields
            .iter()
            .map(|(t, field)| {
                let source = || {
                    Source::new(
                        field_index(field.slot),
                        field_pk(field.slot),
                        format!("{org}#{t}#{}", field.name),
                        field_sk(field.slot),
                    )
                };
                let (lo, hi, filtered) = value_range(query, field);
                let mut present = source().between(query, Some(lo), Some(hi));
                present.runs = Runs::Value;
                let absent = (!filtered).then(|| {
                    source().between(
                        query,
                        Some(format!("2{END}")),
                        Some(format!("2{END}{PAST}")),
                    )
                });
                let mut segments = Vec::new();
                match after.map(|p| &p.value) {
                    None => segments.extend([Some(present), absent]),
                    Some(Some(v)) => {
                        let v = encode(field.kind, v);
                        let at = if query.sort.descending {
                            format!("1{v}{END}{PAST}")
                        } else {
                            format!("1{v}")
                        };
                        segments.extend([Some(present.starting_at(Some(at))), absent]);
                    }
                    Some(None) => {
                        let id = after.map(|p| p.id).unwrap_or_default();
                        segments.push(absent.map(|a| a.starting_at(Some(format!("2{END}{id}")))));
                    }
                }
                segments
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.empty())
                    .collect()
            })
            .collect(),
    )
}

/// An equality filter on an indexed field in creation order: per type, the key range of that
/// value, whose keys go on in creation order.
fn field_equal(
    org: &str,
    query: &ItemQuery,
    fields: &[(&str, &IndexedField)],
    value: &Scalar,
) -> Plan {
    let at = query.after.as_ref().and_then(created_key);
    Plan::Ordered(
        fields
            .iter()
            .map(|(t, field)| {
                let v = encode(field.kind, value);
                let prefix = format!("1{v}{END}");
                let source = Source::new(
                    field_index(field.slot),
                    field_pk(field.slot),
                    format!("{org}#{t}#{}", field.name),
                    field_sk(field.slot),
                )
                .between(query, Some(prefix.clone()), Some(format!("{prefix}{PAST}")))
                .starting_at(at.as_ref().map(|k| format!("{prefix}{k}")));
                vec![source]
            })
            .collect(),
    )
}

/// Name order within each type (the name filter, exact or a prefix, narrowing the range).
fn name_order(org: &str, query: &ItemQuery) -> Plan {
    let (lo, hi) = match &query.name {
        Some(NameFilter::Exact(n)) => (Some(format!("{n}{END}")), Some(format!("{n}{END}{PAST}"))),
        Some(NameFilter::Prefix(p)) if !p.is_empty() => {
            (Some(p.clone()), Some(format!("{p}{}", char::MAX)))
        }
        _ => (None, None),
    };
    let at = query.after.as_ref().and_then(|p| match &p.value {
        Some(Scalar::Text(name)) => Some(format!("{name}{END}{}", p.id)),
        _ => None,
    });
    Plan::Ordered(
        query
            .types
            .iter()
            .map(|t| {
                let source = Source::new(BY_NAME, "gsi3pk", format!("{org}#{t}"), "gsi3sk")
                    .between(query, lo.clone(), hi.clone())
                    .starting_at(at.clone());
                vec![source].into_iter().filter(|s| !s.empty()).collect()
            })
            .collect(),
    )
}

/// How `query` is read from `org`'s partitions.
pub(super) fn plan(org: &str, query: &ItemQuery, indexes: &Indexes) -> Plan {
    let sorted = || {
        Plan::Sorted(
            candidates(org, query, None)
                .into_iter()
                .map(|mut s| {
                    s.forward = true;
                    s
                })
                .collect(),
        )
    };
    match &query.sort.key {
        SortKey::Created => {
            if query.parent.is_none() {
                for f in query.attrs.iter().filter(|f| f.op == Op::Eq) {
                    if let (Some(fields), Some(v)) =
                        (indexed_in_all(indexes, query, &f.field), f.values.first())
                    {
                        return field_equal(org, query, &fields, v);
                    }
                }
            }
            Plan::Ordered(
                candidates(org, query, query.after.as_ref())
                    .into_iter()
                    .map(|s| vec![s])
                    .collect(),
            )
        }
        SortKey::Name if !query.types.is_empty() => name_order(org, query),
        SortKey::Attr { field, .. } => match indexed_in_all(indexes, query, field) {
            Some(fields) => field_sort(org, query, &fields),
            None => sorted(),
        },
        _ => sorted(),
    }
}

/// What to do about a sort that no key serves over more than the budget.
pub(super) fn needs_index(query: &ItemQuery, budget: usize) -> StoreError {
    let how = match (&query.sort.key, query.type_name.as_deref()) {
        (SortKey::Attr { field, .. }, Some(t)) => format!(
            "declare the field {field:?} of type {t} \"indexed\": true, or narrow the query"
        ),
        (SortKey::Name, None) => "add type= (name order is indexed per type)".to_string(),
        _ => "narrow the query (type=, parent=, name=) or sort by created".to_string(),
    };
    StoreError::NeedsIndex(format!(
        "sort={} is served by no index here and would read more than {budget} items: {how}",
        query.sort.spec()
    ))
}

/// A run of one value too long to put in order within a page's means.
pub(super) fn run_too_long(query: &ItemQuery, budget: usize) -> StoreError {
    StoreError::NeedsIndex(format!(
        "sort={} would read more than {budget} items that share one value to put them in order: filter on the field, or sort by a field with more distinct values",
        query.sort.spec()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeRegistry;

    fn query(params: &[(&str, &str)]) -> ItemQuery {
        let registry = TypeRegistry::with_crm();
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ItemQuery::parse(&registry, &params, None).expect("valid query")
    }

    #[test]
    fn creation_order_is_served_by_keys_from_the_cursor() {
        let id = Uuid::now_v7();
        let t = chrono::Utc::now();
        let mut q = query(&[("type", "Folder"), ("sort", "-created")]);
        q.after = Some(Position {
            value: Some(Scalar::Time(t)),
            id,
        });
        let Plan::Ordered(entries) = plan("acme", &q, &indexes()) else {
            panic!("creation order is served by keys");
        };
        let sources: Vec<&Source> = entries.iter().flatten().collect();
        assert!(sources.iter().all(|s| s.index == "by_type" && !s.forward));
        let (condition, values) = sources[0].key_condition();
        assert_eq!(condition, "gsi1pk = :pk AND gsi1sk <= :hi");
        assert_eq!(
            values
                .get(":hi")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some(format!("{}#{id}", format_datetime(t)).as_str())
        );

        let q = query(&[("parent", "root")]);
        let Plan::Ordered(entries) = plan("acme", &q, &indexes()) else {
            panic!("creation order is served by keys");
        };
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0][0].pk, "acme#root");

        let Plan::Ordered(entries) = plan("acme", &query(&[]), &indexes()) else {
            panic!("creation order is served by keys");
        };
        assert_eq!(entries[0][0].index, BY_CREATED);
        assert_eq!(entries[0][0].runs, Runs::WholeKey);
    }

    fn indexes() -> Indexes {
        Indexes::of(&TypeRegistry::with_crm())
    }

    #[test]
    fn indexed_fields_and_names_are_served_by_their_indexes() {
        let q = query(&[("type", "Deal"), ("attr.stage", "won")]);
        let Plan::Ordered(entries) = plan("acme", &q, &indexes()) else {
            panic!("an equality filter on an indexed field is served by its index");
        };
        let source = &entries[0][0];
        assert_eq!(
            (source.index, source.pk.as_str()),
            ("by_field_3", "acme#Deal#stage")
        );
        assert_eq!(source.lo.as_deref(), Some("1won\u{1}"));

        let q = query(&[
            ("type", "Deal"),
            ("sort", "-attr.amount"),
            ("attr.amount.gte", "10"),
        ]);
        let Plan::Ordered(entries) = plan("acme", &q, &indexes()) else {
            panic!("a sort on an indexed field is served by its index");
        };
        assert_eq!(
            entries[0].len(),
            1,
            "a filter on the field leaves out items without it"
        );
        assert!(!entries[0][0].forward);
        assert_eq!(entries[0][0].runs, Runs::Value);

        let q = query(&[("type", "Deal"), ("sort", "attr.amount")]);
        let Plan::Ordered(entries) = plan("acme", &q, &indexes()) else {
            panic!("a sort on an indexed field is served by its index");
        };
        assert_eq!(entries[0].len(), 2, "values, then the items without one");

        let q = query(&[("type", "Folder"), ("sort", "name"), ("name", "ab*")]);
        let Plan::Ordered(entries) = plan("acme", &q, &indexes()) else {
            panic!("name order is served by by_name");
        };
        assert_eq!(entries[0][0].index, BY_NAME);
        assert_eq!(entries[0][0].lo.as_deref(), Some("ab"));
    }

    #[test]
    fn other_sorts_read_the_candidates() {
        for params in [
            vec![("type", "Folder"), ("sort", "updated")],
            vec![("sort", "name")],
            vec![("type", "Deal"), ("sort", "attr.close_date")],
        ] {
            let q = query(&params);
            assert!(
                matches!(plan("acme", &q, &indexes()), Plan::Sorted(_)),
                "{params:?}"
            );
        }
    }
}
