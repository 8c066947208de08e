//! The DynamoDB store (`aws-sdk-dynamodb`): one table, keys `pk`/`sk`.
//!
//! - An item is `pk = <org>`, `sk = I#<id>`, with three global secondary indexes: `by_type`
//!   (`<org>#<type>`, sorted by creation), `by_parent` (`<org>#<parent id or root>`) and
//!   `by_created` (`pk`, sorted by `created_at`: only items have that attribute, so it holds
//!   each org's items and nothing else).
//! - A username is claimed by `pk = <org>`, `sk = U#<username>`, written with
//!   `attribute_not_exists` in the same transaction as its account, so usernames stay unique;
//!   an `Extension` item's name likewise by `sk = X#<name>`.
//! - A token is `pk = TOKEN#<sha256>`, indexed under its org by account (`TA#`) and API key
//!   (`TK#`); a password hash is `PW#<account>`; counts of login attempts `FAIL#<key>`; settings
//!   `SETTING#<key>`; job records `JOB#<org>#<key>`. Tokens, job records and login-attempt
//!   windows carry `ttl` (epoch seconds), and the table's TTL on that attribute deletes them
//!   once expired (expired ones are refused before then).
//! - An identity-provider subject linked to an account is `pk = IDP#<issuer>\n<subject>`,
//!   written with a condition (free, or this account's) in the account's transaction.
//! - An org that has been set up (its `Org` item) is listed under `pk = ORGS`, `sk = <org>`,
//!   for the scheduler.
//!
//! Every `apply` is one `TransactWriteItems` (all or nothing, at most 100 records), with
//! conditions for versions, duplicates, parents and usernames; a cancelled transaction is
//! mapped back to the write that failed.
//!
//! Queries read index partitions in key order, a page's worth at a time and within a budget
//! of records ([`pages`]): the default order (creation) through `by_type`, `by_parent` or
//! `by_created`, so a page costs reads in proportion to the page, not to the data. A page may
//! end short of `limit` (filters no key serves skipped the records it could afford to read)
//! with its cursor set. The indexes are eventually consistent, so a child written a moment ago
//! may be missed by the check that refuses to delete a parent with children.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck,
    CreateGlobalSecondaryIndexAction, Delete, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate,
    IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue,
    ScalarAttributeType, TransactWriteItem,
};
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;
use uuid::Uuid;

mod filters;
mod indexes;
mod pages;
mod plan;
mod readable;

pub use pages::DEFAULT_PAGE_READS;

use super::{
    Attempt, IdentityLink, ItemStore, JobClaim, Page, Purged, StoreError, StoredToken, TypeCount,
    Write,
};
use crate::item::Item;
use crate::query::{ItemQuery, Readable};
use crate::types::value::format_datetime;

/// `TransactWriteItems` takes at most this many records.
const MAX_RECORDS: usize = 100;

/// The index of each org's items in creation order.
const BY_CREATED: &str = "by_created";

type Record = HashMap<String, AttributeValue>;

pub struct DynamoStore {
    table: String,
    client: OnceCell<Client>,
    /// The most records one page reads (see [`pages`]).
    page_reads: usize,
    /// The indexed fields of the types (see [`indexes`]).
    indexes: indexes::Indexes,
    /// Records read by queries so far (what DynamoDB bills for), for benchmarks and metrics.
    records_read: std::sync::atomic::AtomicU64,
    /// Records queries got back (those a `FilterExpression` let through), for benchmarks.
    records_returned: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynamoStore({})", self.table)
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// When DynamoDB's TTL may delete a record.
fn ttl(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp() + 1)
}

/// The attribute DynamoDB's TTL reads.
const TTL: &str = "ttl";

/// Orgs that have been set up are listed under this key.
const ORGS: &str = "ORGS";

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Record {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// The key of an identity-provider subject's link (an issuer holds no line break).
fn link_pk(issuer: &str, subject: &str) -> String {
    format!("IDP#{issuer}\n{subject}")
}

fn item_sk(id: Uuid) -> String {
    format!("I#{id}")
}

fn parent_key(org: &str, parent: Option<Uuid>) -> String {
    match parent {
        Some(p) => format!("{org}#{p}"),
        None => format!("{org}#root"),
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// An SDK error: the service unreachable, or a failed call.
/// The outcome of a conditional request: `None` when its condition refused it (the record
/// was not as asked), an error for anything else.
fn conditional<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<Option<T>, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk(e)),
    }
}

fn sdk<E: std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    e: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> StoreError {
    use aws_sdk_dynamodb::error::SdkError;
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            StoreError::Unavailable(format!("DynamoDB: {}", crate::aws::ErrorChain(&e)))
        }
        _ => StoreError::Backend(format!("DynamoDB: {}", crate::aws::ErrorChain(&e))),
    }
}

fn get_s<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
    r.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_uuid(r: &Record, name: &str) -> Result<Option<Uuid>, StoreError> {
    get_s(r, name)
        .map(|v| Uuid::parse_str(v).map_err(backend))
        .transpose()
}

fn get_time(r: &Record, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    get_s(r, name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(backend)
        })
        .transpose()
}

fn get_n(r: &Record, name: &str) -> Result<i64, StoreError> {
    r.get(name)
        .and_then(|v| v.as_n().ok())
        .ok_or_else(|| backend(format!("record has no number {name}")))?
        .parse()
        .map_err(backend)
}

/// The sort key of `by_type` and `by_parent`: creation order, ties by id.
fn created_key(item: &Item) -> String {
    format!("{}#{}", format_datetime(item.created_at), item.id)
}

