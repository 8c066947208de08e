//! Pages of a DynamoDB query, read in key order within a read budget.
//!
//! A query is planned onto [`Source`]s: index partitions whose sort key runs in the query's
//! order (`by_type` and `by_parent` sort by `<created>#<id>`, `by_created` by creation time).
//! A page reads each source from the cursor on, a chunk at a time (`Limit`, then
//! `ExclusiveStartKey` within the page), merges the sources in the query's order (a type and
//! its subtypes are one partition each), and filters what it reads with the same semantics as
//! SQL ([`ItemQuery::matches`]). It stops at `limit` items, or once it has read the store's
//! budget of records: the page is then short and its cursor is the position of the last record
//! read, so the next page goes on from there and nothing is read twice or skipped.
//!
//! A sort no key serves (name, update time, an attribute) is done in memory over the query's
//! candidates when they fit in the budget; over more, the query is refused
//! ([`StoreError::NeedsIndex`]) rather than reading everything.

use std::collections::{HashSet, VecDeque};

use uuid::Uuid;

use super::{BY_CREATED, DynamoStore, Record, get_s, parent_key, record_item, s, sdk};
use crate::item::Item;
use crate::query::{ItemQuery, ParentFilter, Position, Scalar, SortKey};
use crate::store::{Page, StoreError};
use crate::types::value::format_datetime;

/// How many records one page reads at most, unless configured otherwise.
pub const DEFAULT_PAGE_READS: usize = 1000;

/// The most records one read of a source asks for.
const MAX_CHUNK: usize = 1000;

/// One partition of an index, read in order between inclusive bounds of its sort key.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Source {
    index: &'static str,
    pk_attr: &'static str,
    pk: String,
    sk_attr: &'static str,
    /// Lowest and highest sort key to read, both inclusive (the cursor's record itself is
    /// dropped by [`ItemQuery::is_after`]).
    lo: Option<String>,
    hi: Option<String>,
    forward: bool,
    /// Whether sort keys are unique (they end in the id). Otherwise (`by_created`) a run of
    /// equal keys is read whole and put in id order before any of it is used.
    unique: bool,
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
            unique: true,
        }
    }

    /// Reads in the direction of `query`, from `after` on.
    fn from(mut self, query: &ItemQuery, after: Option<String>) -> Self {
        self.forward = !query.sort.descending;
        if self.forward {
            self.lo = after;
        } else {
            self.hi = after;
        }
        self
    }

    fn key_condition(&self) -> (String, Record) {
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
    /// Every source yields in the query's order; the page merges them.
    Ordered(Vec<Source>),
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
    org_source.unique = false;
    vec![org_source]
}

/// How `query` is read from `org`'s partitions.
pub(super) fn plan(org: &str, query: &ItemQuery) -> Plan {
    match query.sort.key {
        SortKey::Created => Plan::Ordered(candidates(org, query, query.after.as_ref())),
        _ => Plan::Sorted(
            candidates(org, query, None)
                .into_iter()
                .map(|mut s| {
                    s.forward = true;
                    s
                })
                .collect(),
        ),
    }
}

/// What to do about a sort that no key serves over more than the budget.
fn needs_index(query: &ItemQuery, budget: usize) -> StoreError {
    let how = match (&query.sort.key, query.type_name.as_deref()) {
        (SortKey::Attr { field, .. }, Some(t)) => format!(
            "declare the field {field:?} of type {t} \"indexed\": true, or narrow the query"
        ),
        _ => "narrow the query (type=, parent=, name=) or sort by created".to_string(),
    };
    StoreError::NeedsIndex(format!(
        "sort={} is served by no index here and would read more than {budget} items: {how}",
        query.sort.spec()
    ))
}

/// A source being read during one page.
struct Stream {
    source: Source,
    /// Where DynamoDB's last read stopped within this page.
    start: Option<Record>,
    done: bool,
    /// Records read and not used yet, with their sort keys, in the query's order.
    buffer: VecDeque<(String, Item)>,
    chunk: usize,
}

impl Stream {
    fn new(source: Source, chunk: usize) -> Self {
        Stream {
            source,
            start: None,
            done: false,
            buffer: VecDeque::new(),
            chunk,
        }
    }

    /// Whether a read is needed before the head can be used: the buffer is empty, or holds
    /// only part of a run of equal keys.
    fn needs_read(&self) -> bool {
        if self.done {
            return false;
        }
        match (self.buffer.front(), self.buffer.back()) {
            (None, _) | (_, None) => true,
            (Some((first, _)), Some((last, _))) => !self.source.unique && first == last,
        }
    }
}

