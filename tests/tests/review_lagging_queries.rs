//! A store whose queries lag its writes (DynamoDB reads pages from global secondary indexes,
//! which it updates a moment after the write) never grants from what it reads late: a rule
//! revoked, or an org's portfolio changed, a moment ago is not read back from a lagging page
//! and kept; a schedule disabled a moment ago does not run; a recursive delete checks each
//! descendant where it is now; and what a lagging page misses (a rule just made) is not kept
//! once the page has caught up. The store here is SQLite behind a wrapper whose pages, once
//! frozen, are the ones it answered before, as a lagging index would answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use realnet::item::Item;
use realnet::query::ItemQuery;
use realnet::store::{
    Attempt, IdentityLink, ItemStore, JobClaim, Page, Purged, StoreError, StoredToken, TypeCount,
    Write,
};
use realnet_tests::{StoreKind, TestApp, id_of};
use serde_json::json;
use uuid::Uuid;

/// How long the wrapper says its queries may lag.
const LAG: Duration = Duration::from_millis(500);

/// `inner`, whose query pages stop changing once `frozen` is set: each query answers what it
/// answered last before, as an index that has not caught up yet would.
struct Lagging {
    inner: Arc<dyn ItemStore>,
    frozen: AtomicBool,
    seen: Mutex<HashMap<String, Page>>,
}

impl Lagging {
    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// The index has caught up.
    fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}

#[async_trait]
impl ItemStore for Lagging {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn query_lag(&self) -> Duration {
        LAG
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }
    async fn get(&self, org: &str, id: Uuid) -> Result<Option<Item>, StoreError> {
        self.inner.get(org, id).await
    }
    async fn apply(&self, org: &str, writes: &[Write]) -> Result<(), StoreError> {
        self.inner.apply(org, writes).await
    }
    async fn query(&self, org: &str, query: &ItemQuery) -> Result<Page, StoreError> {
        let key = format!("{org}\n{query:?}");
        if self.frozen.load(Ordering::SeqCst)
            && let Some(page) = self.seen.lock().expect("lock").get(&key)
        {
            return Ok(page.clone());
        }
        let page = self.inner.query(org, query).await?;
        if !self.frozen.load(Ordering::SeqCst) {
            self.seen.lock().expect("lock").insert(key, page.clone());
        }
        Ok(page)
    }
    async fn ancestors(&self, org: &str, id: Uuid, max: usize) -> Result<Vec<Uuid>, StoreError> {
        self.inner.ancestors(org, id, max).await
    }
    async fn levels_below(&self, org: &str, id: Uuid, max: usize) -> Result<usize, StoreError> {
        self.inner.levels_below(org, id, max).await
    }
    async fn counts(&self) -> Result<Vec<TypeCount>, StoreError> {
        self.inner.counts().await
    }
    async fn setting(&self, key: &str, initial: &str) -> Result<String, StoreError> {
        self.inner.setting(key, initial).await
    }
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.put_setting(key, value).await
    }
    async fn token(&self, hash: &str) -> Result<Option<StoredToken>, StoreError> {
        self.inner.token(hash).await
    }
    async fn identity_link(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<IdentityLink>, StoreError> {
        self.inner.identity_link(issuer, subject).await
    }
    async fn password(&self, org: &str, account: Uuid) -> Result<Option<String>, StoreError> {
        self.inner.password(org, account).await
    }
    async fn count_attempt(
        &self,
        key: &str,
        limit: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<Attempt, StoreError> {
        self.inner
            .count_attempt(key, limit, now, window_start)
            .await
    }
    async fn uncount_attempt(&self, key: &str, since: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.uncount_attempt(key, since).await
    }
    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        self.inner.clear_attempts(key).await
    }
    async fn begin_job(
        &self,
        org: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<JobClaim, StoreError> {
        self.inner
            .begin_job(org, key, now, lease_until, expires)
            .await
    }
    async fn abandon_job(&self, org: &str, key: &str) -> Result<(), StoreError> {
        self.inner.abandon_job(org, key).await
    }
    async fn job_outcome(
        &self,
        org: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner.job_outcome(org, key, now).await
    }
    async fn orgs(&self) -> Result<Vec<String>, StoreError> {
        self.inner.orgs().await
    }
    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        failures_before: DateTime<Utc>,
    ) -> Result<Option<Purged>, StoreError> {
        self.inner.purge_expired(now, failures_before).await
    }
}

/// An app on SQLite behind [`Lagging`], caching for a minute, and the wrapper.
async fn lagging_app() -> (TestApp, Arc<Lagging>) {
    let mut lagging = None;
    let app = TestApp::wrapping_store(
        StoreKind::Sqlite,
        |c| c.auth.cache_ttl = Duration::from_secs(60),
        |inner| {
            let wrapper = Arc::new(Lagging {
                inner,
                frozen: AtomicBool::new(false),
                seen: Mutex::new(HashMap::new()),
            });
            lagging = Some(wrapper.clone());
            wrapper
        },
    )
    .await;
    (app, lagging.expect("the store was wrapped"))
}