fn item_record(org: &str, item: &Item, indexes: &indexes::Indexes) -> Record {
    let mut r = key(org, item_sk(item.id));
    r.insert("gsi1pk".into(), s(format!("{org}#{}", item.type_name)));
    r.insert("gsi1sk".into(), s(created_key(item)));
    r.insert("gsi2pk".into(), s(parent_key(org, item.parent)));
    r.insert("gsi2sk".into(), s(created_key(item)));
    indexes.keys(org, item, &mut r);
    filters::write(item, &mut r);
    r.insert("id".into(), s(item.id.to_string()));
    r.insert("org".into(), s(org));
    r.insert("type".into(), s(&item.type_name));
    r.insert("name".into(), s(&item.name));
    if let Some(p) = item.parent {
        r.insert("parent".into(), s(p.to_string()));
    }
    if let Some(o) = item.owner {
        r.insert("owner".into(), s(o.to_string()));
    }
    r.insert(
        "attributes".into(),
        s(serde_json::Value::Object(item.attributes.clone()).to_string()),
    );
    r.insert("version".into(), n(item.version));
    r.insert("created_at".into(), s(format_datetime(item.created_at)));
    r.insert("updated_at".into(), s(format_datetime(item.updated_at)));
    r
}

fn record_item(r: &Record) -> Result<Item, StoreError> {
    let text = |name: &str| {
        get_s(r, name)
            .map(str::to_string)
            .ok_or_else(|| backend(format!("item record has no {name}")))
    };
    let attributes: serde_json::Value =
        serde_json::from_str(&text("attributes")?).map_err(backend)?;
    Ok(Item {
        id: get_uuid(r, "id")?.ok_or_else(|| backend("item record has no id"))?,
        type_name: text("type")?,
        name: text("name")?,
        parent: get_uuid(r, "parent")?,
        org: text("org")?,
        owner: get_uuid(r, "owner")?,
        attributes: match attributes {
            serde_json::Value::Object(m) => m,
            _ => return Err(backend("attributes are not an object")),
        },
        version: get_n(r, "version")?,
        created_at: get_time(r, "created_at")?.ok_or_else(|| backend("no created_at"))?,
        updated_at: get_time(r, "updated_at")?.ok_or_else(|| backend("no updated_at"))?,
    })
}

/// The sort key of the record that claims the one name of `item` that is unique in its org:
/// an account's username (`U#`), an `Extension` item's name (`X#`).
fn name_claim(item: &Item) -> Option<String> {
    match item.type_name.as_str() {
        "Account" => item
            .attributes
            .get("username")
            .and_then(|v| v.as_str())
            .map(|u| format!("U#{u}")),
        "Extension" => Some(format!("X#{}", item.name)),
        _ => None,
    }
}

/// What a failed condition on one record of a transaction means.
#[derive(Debug, Clone)]
enum OnFail {
    /// Cannot fail (no condition).
    Never,
    Duplicate(Uuid),
    Stale {
        id: Uuid,
        expected: i64,
    },
    Missing(Uuid),
    Taken(Box<Item>),
    Recorded(String),
    /// An identity-provider subject another account holds: issuer and subject.
    Linked(String, String),
}

/// A transaction being built.
#[derive(Default)]
struct Tx {
    items: Vec<TransactWriteItem>,
    on_fail: Vec<OnFail>,
}

impl Tx {
    fn put(
        &mut self,
        table: &str,
        record: Record,
        condition: Option<(&str, Record)>,
        on_fail: OnFail,
    ) -> Result<(), StoreError> {
        let mut put = Put::builder().table_name(table).set_item(Some(record));
        if let Some((expression, values)) = condition {
            put = put.condition_expression(expression);
            if !values.is_empty() {
                put = put.set_expression_attribute_values(Some(values));
            }
        }
        self.items.push(
            TransactWriteItem::builder()
                .put(put.build().map_err(backend)?)
                .build(),
        );
        self.on_fail.push(on_fail);
        Ok(())
    }

    fn delete(&mut self, table: &str, key: Record) -> Result<(), StoreError> {
        let delete = Delete::builder().table_name(table).set_key(Some(key));
        self.items.push(
            TransactWriteItem::builder()
                .delete(delete.build().map_err(backend)?)
                .build(),
        );
        self.on_fail.push(OnFail::Never);
        Ok(())
    }

    /// Deletes the item record at `key` if it is still at `version`.
    fn delete_at(
        &mut self,
        table: &str,
        key: Record,
        id: Uuid,
        version: i64,
    ) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression("version = :v")
            .set_expression_attribute_values(Some(HashMap::from([(":v".to_string(), n(version))])))
            .build()
            .map_err(backend)?;
        self.items
            .push(TransactWriteItem::builder().delete(delete).build());
        self.on_fail.push(OnFail::Stale {
            id,
            expected: version,
        });
        Ok(())
    }

    fn exists(&mut self, table: &str, key: Record, id: Uuid) -> Result<(), StoreError> {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(backend)?;
        self.items
            .push(TransactWriteItem::builder().condition_check(check).build());
        self.on_fail.push(OnFail::Missing(id));
        Ok(())
    }
}