impl DynamoStore {
    /// One read of `stream`, of at most `limit` records; returns how many were read.
    async fn read(
        &self,
        query: &ItemQuery,
        stream: &mut Stream,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let (condition, values) = stream.source.key_condition();
        let out = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .index_name(stream.source.index)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(stream.source.forward)
            .limit(i32::try_from(limit.clamp(1, MAX_CHUNK)).unwrap_or(1))
            .set_exclusive_start_key(stream.start.take())
            .send()
            .await
            .map_err(sdk)?;
        let records = out.items.unwrap_or_default();
        let read = usize::try_from(out.scanned_count).unwrap_or(records.len());
        for r in &records {
            let sk = get_s(r, stream.source.sk_attr)
                .unwrap_or_default()
                .to_string();
            stream.buffer.push_back((sk, record_item(r)?));
        }
        if !stream.source.unique {
            stream
                .buffer
                .make_contiguous()
                .sort_by(|a, b| query.compare(&a.1, &b.1));
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => stream.start = Some(k),
            _ => stream.done = true,
        }
        stream.chunk = (stream.chunk * 2).min(MAX_CHUNK);
        Ok(read)
    }

    /// A page of `query` from sources that each yield in its order (see the module's
    /// documentation).
    pub(super) async fn ordered_page(
        &self,
        query: &ItemQuery,
        sources: Vec<Source>,
        subtree: &HashSet<Uuid>,
    ) -> Result<Page, StoreError> {
        let budget = self.page_reads;
        let keep = query.limit + 1;
        let mut streams: Vec<Stream> = sources.into_iter().map(|s| Stream::new(s, keep)).collect();
        let mut read = 0usize;
        let mut found: Vec<Item> = Vec::with_capacity(keep);
        // The last record read past the cursor: where a short page ends.
        let mut last: Option<Position> = None;
        loop {
            for stream in streams.iter_mut() {
                while stream.needs_read() {
                    // Past the budget, a page still finishes a run of equal keys, and reads
                    // until it has passed the cursor by one record, so that it moves on.
                    let finishing_run = !stream.buffer.is_empty();
                    if read >= budget && !finishing_run && last.is_some() {
                        return Ok(Page {
                            items: found,
                            next: last,
                        });
                    }
                    let limit = if read < budget {
                        stream.chunk.min(budget - read)
                    } else {
                        stream.chunk
                    };
                    read += self.read(query, stream, limit).await?;
                }
            }
            let head = streams
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.buffer.front().map(|(_, item)| (i, item)))
                .min_by(|a, b| query.compare(a.1, b.1))
                .map(|(i, _)| i);
            let Some(i) = head else {
                return Ok(Page::from_rows(query, found));
            };
            let Some((_, item)) = streams[i].buffer.pop_front() else {
                continue;
            };
            if !query.is_after(&item) {
                continue;
            }
            last = Some(query.sort.position_of(&item));
            if query.matches(&item, subtree) {
                found.push(item);
                if found.len() == keep {
                    return Ok(Page::from_rows(query, found));
                }
            }
        }
    }

    /// A page of `query` sorted in memory: every candidate is read, which is refused past the
    /// budget.
    pub(super) async fn sorted_page(
        &self,
        query: &ItemQuery,
        sources: Vec<Source>,
        subtree: &HashSet<Uuid>,
    ) -> Result<Page, StoreError> {
        let budget = self.page_reads;
        let mut read = 0usize;
        let mut found = Vec::new();
        for source in sources {
            let mut stream = Stream::new(source, query.limit + 1);
            while !stream.done {
                if read >= budget {
                    return Err(needs_index(query, budget));
                }
                // One more than the budget, to learn whether the candidates fit in it.
                let limit = stream.chunk.min(budget + 1 - read);
                read += self.read(query, &mut stream, limit).await?;
                found.extend(
                    stream
                        .buffer
                        .drain(..)
                        .map(|(_, item)| item)
                        .filter(|item| query.matches(item, subtree) && query.is_after(item)),
                );
            }
        }
        if read > budget {
            return Err(needs_index(query, budget));
        }
        found.sort_by(|a, b| query.compare(a, b));
        found.truncate(query.limit + 1);
        Ok(Page::from_rows(query, found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeRegistry;

    fn query(params: &[(&str, &str)]) -> ItemQuery {
        let registry = TypeRegistry::embedded().expect("embedded types");
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
        let Plan::Ordered(sources) = plan("acme", &q) else {
            panic!("creation order is served by keys");
        };
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
        let Plan::Ordered(sources) = plan("acme", &q) else {
            panic!("creation order is served by keys");
        };
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].pk, "acme#root");

        let Plan::Ordered(sources) = plan("acme", &query(&[])) else {
            panic!("creation order is served by keys");
        };
        assert_eq!(sources[0].index, BY_CREATED);
        assert!(!sources[0].unique);
    }

    #[test]
    fn other_sorts_read_the_candidates() {
        let q = query(&[("type", "Folder"), ("sort", "name")]);
        assert!(matches!(plan("acme", &q), Plan::Sorted(_)));
    }
}