/// A company that the member alice made: the token of bob (another member) and its route.
async fn alices_company(app: &TestApp) -> (String, String) {
    let (_, alice) = app.account("default", "alice", false).await;
    let (_, bob) = app.account("default", "bob", false).await;
    let company = app
        .call_as(
            Some(&alice),
            Method::POST,
            "/api/companies",
            Some(json!({"name": "A"})),
            &[],
        )
        .await;
    assert_eq!(company.status, StatusCode::CREATED, "{}", company.text);
    (bob, format!("/api/companies/{}", id_of(&company.body)))
}

/// A rule that lets members read and update companies.
async fn members_edit_companies(app: &TestApp) -> serde_json::Value {
    app.create(json!({"type": "Acl", "name": "members edit companies",
        "attributes": {"principal": "members", "permissions": ["read", "update"],
            "target_type": "Company"}}))
        .await
}

/// `token` renames the item at `uri` to `name`.
async fn rename(app: &TestApp, token: &str, uri: &str, name: &str) -> realnet_tests::Answer {
    app.call_as(
        Some(token),
        Method::PATCH,
        uri,
        Some(json!({"name": name})),
        &[],
    )
    .await
}

/// A rule deleted a moment ago grants nothing, though the lagging page still holds it.
#[tokio::test]
async fn a_revoked_rule_is_not_read_back_from_a_lagging_page() {
    let (app, lagging) = lagging_app().await;
    let (bob, uri) = alices_company(&app).await;
    let rule = members_edit_companies(&app).await;
    let edit = |name: &'static str| rename(&app, &bob, &uri, name);
    let granted = edit("B").await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);

    lagging.freeze();
    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/items/{}", id_of(&rule)),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    let refused = edit("C").await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "the rule is deleted; a page that still lists it grants nothing: {}",
        refused.text
    );
}