impl DynamoStore {
    /// A store on `table`; the SDK client is made on first use, with the region, credentials
    /// and endpoint (`AWS_ENDPOINT_URL`, e.g. for an emulator) the SDK resolves.
    pub fn new(table: &str) -> Self {
        DynamoStore {
            table: table.to_string(),
            client: OnceCell::new(),
            page_reads: pages::DEFAULT_PAGE_READS,
            indexes: indexes::Indexes::default(),
            records_read: std::sync::atomic::AtomicU64::new(0),
            records_returned: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many records the queries of this store have read so far.
    pub fn records_read(&self) -> u64 {
        self.records_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many records the queries of this store have got back so far (at most
    /// [`Self::records_read`]: a `FilterExpression` drops the rest at DynamoDB).
    pub fn records_returned(&self) -> u64 {
        self.records_returned
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes `items` of `org` as they are, 25 to a request (`BatchWriteItem`), without the
    /// checks of [`ItemStore::apply`] (versions, parents, usernames): for seeding a table
    /// with items known to be valid (benchmarks, imports), never for requests.
    pub async fn bulk_load(&self, org: &str, items: &[Item]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let client = self.client().await;
        for chunk in items.chunks(25) {
            let mut requests = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item_record(org, item, &self.indexes)))
                        .build()
                        .map_err(backend)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            while !requests.is_empty() {
                let out = client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(sdk)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// The same store, keeping the fields `types` declare indexed in the field indexes (and
    /// serving queries on them from there).
    pub fn with_types(mut self, types: &crate::types::TypeRegistry) -> Self {
        self.indexes = indexes::Indexes::of(types);
        self
    }

    /// The same store, reading at most `records` records for one page.
    pub fn with_page_reads(mut self, records: usize) -> Self {
        self.page_reads = records.max(1);
        self
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async { Client::new(&crate::aws::sdk_config().await) })
            .await
    }

    async fn get_record(&self, pk: String, sk: String) -> Result<Option<Record>, StoreError> {
        self.read_record(pk, sk, true).await
    }

    /// The record at `pk`/`sk`, read strongly consistent or not (half the read units, and
    /// may miss a write of the last second).
    async fn read_record(
        &self,
        pk: String,
        sk: String,
        consistent: bool,
    ) -> Result<Option<Record>, StoreError> {
        let out = self
            .client()
            .await
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.item)
    }

    /// A scan of every item record (`:i` is the items' sort key prefix; a caller that sets its
    /// own filter keeps `begins_with(sk, :i)` in it): for migrations and counts, never a
    /// request.
    fn scan_items(&self, client: &Client) -> ScanFluentBuilder {
        client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(sk, :i)")
            .expression_attribute_values(":i", s("I#"))
    }

    /// Every record of a key condition, following DynamoDB's pages.
    async fn query_all(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Record,
    ) -> Result<Vec<Record>, StoreError> {
        self.client()
            .await
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(sdk)
    }

    async fn children(&self, org: &str, parent: Uuid) -> Result<Vec<Record>, StoreError> {
        self.query_all(
            Some("by_parent"),
            "gsi2pk = :p",
            HashMap::from([(":p".to_string(), s(parent_key(org, Some(parent))))]),
        )
        .await
    }

    async fn send(&self, tx: Tx) -> Result<(), StoreError> {
        if tx.items.is_empty() {
            return Ok(());
        }
        if tx.items.len() > MAX_RECORDS {
            return Err(StoreError::TooLarge(format!(
                "this change writes {} records and DynamoDB takes at most {MAX_RECORDS} in one transaction: delete the subtree in parts",
                tx.items.len()
            )));
        }
        let result = self
            .client()
            .await
            .transact_write_items()
            .set_transact_items(Some(tx.items))
            .send()
            .await;
        let Err(e) = result else { return Ok(()) };
        let reasons = match e.as_service_error() {
            Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) => {
                c.cancellation_reasons().to_vec()
            }
            _ => return Err(sdk(e)),
        };
        for (reason, on_fail) in reasons.iter().zip(&tx.on_fail) {
            if reason.code() != Some("ConditionalCheckFailed") {
                continue;
            }
            return Err(match on_fail {
                OnFail::Never => backend("an unconditional write was refused"),
                OnFail::Duplicate(id) => StoreError::Duplicate(*id),
                OnFail::Missing(id) => StoreError::NotFound(*id),
                OnFail::Taken(item) => super::sql::name_taken(item),
                OnFail::Recorded(key) => StoreError::JobRecorded(key.clone()),
                OnFail::Linked(issuer, subject) => super::sql::identity_taken(issuer, subject),
                // The actual version is read by `apply`, outside the transaction.
                OnFail::Stale { id, expected } => StoreError::VersionConflict {
                    id: *id,
                    expected: *expected,
                    actual: -1,
                },
            });
        }
        Err(backend(format!(
            "the transaction was cancelled: {reasons:?}"
        )))
    }

    /// Adds the records of one write to `tx`. `created` and `deleted` hold the ids created and
    /// deleted earlier in the same transaction (DynamoDB cannot check a record it is also
    /// writing).
    async fn add(
        &self,
        tx: &mut Tx,
        org: &str,
        write: &Write,
        (created, deleted): (&mut HashSet<Uuid>, &mut HashSet<Uuid>),
    ) -> Result<(), StoreError> {
        let table = self.table.as_str();
        match write {
            Write::Create(item) => {
                tx.put(
                    table,
                    item_record(org, item, &self.indexes),
                    Some(("attribute_not_exists(pk)", HashMap::new())),
                    OnFail::Duplicate(item.id),
                )?;
                if let Some(p) = item.parent
                    && !created.contains(&p)
                {
                    tx.exists(table, key(org, item_sk(p)), p)?;
                }
                if item.type_name == "Org" {
                    tx.put(table, key(ORGS, org), None, OnFail::Never)?;
                }
                if let Some(claimed) = name_claim(item) {
                    let mut claim = key(org, claimed);
                    claim.insert("account".into(), s(item.id.to_string()));
                    tx.put(
                        table,
                        claim,
                        Some(("attribute_not_exists(pk)", HashMap::new())),
                        OnFail::Taken(Box::new(item.clone())),
                    )?;
                }
                created.insert(item.id);
            }
            Write::Update {
                item,
                expected_version,
            } => {
                let before = self.get(org, item.id).await?;
                let values = HashMap::from([(":v".to_string(), n(*expected_version))]);
                tx.put(
                    table,
                    item_record(org, item, &self.indexes),
                    Some(("version = :v", values)),
                    OnFail::Stale {
                        id: item.id,
                        expected: *expected_version,
                    },
                )?;
                if let Some(p) = item.parent
                    && before.as_ref().is_some_and(|b| b.parent != item.parent)
                    && !created.contains(&p)
                {
                    tx.exists(table, key(org, item_sk(p)), p)?;
                }
                let old = before.as_ref().and_then(name_claim);
                let new = name_claim(item);
                if old != new {
                    if let Some(claimed) = old {
                        tx.delete(table, key(org, claimed))?;
                    }
                    if let Some(claimed) = new {
                        let mut claim = key(org, claimed);
                        claim.insert("account".into(), s(item.id.to_string()));
                        tx.put(
                            table,
                            claim,
                            Some(("attribute_not_exists(pk)", HashMap::new())),
                            OnFail::Taken(Box::new(item.clone())),
                        )?;
                    }
                }
            }
            Write::Delete {
                id,
                expected_version,
            } => {
                let Some(item) = self.get(org, *id).await? else {
                    return Err(StoreError::NotFound(*id));
                };
                if item.version != *expected_version {
                    return Err(StoreError::VersionConflict {
                        id: *id,
                        expected: *expected_version,
                        actual: item.version,
                    });
                }
                // Children deleted earlier in the same transaction do not count.
                if self.children(org, *id).await?.iter().any(|c| {
                    get_uuid(c, "id")
                        .ok()
                        .flatten()
                        .is_none_or(|c| !deleted.contains(&c))
                }) {
                    return Err(StoreError::HasChildren(*id));
                }
                deleted.insert(*id);
                tx.delete_at(
                    table,
                    key(org, item_sk(item.id)),
                    item.id,
                    *expected_version,
                )?;
                if let Some(claimed) = name_claim(&item) {
                    tx.delete(table, key(org, claimed))?;
                }
                if item.type_name == "Org" {
                    tx.delete(table, key(ORGS, org))?;
                }
            }
            Write::PutToken {
                hash,
                account,
                api_key,
                expires,
            } => {
                let mut main = key(format!("TOKEN#{hash}"), "TOKEN");
                main.insert("org".into(), s(org));
                main.insert("account".into(), s(account.to_string()));
                if let Some(k) = api_key {
                    main.insert("api_key".into(), s(k.to_string()));
                }
                if let Some(e) = expires {
                    main.insert("expires".into(), s(format_datetime(*e)));
                    main.insert(TTL.into(), ttl(*e));
                }
                tx.put(table, main, None, OnFail::Never)?;
                let mut by_account = key(org, format!("TA#{account}#{hash}"));
                by_account.insert("hash".into(), s(hash.clone()));
                if let Some(e) = expires {
                    by_account.insert(TTL.into(), ttl(*e));
                }
                if let Some(k) = api_key {
                    by_account.insert("api_key".into(), s(k.to_string()));
                    let mut by_key = key(org, format!("TK#{k}#{hash}"));
                    by_key.insert("hash".into(), s(hash.clone()));
                    by_key.insert("account".into(), s(account.to_string()));
                    if let Some(e) = expires {
                        by_key.insert(TTL.into(), ttl(*e));
                    }
                    tx.put(table, by_key, None, OnFail::Never)?;
                }
                tx.put(table, by_account, None, OnFail::Never)?;
            }
            Write::DeleteToken { hash } => {
                if let Some(t) = self.token(hash).await?
                    && t.org == org
                {
                    self.delete_token(tx, org, hash, t.account, t.api_key)?;
                }
            }
            Write::DeleteTokensOf { account, api_keys } => {
                let records = self
                    .query_all(
                        None,
                        "pk = :o AND begins_with(sk, :p)",
                        HashMap::from([
                            (":o".to_string(), s(org)),
                            (":p".to_string(), s(format!("TA#{account}#"))),
                        ]),
                    )
                    .await?;
                for r in records {
                    let key_id = get_uuid(&r, "api_key")?;
                    if key_id.is_some() && !api_keys {
                        continue;
                    }
                    let hash = get_s(&r, "hash").unwrap_or_default().to_string();
                    self.delete_token(tx, org, &hash, *account, key_id)?;
                }
            }
            Write::DeleteApiKeyToken { api_key } => {
                let records = self
                    .query_all(
                        None,
                        "pk = :o AND begins_with(sk, :p)",
                        HashMap::from([
                            (":o".to_string(), s(org)),
                            (":p".to_string(), s(format!("TK#{api_key}#"))),
                        ]),
                    )
                    .await?;
                for r in records {
                    let hash = get_s(&r, "hash").unwrap_or_default().to_string();
                    let account = get_uuid(&r, "account")?
                        .ok_or_else(|| backend("TK# record has no account"))?;
                    self.delete_token(tx, org, &hash, account, Some(*api_key))?;
                }
            }
            Write::FinishJob {
                key: job_key,
                outcome,
            } => {
                let update = aws_sdk_dynamodb::types::Update::builder()
                    .table_name(table)
                    .set_key(Some(key(format!("JOB#{org}#{job_key}"), "JOB")))
                    .update_expression("SET #s = :done, outcome = :o")
                    .expression_attribute_names("#s", "state")
                    .expression_attribute_values(":done", s("done"))
                    .expression_attribute_values(":o", s(outcome.to_string()))
                    .build()
                    .map_err(backend)?;
                tx.items
                    .push(TransactWriteItem::builder().update(update).build());
                tx.on_fail.push(OnFail::Never);
            }
            Write::RecordJob {
                key: job_key,
                outcome,
                now,
                expires,
            } => {
                let mut record = key(format!("JOB#{org}#{job_key}"), "JOB");
                record.insert("state".into(), s("done"));
                record.insert("outcome".into(), s(outcome.to_string()));
                record.insert("lease_until".into(), s(format_datetime(*now)));
                record.insert("expires_at".into(), s(format_datetime(*expires)));
                record.insert(TTL.into(), ttl(*expires));
                let values = HashMap::from([(":now".to_string(), s(format_datetime(*now)))]);
                tx.put(
                    table,
                    record,
                    Some(("attribute_not_exists(pk) OR expires_at < :now", values)),
                    OnFail::Recorded(job_key.clone()),
                )?;
            }
            Write::LinkIdentity {
                issuer,
                subject,
                account,
            } => {
                let mut link = key(link_pk(issuer, subject), "IDP");
                link.insert("link_org".into(), s(org));
                link.insert("link_account".into(), s(account.to_string()));
                let values = HashMap::from([
                    (":o".to_string(), s(org)),
                    (":a".to_string(), s(account.to_string())),
                ]);
                tx.put(
                    table,
                    link,
                    Some((
                        "attribute_not_exists(pk) OR (link_org = :o AND link_account = :a)",
                        values,
                    )),
                    OnFail::Linked(issuer.clone(), subject.clone()),
                )?;
            }
            Write::UnlinkIdentity {
                issuer,
                subject,
                account,
            } => {
                if self
                    .identity_link(issuer, subject)
                    .await?
                    .is_some_and(|l| l.org == org && l.account == *account)
                {
                    tx.delete(table, key(link_pk(issuer, subject), "IDP"))?;
                }
            }
            Write::SetPassword { account, hash } => match hash {
                Some(h) => {
                    let mut r = key(org, format!("PW#{account}"));
                    r.insert("hash".into(), s(h.clone()));
                    tx.put(table, r, None, OnFail::Never)?;
                }
                None => tx.delete(table, key(org, format!("PW#{account}")))?,
            },
            Write::SetSetting { key: name, value } => {
                let record = key(format!("SETTING#{name}"), "SETTING");
                match value {
                    Some(v) => {
                        let mut r = record;
                        r.insert("value".into(), s(v.clone()));
                        tx.put(table, r, None, OnFail::Never)?;
                    }
                    None => tx.delete(table, record)?,
                }
            }
        }
        Ok(())
    }

    fn delete_token(
        &self,
        tx: &mut Tx,
        org: &str,
        hash: &str,
        account: Uuid,
        api_key: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let table = self.table.as_str();
        tx.delete(table, key(format!("TOKEN#{hash}"), "TOKEN"))?;
        tx.delete(table, key(org, format!("TA#{account}#{hash}")))?;
        if let Some(k) = api_key {
            tx.delete(table, key(org, format!("TK#{k}#{hash}")))?;
        }
        Ok(())
    }

    /// Turns on the table's TTL on [`TTL`] unless it is on.
    async fn enable_ttl(&self) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{TimeToLiveSpecification, TimeToLiveStatus};
        let client = self.client().await;
        let status = client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(sdk)?
            .time_to_live_description
            .and_then(|d| d.time_to_live_status);
        if matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL)
            .build()
            .map_err(backend)?;
        client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    /// Creates the table and its indexes (on-demand capacity) and waits until it is active.
    async fn create_table(&self) -> Result<(), StoreError> {
        let mut names = vec!["pk", "sk"];
        let mut gsis = Vec::new();
        for (name, hash, range) in table_indexes() {
            names.extend([hash, range]);
            gsis.push(index(name, hash, range)?);
        }
        names.sort_unstable();
        names.dedup();
        let definitions = names.into_iter().map(attr).collect::<Result<Vec<_>, _>>()?;
        let created = self
            .client()
            .await
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(definitions))
            .set_key_schema(Some(key_schema("pk", "sk")?))
            .set_global_secondary_indexes(Some(gsis))
            .send()
            .await;
        if let Err(e) = created {
            // Another process created it first.
            if !e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception())
            {
                return Err(sdk(e));
            }
        }
        for _ in 0..120 {
            let table = self
                .client()
                .await
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(sdk)?;
            if table
                .table
                .and_then(|t| t.table_status)
                .is_some_and(|s| s == aws_sdk_dynamodb::types::TableStatus::Active)
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(StoreError::Unavailable(format!(
            "table {} did not become active",
            self.table
        )))
    }

    /// Adds the index `name` on `hash` and `range` to a table made before it, and waits while
    /// DynamoDB fills it from the items already there.
    async fn add_index(&self, name: &str, hash: &str, range: &str) -> Result<(), StoreError> {
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(name)
            .set_key_schema(Some(key_schema(hash, range)?))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(backend)?;
        let updated = self
            .client()
            .await
            .update_table()
            .table_name(&self.table)
            .attribute_definitions(attr(hash)?)
            .attribute_definitions(attr(range)?)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await;
        if let Err(e) = updated {
            // Another process is adding it.
            if !e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception())
            {
                return Err(sdk(e));
            }
        }
        tracing::info!(table = %self.table, index = name, "adding an index; waiting until it is filled");
        self.wait_for_index(name).await
    }

