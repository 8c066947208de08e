//! Pages of a DynamoDB query, read in key order within a read budget.
//!
//! A page reads the sources its [`Plan`](super::plan::Plan) names from the cursor on, a chunk
//! at a time (`Limit`, then `ExclusiveStartKey` within the page), merges them in the query's
//! order (a type and its subtypes are one partition each), and filters what it reads with the
//! same semantics as SQL ([`ItemQuery::matches`]). It stops at `limit` items, or once it has
//! read the store's budget of records: the page is then short and its cursor is the position
//! of the last record used, so the next page goes on from there and nothing is read twice or
//! skipped. Where equal keys do not come in the query's order (`by_created`'s creation times,
//! one value of a field sorted on), a run of them is read whole before any of it is used, and
//! a short page ends before a run it has not used, so that the next page reads it again whole.
//!
//! A plan that must sort in memory (update time, name without a type, an unindexed
//! attribute) reads the query's candidates when they fit in the budget; over more, the query
//! is refused ([`StoreError::NeedsIndex`]) rather than reading everything.

use std::collections::VecDeque;

use super::plan::{Runs, Source, needs_index, run_too_long};
use super::readable::Subtrees;
use super::{DynamoStore, Record, get_s, record_item, sdk};
use crate::item::Item;
use crate::query::{ItemQuery, Position};
use crate::store::{Page, StoreError};

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
}

impl Stream {
    fn new(segments: Vec<Source>, chunk: usize) -> Self {
        Stream {
            segments: segments.into(),
            start: None,
            buffer: VecDeque::new(),
            chunk,
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
    /// One read of `stream`, of at most `limit` records; returns how many were read.
    async fn read(
        &self,
        query: &ItemQuery,
        stream: &mut Stream,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let Some(source) = stream.segments.front() else {
            return Ok(0);
        };
        let (condition, values) = source.key_condition();
        let out = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .index_name(source.index)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(source.forward)
            .limit(i32::try_from(limit.clamp(1, MAX_CHUNK)).unwrap_or(1))
            .set_exclusive_start_key(stream.start.take())
            .send()
            .await
            .map_err(sdk)?;
        let records = out.items.unwrap_or_default();
        let read = usize::try_from(out.scanned_count).unwrap_or(records.len());
        self.records_read
            .fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
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
            Some(k) if !k.is_empty() => stream.start = Some(k),
            _ => {
                stream.segments.pop_front();
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
        let mut streams: Vec<Stream> = entries
            .into_iter()
            .map(|s| Stream::new(s, first_read))
            .collect();
        let mut read = 0usize;
        let mut found: Vec<Item> = Vec::with_capacity(keep);
        // The last record read past the cursor: where a short page ends.
        let mut last: Option<Position> = None;
        loop {
            for stream in streams.iter_mut() {
                while stream.needs_read() {
                    // Past the budget, the page ends after the last record it used: a run
                    // not used yet is read again, whole, by the next page. A page that has
                    // used nothing reads on until it has (the first run whole, however long,
                    // within reason), so that every page moves on.
                    if read >= budget && last.is_some() {
                        return Ok(Page {
                            items: found,
                            next: last,
                        });
                    }
                    if read > 4 * budget {
                        return Err(run_too_long(query, budget));
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
        for source in sources {
            let mut stream = Stream::new(vec![source], query.limit + 1);
            while !stream.done() {
                if read >= budget {
                    return Err(needs_index(query, budget));
                }
                // One more than the budget, to learn whether the candidates fit in it.
                let limit = stream.chunk.min(budget + 1 - read);
                read += self.read(query, &mut stream, limit).await?;
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
