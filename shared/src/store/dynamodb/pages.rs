//! Pages of a DynamoDB query, read in key order within a read budget.
//!
//! A page reads the sources its [`Plan`](super::plan::Plan) names from the cursor on, a chunk
//! at a time (`Limit`, then `ExclusiveStartKey` within the page), merges them in the query's
//! order (a type and its subtypes are one partition each), and filters what it reads with the
//! same semantics as SQL ([`ItemQuery::matches`]), after DynamoDB has dropped what the
//! query's `FilterExpression` rules out ([`super::filters`]; on sources whose keys run in the
//! query's order). It stops at `limit` items, or once it has read the store's budget of
//! records (DynamoDB's `ScannedCount`, filtered or not): the page is then short and its cursor
//! is the furthest position every source has been read to (where DynamoDB's last read of a
//! filtered source stopped, or the last record used), so the next page goes on from there and
//! nothing is read twice or skipped. Where equal keys do not come in the query's order (`by_created`'s creation times,
//! one value of a field sorted on), a run of them is read whole before any of it is used, and
//! a short page ends before a run it has not used, so that the next page reads it again whole.
//!
//! A plan that must sort in memory (update time, name without a type, an unindexed
//! attribute) reads the query's candidates when they fit in the budget; over more, the query
//! is refused ([`StoreError::NeedsIndex`]) rather than reading everything.

use std::collections::VecDeque;

use std::cmp::Ordering;

use super::filters::{self, Filter};
use super::indexes::END;
use super::plan::{Runs, Source, needs_index, run_too_long};
use super::readable::Subtrees;
use super::{DynamoStore, Record, get_s, record_item, sdk};
use crate::item::Item;
use crate::query::{ItemQuery, Position, Scalar, SortKey};
use crate::store::{Page, StoreError};
use crate::types::value::parse_datetime;

/// How many records one page reads at most, unless configured otherwise.
pub const DEFAULT_PAGE_READS: usize = 1000;

/// The most records one read of a source asks for.
const MAX_CHUNK: usize = 1000;

/// A source being read during one page: the sources of one plan entry, in turn.
struct Stream {
    segments: VecDeque<Source>,
    /// Where DynamoDB's last read stopped within this page.
    start: Option<Record>,
    /// Records read and not used yet, with the run each belongs to, in the query's order.
    buffer: VecDeque<(Option<String>, Item)>,
    chunk: usize,
    /// Where DynamoDB's last read of a filtered source stopped, as a position in the query's
    /// order: every record up to it has been read (and let through, or ruled out).
    seen: Option<Position>,
}

impl Stream {
    fn new(segments: Vec<Source>, chunk: usize) -> Self {
        Stream {
            segments: segments.into(),
            start: None,
            buffer: VecDeque::new(),
            chunk,
            seen: None,
        }
    }

    fn done(&self) -> bool {
        self.segments.is_empty()
    }

    /// Whether a read is needed before the head can be used: the buffer is empty, or holds
    /// only part of a run.
    fn needs_read(&self) -> bool {
        if self.done() {
            return false;
        }
        match (self.buffer.front(), self.buffer.back()) {
            (Some((Some(first), _)), Some((Some(last), _))) => first == last,
            (Some(_), _) => false,
            (None, _) => true,
        }
    }
}