    async fn wait_for_index(&self, name: &str) -> Result<(), StoreError> {
        for _ in 0..1800 {
            if self.index_statuses().await?.get(name) == Some(&IndexStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        Err(StoreError::Unavailable(format!(
            "the index {name} of table {} is still being built: run this again later",
            self.table
        )))
    }

    /// The status of each index the table has.
    async fn index_statuses(&self) -> Result<HashMap<String, IndexStatus>, StoreError> {
        let described = self
            .client()
            .await
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(sdk)?;
        Ok(described
            .table
            .and_then(|t| t.global_secondary_indexes)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| {
                let name = i.index_name()?.to_string();
                Some((name, i.index_status.unwrap_or(IndexStatus::Creating)))
            })
            .collect())
    }

    /// Adds the indexes a table made by an older version lacks, one at a time (DynamoDB
    /// builds one at a time), and waits for any still being built.
    async fn add_missing_indexes(&self) -> Result<(), StoreError> {
        let statuses = self.index_statuses().await?;
        for (name, hash, range) in table_indexes() {
            match statuses.get(name) {
                Some(IndexStatus::Active) => {}
                Some(_) => self.wait_for_index(name).await?,
                None => self.add_index(name, hash, range).await?,
            }
        }
        Ok(())
    }
}

/// Every index of the table: name, hash key and range key.
fn table_indexes() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut all = vec![
        ("by_type", "gsi1pk", "gsi1sk"),
        ("by_parent", "gsi2pk", "gsi2sk"),
        (BY_CREATED, "pk", "created_at"),
    ];
    all.extend(indexes::extra_indexes());
    all
}