/// An org's portfolio changed a moment ago is read as it is now, not as the lagging page has it.
#[tokio::test]
async fn a_changed_portfolio_is_not_read_back_from_a_lagging_page() {
    let (app, lagging) = lagging_app().await;
    let org_item = app.get("/api/items?type=Org").await.body["items"][0].clone();
    let before = app.rn.org_portfolio("default").await.expect("read");
    assert_eq!(before.as_deref(), Some("default"));

    lagging.freeze();
    let changed = app
        .call(
            Method::PATCH,
            &format!("/api/items/{}", id_of(&org_item)),
            Some(json!({"attributes": {"portfolio": "moved"}})),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let after = app.rn.org_portfolio("default").await.expect("read");
    assert_eq!(after.as_deref(), Some("moved"));
}

/// A schedule disabled a moment ago sends nothing, though the lagging page has it enabled.
#[tokio::test]
async fn a_disabled_schedule_does_not_run_from_a_lagging_page() {
    let (app, lagging) = lagging_app().await;
    let (_, planner) = app.account("default", "planner", true).await;
    let created = app
        .call_as(
            Some(&planner),
            Method::POST,
            "/api/items",
            Some(json!({"type": "Schedule", "name": "nightly", "attributes": {
                "cron": "* * * * *",
                "job": {"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "late"}]}}}})),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    // A tick before anything is due reads (and so freezes) the page of schedules.
    let primed = realnet::schedule::tick(&app.rn, Utc::now() - chrono::Duration::minutes(10))
        .await
        .expect("tick");
    assert_eq!(primed.sent, 0);

    lagging.freeze();
    let disabled = app
        .call_as(
            Some(&planner),
            Method::PATCH,
            &format!("/api/items/{}", id_of(&created.body)),
            Some(json!({"attributes": {"enabled": false}})),
            &[],
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    let report = realnet::schedule::tick(&app.rn, Utc::now() + chrono::Duration::minutes(2))
        .await
        .expect("tick");
    assert_eq!(
        (report.schedules, report.sent),
        (0, 0),
        "the schedule is disabled: {report:?}"
    );
}

/// A member who may delete a folder's subtree does not delete, with it, a child moved out of
/// it a moment ago (which the lagging page still lists under it).
#[tokio::test]
async fn a_recursive_delete_spares_a_child_moved_out_a_moment_ago() {
    let (app, lagging) = lagging_app().await;
    let (member, token) = app.account("default", "pruner", false).await;
    let x = app.create(json!({"type": "Folder", "name": "x"})).await;
    let y = app.create(json!({"type": "Folder", "name": "y"})).await;
    let c = app
        .create(json!({"type": "Folder", "name": "c", "parent": id_of(&x)}))
        .await;
    app.create(json!({"type": "Acl", "name": "pruner deletes x",
        "attributes": {"principal": format!("account:{member}"),
            "permissions": ["read", "delete"], "target_item": id_of(&x)}}))
        .await;
    // The rules with the member's, and the page of x's children the delete reads, are read
    // (and so frozen) before the move.
    app.rn.access_rules("default").await.expect("rules");
    let mut listing = realnet_tests::query(&[("parent", &id_of(&x))]);
    listing.limit = realnet::query::MAX_LIMIT;
    app.rn
        .store
        .query("default", &listing)
        .await
        .expect("the delete's page");

    lagging.freeze();
    let moved = app
        .call(
            Method::PATCH,
            &format!("/api/items/{}", id_of(&c)),
            Some(json!({"parent": id_of(&y)})),
            &[],
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let deleted = app
        .call_as(
            Some(&token),
            Method::DELETE,
            &format!("/api/items/{}?recursive=true", id_of(&x)),
            None,
            &[],
        )
        .await;
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "x goes; c is not under it: {}",
        deleted.text
    );
    let still = app.get(&format!("/api/items/{}", id_of(&c))).await;
    assert_eq!(
        still.status,
        StatusCode::OK,
        "c is under y now, out of the member's reach: {}",
        still.text
    );
}

/// A rule made a moment ago, which the lagging page does not list yet, is seen as soon as the
/// page has caught up: what was read without it within the lag was not kept for the TTL.
#[tokio::test]
async fn a_read_that_missed_a_new_rule_is_not_kept() {
    let (app, lagging) = lagging_app().await;
    let (bob, uri) = alices_company(&app).await;
    let edit = |name: &'static str| rename(&app, &bob, &uri, name);
    assert_eq!(edit("B").await.status, StatusCode::FORBIDDEN);

    lagging.freeze();
    members_edit_companies(&app).await;
    let lagged = edit("C").await;
    assert_eq!(
        lagged.status,
        StatusCode::FORBIDDEN,
        "the page does not list the rule yet: {}",
        lagged.text
    );
    lagging.thaw();
    let granted = edit("D").await;
    assert_eq!(
        granted.status,
        StatusCode::OK,
        "the page lists the rule now; the read without it was not kept: {}",
        granted.text
    );
}

/// A file confirmed a moment ago, which the lagging page still lists as pending, keeps its
/// bytes when maintenance deletes abandoned uploads.
#[tokio::test]
async fn maintenance_keeps_the_bytes_of_a_file_confirmed_a_moment_ago() {
    let (app, lagging) = lagging_app().await;
    let id = app.pending_file("late.txt", true).await;
    // A run before the file is abandoned reads (and so freezes) the page of pending files.
    let early = realnet::schedule::maintenance::run(&app.rn, Utc::now())
        .await
        .expect("maintenance");
    assert_eq!(early.abandoned_uploads, 0);

    lagging.freeze();
    let confirmed = app
        .call(Method::POST, &format!("/api/files/{id}/confirm"), None, &[])
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    let later = Utc::now() + chrono::Duration::days(2);
    let report = realnet::schedule::maintenance::run(&app.rn, later)
        .await
        .expect("maintenance");
    assert_eq!(report.abandoned_uploads, 0, "{report:?}");
    // (Two days on, maintenance also purged the admin's login token: read what is stored.)
    let id: Uuid = id.parse().expect("uuid");
    let item = app.rn.store.get("default", id).await.expect("get");
    assert_eq!(
        item.map(|f| f.attributes["status"].clone()),
        Some(json!("ready"))
    );
    let key = realnet::blob::BlobKey::new("default", id).expect("key");
    let bytes = app
        .rn
        .blobs
        .read(&key, 10)
        .await
        .expect("the bytes are kept");
    assert_eq!(&bytes[..], b"abc");
}

/// Maintenance deletes an abandoned upload alone: what was put under it stays (and so does the
/// upload, until nothing is under it).
#[tokio::test]
async fn maintenance_leaves_what_is_under_a_pending_file() {
    let (app, _) = lagging_app().await;
    let file = app.pending_file("never-sent.txt", false).await;
    let child = app
        .create(json!({"type": "Folder", "name": "under it", "parent": file}))
        .await;
    let later = Utc::now() + chrono::Duration::days(2);
    let report = realnet::schedule::maintenance::run(&app.rn, later)
        .await
        .expect("maintenance");
    assert_eq!(report.abandoned_uploads, 0, "{report:?}");
    for id in [file, id_of(&child)] {
        let id: Uuid = id.parse().expect("uuid");
        assert!(
            app.rn
                .store
                .get("default", id)
                .await
                .expect("get")
                .is_some(),
            "{id} is kept"
        );
    }
}