impl DynamoStore {
    /// One read of `stream`, of at most `limit` records, DynamoDB dropping what `filter` rules
    /// out; returns how many were read (filtered or not).
    async fn read(
        &self,
        query: &ItemQuery,
        stream: &mut Stream,
        limit: usize,
        filter: Option<&Filter>,
    ) -> Result<usize, StoreError> {
        let Some(source) = stream.segments.front() else {
            return Ok(0);
        };
        let (condition, mut values) = source.key_condition();
        let mut request = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .index_name(source.index)
            .key_condition_expression(condition);
        if let Some(f) = filter {
            values.extend(f.values.clone());
            request = request
                .filter_expression(&f.expression)
                .set_expression_attribute_names((!f.names.is_empty()).then(|| f.names.clone()));
        }
        let out = request
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(source.forward)
            .limit(i32::try_from(limit.clamp(1, MAX_CHUNK)).unwrap_or(1))
            .set_exclusive_start_key(stream.start.take())
            .send()
            .await
            .map_err(sdk)?;
        let records = out.items.unwrap_or_default();
        // `Limit` and the budget count the records read before the filter.
        let read = usize::try_from(out.scanned_count).unwrap_or(records.len());
        self.records_read
            .fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
        self.records_returned
            .fetch_add(records.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for r in &records {
            let run = source.run_of(get_s(r, source.sk_attr).unwrap_or_default());
            stream.buffer.push_back((run, record_item(r)?));
        }
        if source.runs != Runs::None {
            stream
                .buffer
                .make_contiguous()
                .sort_by(|a, b| query.compare(&a.1, &b.1));
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => {
                if filter.is_some() {
                    stream.seen =
                        get_s(&k, source.sk_attr).and_then(|sk| position_of_key(query, sk));
                }
                stream.start = Some(k);
            }
            _ => {
                stream.segments.pop_front();
                stream.seen = None;
            }
        }
        stream.chunk = (stream.chunk * 2).min(MAX_CHUNK);
        Ok(read)
    }

    /// A page of `query` from sources that each yield in its order (see the module's
    /// documentation).
    pub(super) async fn ordered_page(
        &self,
        org: &str,
        query: &ItemQuery,
        entries: Vec<Vec<Source>>,
        subtrees: &mut Subtrees,
    ) -> Result<Page, StoreError> {
        let budget = self.page_reads;
        let keep = query.limit + 1;
        // A page after a cursor reads the cursor's own record again first (bounds are
        // inclusive, so that runs of equal keys can be read whole).
        let first_read = keep + usize::from(query.after.is_some());
        let filter = filters::of(query);
        // A position can be told from the keys, and runs of equal keys need no reading whole,
        // only where the keys run in the query's order: elsewhere the page filters alone.
        let filtered = |s: &[Source]| {
            filter
                .as_ref()
                .filter(|_| s.iter().all(|s| s.runs == Runs::None) && keyed_order(query))
        };
        let mut streams: Vec<(Stream, Option<&Filter>)> = entries
            .into_iter()
            .map(|s| {
                let f = filtered(&s);
                (Stream::new(s, first_read), f)
            })
            .collect();
        let mut read = 0usize;
        let mut found: Vec<Item> = Vec::with_capacity(keep);
        // The last record read past the cursor: where a short page ends.
        let mut last: Option<Position> = None;
        loop {
            for i in 0..streams.len() {
                while streams[i].0.needs_read() {
                    // Past the budget, the page ends where every source has been read to (the
                    // last record it used, or further where DynamoDB filtered): a run not
                    // used yet is read again, whole, by the next page. A page that has used
                    // nothing and read no filtered source reads on until it has (the first
                    // run whole, however long, within reason), so that every page moves on.
                    if read >= budget {
                        let next = read_to(query, &streams, last.as_ref()).or(last.clone());
                        if next.is_some() {
                            return Ok(Page { items: found, next });
                        }
                    }
                    if read > 4 * budget {
                        return Err(run_too_long(query, budget));
                    }
                    let (stream, filter) = &mut streams[i];
                    let limit = if read < budget {
                        stream.chunk.min(budget - read)
                    } else {
                        stream.chunk
                    };
                    read += self.read(query, stream, limit, *filter).await?;
                }
            }
            let head = streams
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.0.buffer.front().map(|(_, item)| (i, item)))
                .min_by(|a, b| query.compare(a.1, b.1))
                .map(|(i, _)| i);
            let Some(i) = head else {
                return Ok(Page::from_rows(query, found));
            };
            let Some((_, item)) = streams[i].0.buffer.pop_front() else {
                continue;
            };
            if !query.is_after(&item) {
                continue;
            }
            last = Some(query.sort.position_of(&item));
            read += self.place(org, query, subtrees, &item).await?;
            if query.matches(&item, &subtrees.inside) {
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
        org: &str,
        query: &ItemQuery,
        sources: Vec<Source>,
        subtrees: &mut Subtrees,
    ) -> Result<Page, StoreError> {
        let budget = self.page_reads;
        let mut read = 0usize;
        let mut found = Vec::new();
        // Every candidate is read, so DynamoDB may filter any source.
        let filter = filters::of(query);
        for source in sources {
            let mut stream = Stream::new(vec![source], query.limit + 1);
            while !stream.done() {
                if read >= budget {
                    return Err(needs_index(query, budget));
                }
                // One more than the budget, to learn whether the candidates fit in it.
                let limit = stream.chunk.min(budget + 1 - read);
                read += self
                    .read(query, &mut stream, limit, filter.as_ref())
                    .await?;
                for (_, item) in stream.buffer.drain(..) {
                    if !query.is_after(&item) {
                        continue;
                    }
                    read += self.place(org, query, subtrees, &item).await?;
                    if query.matches(&item, &subtrees.inside) {
                        found.push(item);
                    }
                }
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

/// Whether the keys of a source with no runs tell the position of a record in `query`'s
/// order: creation order (`<created>#<id>` ends every such key) and name order (`by_name`).
fn keyed_order(query: &ItemQuery) -> bool {
    matches!(query.sort.key, SortKey::Created | SortKey::Name)
}

/// The position in `query`'s order of the record whose sort key is `sk` (see
/// [`keyed_order`]). A name cut to fit the key gives a position before the record's own, so
/// the next page reads it again rather than skipping anything.
fn position_of_key(query: &ItemQuery, sk: &str) -> Option<Position> {
    match query.sort.key {
        SortKey::Created => {
            let key = sk.rsplit(END).next()?;
            let (created, id) = key.rsplit_once('#')?;
            Some(Position {
                value: Some(Scalar::Time(parse_datetime(created).ok()?)),
                id: id.parse().ok()?,
            })
        }
        SortKey::Name => {
            let (name, id) = sk.rsplit_once(END)?;
            Some(Position {
                value: Some(Scalar::Text(name.to_string())),
                id: id.parse().ok()?,
            })
        }
        _ => None,
    }
}

/// How far a short page has read every stream to, if further than `last` (the last record it
/// used): the least position DynamoDB's reads of the streams still to read stopped at, if
/// each was filtered and nothing read and unused comes before it.
fn read_to(
    query: &ItemQuery,
    streams: &[(Stream, Option<&Filter>)],
    last: Option<&Position>,
) -> Option<Position> {
    let mut end: Option<&Position> = None;
    for (stream, _) in streams {
        if stream.needs_read() {
            if !stream.buffer.is_empty() {
                return None;
            }
            let seen = stream.seen.as_ref()?;
            if end.is_none_or(|e| query.compare_positions(seen, e) == Ordering::Less) {
                end = Some(seen);
            }
        }
    }
    let end = end?;
    let unused_before = streams.iter().any(|(stream, _)| {
        stream.buffer.front().is_some_and(|(_, item)| {
            query.compare_positions(&query.sort.position_of(item), end) != Ordering::Greater
        })
    });
    // The page must move on from its cursor, and past the last record it used.
    let behind = [last, query.after.as_ref()]
        .into_iter()
        .flatten()
        .any(|p| query.compare_positions(end, p) != Ordering::Greater);
    (!unused_before && !behind).then(|| end.clone())
}