/// The attributes that hold index keys of an item (the table's own `pk` and `sk` aside).
const INDEX_KEYS: [&str; 14] = [
    "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk", "gsi4sk", "x1pk", "x1sk",
    "x2pk", "x2sk", "x3pk", "x3sk",
];

/// The setting that records the index layout every item's keys follow.
const INDEX_LAYOUT: &str = "dynamodb.index_layout";

impl DynamoStore {
    /// Rewrites the items whose index keys or filterable attributes another layout made (an
    /// older version's, or before a field was declared indexed), once per layout: later writes carry the new keys.
    async fn reindex(&self) -> Result<(), StoreError> {
        let layout = self.indexes.fingerprint();
        if self.setting(INDEX_LAYOUT, "").await? == layout {
            return Ok(());
        }
        let client = self.client().await;
        let mut rewritten = 0u64;
        let mut records = self.scan_items(client).into_paginator().items().send();
        while let Some(r) = records.next().await {
            let r = r.map_err(sdk)?;
            let item = record_item(&r)?;
            let org = get_s(&r, "pk").unwrap_or_default();
            let record = item_record(org, &item, &self.indexes);
            let own = |rec: &Record| -> Vec<(String, AttributeValue)> {
                let mut own: Vec<_> = rec
                    .iter()
                    .filter(|(k, _)| filters::is_own(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                own.sort_by(|a, b| a.0.cmp(&b.0));
                own
            };
            if INDEX_KEYS.iter().all(|k| r.get(*k) == record.get(*k)) && own(&r) == own(&record) {
                continue;
            }
            // A write since the scan carries the new keys already.
            let put = client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(item.version))
                .send()
                .await;
            conditional(put)?;
            rewritten += 1;
        }
        if rewritten > 0 {
            tracing::info!(table = %self.table, rewritten, "index keys rewritten for the current layout");
        }
        self.put_setting(INDEX_LAYOUT, &layout).await
    }
}

/// The setting that records that every `Extension` item's name is claimed: items written
/// before names were claimed have no claim.
const EXTENSION_CLAIMS: &str = "dynamodb.extension_claims";

impl DynamoStore {
    /// Claims the name of every `Extension` item that has none, once: an earlier version
    /// wrote them without. Stops, naming them and claiming nothing, where an org has two of a
    /// name.
    async fn claim_extension_names(&self) -> Result<(), StoreError> {
        if self.setting(EXTENSION_CLAIMS, "").await? == "claimed" {
            return Ok(());
        }
        let client = self.client().await;
        let mut extensions = Vec::new();
        let mut records = self
            .scan_items(client)
            .filter_expression("begins_with(sk, :i) AND #type = :x")
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":x", s("Extension"))
            .into_paginator()
            .items()
            .send();
        while let Some(r) = records.next().await {
            let r = r.map_err(sdk)?;
            let org = get_s(&r, "pk").unwrap_or_default().to_string();
            extensions.push((org, record_item(&r)?));
        }
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (org, item) in &extensions {
            *counts.entry((org.clone(), item.name.clone())).or_default() += 1;
        }
        let shared: Vec<_> = counts
            .into_iter()
            .filter(|(_, count)| *count > 1)
            .map(|((org, name), count)| (org, name, count))
            .collect();
        super::duplicate_extension_names(&shared)?;
        for (org, item) in &extensions {
            let Some(claimed) = name_claim(item) else {
                continue;
            };
            let mut claim = key(org, claimed);
            claim.insert("account".into(), s(item.id.to_string()));
            let put = client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(claim))
                .condition_expression("attribute_not_exists(pk) OR account = :id")
                .expression_attribute_values(":id", s(item.id.to_string()))
                .send()
                .await;
            if conditional(put)?.is_none() {
                return Err(StoreError::Unavailable(format!(
                    "extension {:?} exists already in org {org:?}: its name is claimed by another item than {}; rename one of them, then start Realnet again",
                    item.name, item.id
                )));
            }
        }
        self.put_setting(EXTENSION_CLAIMS, "claimed").await
    }
}

/// A string attribute of a key.
fn attr(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(backend)
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    Ok(vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()
            .map_err(backend)?,
        KeySchemaElement::builder()
            .attribute_name(range)
            .key_type(KeyType::Range)
            .build()
            .map_err(backend)?,
    ])
}

/// An index of every attribute, on `hash` and `range`.
fn index(name: &str, hash: &str, range: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(key_schema(hash, range)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(backend)
}

#[async_trait]
impl ItemStore for DynamoStore {
    fn kind(&self) -> &'static str {
        "dynamodb"
    }

    /// Pages are read from global secondary indexes, which DynamoDB updates a moment after
    /// the write (AWS: usually within a second; twice that, to be safe).
    fn query_lag(&self) -> std::time::Duration {
        std::time::Duration::from_secs(2)
    }

    /// Creates the table if it does not exist (deployments create it with the template; this
    /// serves `realnet init` against an emulator or a sandbox account).
    async fn migrate(&self) -> Result<(), StoreError> {
        let described = self
            .client()
            .await
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        match described {
            Ok(_) => self.add_missing_indexes().await?,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                self.create_table().await?
            }
            Err(e) => return Err(sdk(e)),
        }
        self.reindex().await?;
        self.claim_extension_names().await?;
        self.enable_ttl().await
    }

    async fn get(&self, org: &str, id: Uuid) -> Result<Option<Item>, StoreError> {
        self.get_record(org.to_string(), item_sk(id))
            .await?
            .map(|r| record_item(&r))
            .transpose()
    }

    async fn apply(&self, org: &str, writes: &[Write]) -> Result<(), StoreError> {
        let mut tx = Tx::default();
        let (mut created, mut deleted) = (HashSet::new(), HashSet::new());
        for w in writes {
            self.add(&mut tx, org, w, (&mut created, &mut deleted))
                .await?;
        }
        match self.send(tx).await {
            Err(StoreError::VersionConflict { id, expected, .. }) => {
                Err(match self.get(org, id).await? {
                    Some(current) => StoreError::VersionConflict {
                        id,
                        expected,
                        actual: current.version,
                    },
                    None => StoreError::NotFound(id),
                })
            }
            other => other,
        }
    }

    async fn query(&self, org: &str, query: &ItemQuery) -> Result<Page, StoreError> {
        if let Readable::Only {
            types,
            owner,
            subtrees,
            ..
        } = &query.readable
            && types.is_empty()
            && owner.is_none()
            && subtrees.is_empty()
        {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let mut subtrees = readable::Subtrees::of(query);
        match plan::plan(org, query, &self.indexes) {
            plan::Plan::Ordered(sources) => {
                self.ordered_page(org, query, sources, &mut subtrees).await
            }
            plan::Plan::Sorted(sources) => {
                self.sorted_page(org, query, sources, &mut subtrees).await
            }
        }
    }

    async fn ancestors(&self, org: &str, id: Uuid, max: usize) -> Result<Vec<Uuid>, StoreError> {
        let mut out = Vec::new();
        let mut at = self.get(org, id).await?.and_then(|i| i.parent);
        while let Some(p) = at {
            if out.len() >= max || out.contains(&p) {
                break;
            }
            out.push(p);
            at = self.get(org, p).await?.and_then(|i| i.parent);
        }
        Ok(out)
    }

    async fn levels_below(&self, org: &str, id: Uuid, max: usize) -> Result<usize, StoreError> {
        let mut level = Vec::from([id]);
        let mut levels = 0;
        while levels < max {
            let mut next = Vec::new();
            for parent in &level {
                for child in self.children(org, *parent).await? {
                    next.extend(get_uuid(&child, "id")?);
                }
            }
            if next.is_empty() {
                break;
            }
            levels += 1;
            level = next;
        }
        Ok(levels)
    }

    async fn counts(&self) -> Result<Vec<TypeCount>, StoreError> {
        let mut counts: HashMap<(String, String), i64> = HashMap::new();
        let mut records = self
            .scan_items(self.client().await)
            .into_paginator()
            .items()
            .send();
        while let Some(r) = records.next().await {
            let r = r.map_err(sdk)?;
            let org = get_s(&r, "org").unwrap_or_default().to_string();
            let t = get_s(&r, "type").unwrap_or_default().to_string();
            *counts.entry((org, t)).or_default() += 1;
        }
        let mut out: Vec<TypeCount> = counts
            .into_iter()
            .map(|((org, type_name), count)| TypeCount {
                org,
                type_name,
                count,
            })
            .collect();
        out.sort_by(|a, b| (&a.org, &a.type_name).cmp(&(&b.org, &b.type_name)));
        Ok(out)
    }

    async fn setting(&self, name: &str, initial: &str) -> Result<String, StoreError> {
        let mut record = key(format!("SETTING#{name}"), "SETTING");
        record.insert("value".into(), s(initial));
        let put = self
            .client()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(put)?;
        let r = self
            .get_record(format!("SETTING#{name}"), "SETTING".into())
            .await?;
        r.as_ref()
            .and_then(|r| get_s(r, "value"))
            .map(str::to_string)
            .ok_or_else(|| backend(format!("setting {name} vanished")))
    }

    async fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let mut record = key(format!("SETTING#{name}"), "SETTING");
        record.insert("value".into(), s(value));
        self.client()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .send()
            .await
            .map(drop)
            .map_err(sdk)
    }

    async fn token(&self, hash: &str) -> Result<Option<StoredToken>, StoreError> {
        let Some(r) = self
            .get_record(format!("TOKEN#{hash}"), "TOKEN".into())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(StoredToken {
            org: get_s(&r, "org").unwrap_or_default().to_string(),
            account: get_uuid(&r, "account")?.ok_or_else(|| backend("token has no account"))?,
            api_key: get_uuid(&r, "api_key")?,
            expires: get_time(&r, "expires")?,
        }))
    }

    async fn identity_link(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<IdentityLink>, StoreError> {
        let Some(r) = self
            .get_record(link_pk(issuer, subject), "IDP".into())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(IdentityLink {
            org: get_s(&r, "link_org").unwrap_or_default().to_string(),
            account: get_uuid(&r, "link_account")?
                .ok_or_else(|| backend("an identity link has no account"))?,
        }))
    }

    async fn password(&self, org: &str, account: Uuid) -> Result<Option<String>, StoreError> {
        let r = self
            .get_record(org.to_string(), format!("PW#{account}"))
            .await?;
        Ok(r.as_ref()
            .and_then(|r| get_s(r, "hash"))
            .map(str::to_string))
    }

    async fn count_attempt(
        &self,
        name: &str,
        limit: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<Attempt, StoreError> {
        let pk = format!("FAIL#{name}");
        let ws = s(format_datetime(window_start));
        // Count on in a window still open, below the limit (or open one where there is none);
        // else start a new window over one that is over; else the limit is reached. A race
        // between two of these is settled by the conditions, and the loser tries again.
        for _ in 0..5 {
            let counted = self
                .client()
                .await
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), "FAIL")))
                .update_expression("ADD #c :one SET since = if_not_exists(since, :now), #t = if_not_exists(#t, :ttl)")
                .condition_expression("attribute_not_exists(pk) OR (since >= :ws AND #c < :limit)")
                .expression_attribute_names("#c", "count")
                .expression_attribute_names("#t", TTL)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", s(format_datetime(now)))
                .expression_attribute_values(":ttl", ttl(now + (now - window_start)))
                .expression_attribute_values(":ws", ws.clone())
                .expression_attribute_values(":limit", n(limit))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            if let Some(out) = conditional(counted)? {
                let r = out.attributes.unwrap_or_default();
                let since = get_time(&r, "since")?.ok_or_else(|| backend("no since"))?;
                return Ok(Attempt::Counted { since });
            }
            let mut fresh = key(pk.clone(), "FAIL");
            fresh.insert("count".into(), n(1));
            fresh.insert("since".into(), s(format_datetime(now)));
            // The window ends a window's length from now.
            fresh.insert(TTL.into(), ttl(now + (now - window_start)));
            let started = self
                .client()
                .await
                .put_item()
                .table_name(&self.table)
                .set_item(Some(fresh))
                .condition_expression("since < :ws")
                .expression_attribute_values(":ws", ws.clone())
                .send()
                .await;
            if conditional(started)?.is_some() {
                return Ok(Attempt::Counted { since: now });
            }
            if let Some(r) = self.get_record(pk.clone(), "FAIL".into()).await?
                && let Some(since) = get_time(&r, "since")?
                && since >= window_start
                && get_n(&r, "count")? >= limit
            {
                return Ok(Attempt::Refused { since });
            }
        }
        Err(StoreError::Unavailable(
            "the login-attempt counter is contended".into(),
        ))
    }

    async fn uncount_attempt(&self, name: &str, since: DateTime<Utc>) -> Result<(), StoreError> {
        let taken = self
            .client()
            .await
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("FAIL#{name}"), "FAIL")))
            .update_expression("ADD #c :minus")
            .condition_expression("since = :since AND #c > :zero")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":since", s(format_datetime(since)))
            .send()
            .await;
        conditional(taken).map(drop)
    }

    async fn begin_job(
        &self,
        org: &str,
        key_name: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<JobClaim, StoreError> {
        let pk = format!("JOB#{org}#{key_name}");
        let mut record = key(pk.clone(), "JOB");
        record.insert("state".into(), s("running"));
        record.insert("lease_until".into(), s(format_datetime(lease_until)));
        record.insert("expires_at".into(), s(format_datetime(expires)));
        record.insert(TTL.into(), ttl(expires));
        let claimed = self
            .client()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression(
                "attribute_not_exists(pk) OR (#s = :running AND lease_until < :now) OR expires_at < :now",
            )
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":now", s(format_datetime(now)))
            .send()
            .await;
        if conditional(claimed)?.is_some() {
            return Ok(JobClaim::Started);
        }
        let r = self.get_record(pk, "JOB".into()).await?.unwrap_or_default();
        Ok(match (get_s(&r, "state"), get_s(&r, "outcome")) {
            (Some("done"), Some(o)) => JobClaim::Done(serde_json::from_str(o).map_err(backend)?),
            _ => JobClaim::Busy,
        })
    }

    async fn abandon_job(&self, org: &str, key_name: &str) -> Result<(), StoreError> {
        let deleted = self
            .client()
            .await
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("JOB#{org}#{key_name}"), "JOB")))
            .condition_expression("#s = :running")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":running", s("running"))
            .send()
            .await;
        conditional(deleted).map(drop)
    }

    async fn clear_attempts(&self, name: &str) -> Result<(), StoreError> {
        self.client()
            .await
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("FAIL#{name}"), "FAIL")))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn job_outcome(
        &self,
        org: &str,
        key_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let Some(r) = self
            .get_record(format!("JOB#{org}#{key_name}"), "JOB".into())
            .await?
        else {
            return Ok(None);
        };
        let live = get_s(&r, "expires_at").is_some_and(|e| e >= format_datetime(now).as_str());
        match (get_s(&r, "state"), get_s(&r, "outcome")) {
            (Some("done"), Some(o)) if live => Ok(Some(serde_json::from_str(o).map_err(backend)?)),
            _ => Ok(None),
        }
    }

    async fn orgs(&self) -> Result<Vec<String>, StoreError> {
        let records = self
            .query_all(
                None,
                "pk = :p",
                HashMap::from([(":p".to_string(), s(ORGS))]),
            )
            .await?;
        Ok(records
            .iter()
            .filter_map(|r| get_s(r, "sk").map(str::to_string))
            .collect())
    }

    /// DynamoDB's TTL deletes expired records (see the module's documentation).
    async fn purge_expired(
        &self,
        _now: DateTime<Utc>,
        _failures_before: DateTime<Utc>,
    ) -> Result<Option<Purged>, StoreError> {
        Ok(None)
    }
}
