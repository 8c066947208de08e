//! Module-bound types whose extension writes their items: `POST /api/memos` (or
//! `POST /api/items` naming the type), `PATCH`, `PUT` and `DELETE /api/memos/{id}` reach the
//! test extension's writer after the checks a stored item's write gets (the caller's rights,
//! the type's fields, server-managed fields, `If-Match`), in the caller's org only; a refusal
//! leaves the extension's items as they were. A read-only source (`ops`'s dead letters) still
//! refuses every write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use realnet::extensions::{Call, Extension, HandlerError, ItemSource, ItemWriter};
use realnet::item::Item;
use realnet::types::Layer;
use realnet_tests::{Answer, OTHER_ORG, StoreKind, TestApp, TestTokens, on_every_store};
use serde_json::{Value, json};

const MEMOS: &str = r#"{
  "types": [
    {
      "name": "Memo",
      "base": "Item",
      "endpoint": "memos",
      "attributes": { "module": "memos" },
      "fields": [
        { "name": "text", "kind": "string", "required": true },
        { "name": "stars", "kind": "integer", "min": 0 },
        { "name": "revision", "kind": "integer", "managed": true }
      ]
    }
  ]
}"#;

/// The test extension's items, kept in memory, every org's together (the writer keeps to the
/// caller's org, as a real source must).
#[derive(Default)]
struct Memos {
    items: Mutex<Vec<Item>>,
    /// A careless source answers every org's items: the item API still shows each org only
    /// its own.
    careless: AtomicBool,
    /// A buggy source panics listing, and creating after it staged a folder.
    panics: AtomicBool,
}

impl Memos {
    fn all(&self) -> Vec<Item> {
        self.items.lock().expect("lock").clone()
    }
}

#[async_trait]
impl ItemSource for Memos {
    async fn items(&self, call: &Call) -> Result<Vec<Item>, HandlerError> {
        if self.panics.load(Ordering::SeqCst) {
            panic!("the source's bug");
        }
        Ok(self
            .all()
            .into_iter()
            .filter(|i| i.org == call.org() || self.careless.load(Ordering::SeqCst))
            .collect())
    }

    fn writer(&self) -> Option<&dyn ItemWriter> {
        Some(self)
    }
}

#[async_trait]
impl ItemWriter for Memos {
    async fn create(&self, call: &Call, mut item: Item) -> Result<Item, HandlerError> {
        assert_eq!(item.org, call.org());
        if self.panics.load(Ordering::SeqCst) {
            call.create(realnet::item::ops::NewItem {
                type_name: "Folder".into(),
                name: "Half done".into(),
                parent: None,
                attributes: Default::default(),
            })
            .await?;
            panic!("the writer's bug");
        }
        item.attributes.insert("revision".into(), json!(1));
        self.items.lock().expect("lock").push(item.clone());
        Ok(item)
    }

    async fn update(
        &self,
        call: &Call,
        mut next: Item,
        expected_version: i64,
    ) -> Result<Item, HandlerError> {
        let mut items = self.items.lock().expect("lock");
        let Some(held) = items
            .iter_mut()
            .find(|i| i.id == next.id && i.org == call.org())
        else {
            return Err(HandlerError::not_found(format!("no memo {}", next.id)));
        };
        if held.version != expected_version {
            return Err(HandlerError::version_conflict(
                next.id,
                expected_version,
                held.version,
            ));
        }
        next.attributes
            .insert("revision".into(), json!(next.version));
        *held = next.clone();
        Ok(next)
    }

    async fn delete(&self, call: &Call, item: &Item) -> Result<(), HandlerError> {
        self.items
            .lock()
            .expect("lock")
            .retain(|i| !(i.id == item.id && i.org == call.org()));
        Ok(())
    }
}

fn memos(source: Arc<Memos>) -> Extension {
    Extension::new("memos", "Memos kept by the extension")
        .types("memos.json", Layer::Resource, MEMOS)
        .source("Memo", source)
}

async fn app(kind: StoreKind) -> (TestApp, Arc<Memos>) {
    let source = Arc::new(Memos::default());
    let app = TestApp::with_extensions(kind, vec![memos(source.clone())]).await;
    (app, source)
}

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    app.call_as(Some(token), method, uri, body, headers).await
}

/// Asserts a JSON error with `status`, and that the extension's items are still `before`.
fn refused(a: &Answer, status: StatusCode, source: &Memos, before: &[Item]) {
    assert_eq!(a.status, status, "{}", a.text);
    assert!(a.body["error"]["message"].is_string(), "{}", a.text);
    assert_eq!(source.all(), before, "a refusal changed nothing");
}

async fn an_admin_writes_the_items_through_the_extension(kind: StoreKind) {
    let (app, source) = app(kind).await;
    let admin = app.admin_token.clone();
    let a = app
        .post(
            "/api/memos",
            json!({"name": "first", "attributes": {"text": "hello", "stars": 2}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["type"], "Memo");
    assert_eq!(a.body["attributes"]["text"], "hello");
    assert_eq!(a.body["attributes"]["revision"], 1, "set by the extension");
    assert_eq!(a.header("etag"), "\"1\"");
    let id = a.body["id"].as_str().expect("id").to_string();
    assert_eq!(a.header("location"), format!("/api/items/{id}"));
    assert_eq!(source.all().len(), 1);
    assert!(
        app.snapshot().await.iter().all(|i| i.type_name != "Memo"),
        "nothing of it is in the store"
    );
    // `POST /api/items` naming the type reaches it too.
    let b = app
        .post(
            "/api/items",
            json!({"type": "Memo", "name": "second", "attributes": {"text": "there"}}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    let listed = app.get("/api/items?type=Memo&sort=name").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["first", "second"]);

    let uri = format!("/api/memos/{id}");
    let patched = send(
        &app,
        &admin,
        Method::PATCH,
        &uri,
        Some(json!({"attributes": {"stars": 5}})),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["version"], 2);
    assert_eq!(patched.body["attributes"]["stars"], 5);
    assert_eq!(patched.body["attributes"]["text"], "hello", "merged");
    assert_eq!(patched.body["attributes"]["revision"], 2);
    assert_eq!(patched.header("etag"), "\"2\"");
    let read = app.get(&uri).await;
    assert_eq!(read.body["attributes"]["stars"], 5, "{}", read.text);

    // A change based on an old version is refused, as for a stored item.
    let before = source.all();
    let stale = send(
        &app,
        &admin,
        Method::PUT,
        &uri,
        Some(json!({"name": "late", "attributes": {"text": "late"}})),
        &[("if-match", "\"1\"")],
    )
    .await;
    refused(&stale, StatusCode::PRECONDITION_FAILED, &source, &before);
    let put = send(
        &app,
        &admin,
        Method::PUT,
        &uri,
        Some(json!({"name": "renamed", "attributes": {"text": "new"}})),
        &[("if-match", "\"2\"")],
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["name"], "renamed");
    assert_eq!(
        put.body["attributes"],
        json!({"text": "new", "revision": 3})
    );

    let before = source.all();
    let stale = send(
        &app,
        &admin,
        Method::DELETE,
        &uri,
        None,
        &[("if-match", "\"2\"")],
    )
    .await;
    refused(&stale, StatusCode::PRECONDITION_FAILED, &source, &before);
    let gone = send(&app, &admin, Method::DELETE, &uri, None, &[]).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    assert_eq!(source.all().len(), 1);
    assert_eq!(app.get(&uri).await.status, StatusCode::NOT_FOUND);
    let again = send(&app, &admin, Method::DELETE, &uri, None, &[]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
}

async fn invalid_writes_are_refused_before_the_extension(kind: StoreKind) {
    let (app, source) = app(kind).await;
    let admin = app.admin_token.clone();
    let made = app
        .post(
            "/api/memos",
            json!({"name": "kept", "attributes": {"text": "as is"}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let uri = format!("/api/memos/{}", made.body["id"].as_str().expect("id"));
    let before = source.all();
    for (body, field) in [
        (json!({"name": "no text", "attributes": {}}), "text"),
        (
            json!({"name": "bad stars", "attributes": {"text": "x", "stars": -1}}),
            "stars",
        ),
        (
            json!({"name": "unknown", "attributes": {"text": "x", "colour": "red"}}),
            "colour",
        ),
        (
            json!({"name": "managed", "attributes": {"text": "x", "revision": 9}}),
            "revision",
        ),
        (json!({"name": "", "attributes": {"text": "x"}}), "name"),
    ] {
        let a = app.post("/api/memos", body.clone()).await;
        refused(&a, StatusCode::UNPROCESSABLE_ENTITY, &source, &before);
        assert!(
            a.body["error"]["details"]["fields"].get(field).is_some(),
            "{body}: {}",
            a.text
        );
    }
    let a = app
        .post("/api/memos", json!({"type": "Folder", "name": "elsewhere"}))
        .await;
    refused(&a, StatusCode::UNPROCESSABLE_ENTITY, &source, &before);
    for (method, body, field) in [
        (
            Method::PATCH,
            json!({"attributes": {"stars": "many"}}),
            "stars",
        ),
        (
            Method::PATCH,
            json!({"attributes": {"revision": 7}}),
            "revision",
        ),
        (Method::PATCH, json!({"attributes": {"text": null}}), "text"),
        (
            Method::PUT,
            json!({"name": "no text", "attributes": {}}),
            "text",
        ),
    ] {
        let a = send(&app, &admin, method, &uri, Some(body.clone()), &[]).await;
        refused(&a, StatusCode::UNPROCESSABLE_ENTITY, &source, &before);
        assert!(
            a.body["error"]["details"]["fields"].get(field).is_some(),
            "{body}: {}",
            a.text
        );
    }
    // A parent that does not exist.
    let a = app
        .post(
            "/api/memos",
            json!({"name": "orphan", "parent": uuid::Uuid::now_v7(), "attributes": {"text": "x"}}),
        )
        .await;
    refused(&a, StatusCode::UNPROCESSABLE_ENTITY, &source, &before);
}

async fn members_write_only_what_their_rules_grant(kind: StoreKind) {
    let (app, source) = app(kind).await;
    let made = app
        .post(
            "/api/memos",
            json!({"name": "team", "attributes": {"text": "agenda"}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let uri = format!("/api/memos/{}", made.body["id"].as_str().expect("id"));
    let (_, member) = app.account("default", "max", false).await;
    let before = source.all();
    let patch = || Some(json!({"attributes": {"stars": 1}}));
    let memo = || Some(json!({"name": "mine", "attributes": {"text": "x"}}));

    // No rule: the memo is not there for them, and they may not make one.
    let a = send(&app, &member, Method::POST, "/api/memos", memo(), &[]).await;
    refused(&a, StatusCode::FORBIDDEN, &source, &before);
    assert_eq!(a.code(), "forbidden");
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = if method == Method::PATCH {
            patch()
        } else {
            None
        };
        let a = send(&app, &member, method, &uri, body, &[]).await;
        refused(&a, StatusCode::NOT_FOUND, &source, &before);
    }
    let listed = send(&app, &member, Method::GET, "/api/memos", None, &[]).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);

    // Read only: they see it, and may not change it.
    app.acl(json!({"principal": "members", "permissions": ["read"], "target_type": "Memo"}))
        .await;
    let a = send(&app, &member, Method::GET, &uri, None, &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = send(&app, &member, Method::PATCH, &uri, patch(), &[]).await;
    refused(&a, StatusCode::FORBIDDEN, &source, &before);
    let a = send(&app, &member, Method::DELETE, &uri, None, &[]).await;
    refused(&a, StatusCode::FORBIDDEN, &source, &before);
    let a = send(&app, &member, Method::POST, "/api/memos", memo(), &[]).await;
    refused(&a, StatusCode::FORBIDDEN, &source, &before);

    // Granted: they write, as the owner of what they make.
    app.acl(
        json!({"principal": "members", "permissions": ["create", "update"], "target_type": "Memo"}),
    )
    .await;
    let a = send(&app, &member, Method::PATCH, &uri, patch(), &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = send(&app, &member, Method::POST, "/api/memos", memo(), &[]).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(a.body["owner"].is_string(), "{}", a.text);
    let before = source.all();
    let a = send(&app, &member, Method::DELETE, &uri, None, &[]).await;
    refused(&a, StatusCode::FORBIDDEN, &source, &before);

    // The public is told to log in.
    let a = app
        .call_as(None, Method::POST, "/api/memos", memo(), &[])
        .await;
    refused(&a, StatusCode::UNAUTHORIZED, &source, &before);
}

async fn another_org_neither_sees_nor_writes_them(kind: StoreKind) {
    let (app, source) = app(kind).await;
    let made = app
        .post(
            "/api/memos",
            json!({"name": "ours", "attributes": {"text": "private"}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let uri = format!("/api/memos/{}", made.body["id"].as_str().expect("id"));
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let before = source.all();
    for method in [Method::GET, Method::PATCH, Method::PUT, Method::DELETE] {
        let body = match method {
            Method::PATCH => Some(json!({"attributes": {"text": "theirs"}})),
            Method::PUT => Some(json!({"name": "theirs", "attributes": {"text": "theirs"}})),
            _ => None,
        };
        let a = send(&app, &other, method, &uri, body, &[]).await;
        refused(&a, StatusCode::NOT_FOUND, &source, &before);
    }
    let listed = send(&app, &other, Method::GET, "/api/memos", None, &[]).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    // Not even from a source that answers every org's items.
    source.careless.store(true, Ordering::SeqCst);
    for uri in ["/api/memos", "/api/items?type=Memo"] {
        let listed = send(&app, &other, Method::GET, uri, None, &[]).await;
        assert_eq!(listed.body["items"], json!([]), "{uri}: {}", listed.text);
    }
    let a = send(
        &app,
        &other,
        Method::PATCH,
        &uri,
        Some(json!({"attributes": {"text": "theirs"}})),
        &[],
    )
    .await;
    refused(&a, StatusCode::NOT_FOUND, &source, &before);
    source.careless.store(false, Ordering::SeqCst);
    // What they make is theirs alone.
    let a = send(
        &app,
        &other,
        Method::POST,
        "/api/memos",
        Some(json!({"name": "theirs", "attributes": {"text": "x"}})),
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["org"], OTHER_ORG);
    let ours = app.get("/api/memos").await;
    assert_eq!(
        ours.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        ours.text
    );
}

async fn a_read_only_source_still_refuses_writes(kind: StoreKind) {
    let (app, _) = app(kind).await;
    let before = app.snapshot().await;
    let a = app
        .post(
            "/api/deadletters",
            json!({"name": "forged", "attributes": {}}),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("read-only"), "{message}");
    let a = app
        .post(
            "/api/items",
            json!({"type": "DeadLetter", "name": "forged"}),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let uri = format!("/api/deadletters/{}", uuid::Uuid::now_v7());
    for method in [Method::PATCH, Method::PUT, Method::DELETE] {
        let body = match method {
            Method::PATCH => Some(json!({"name": "x"})),
            Method::PUT => Some(json!({"name": "x", "attributes": {}})),
            _ => None,
        };
        let a = app.call(method.clone(), &uri, body, &[]).await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(a.code(), "validation_failed", "{method}: {}", a.text);
    }
}

/// A move is checked as a stored item's is: a member whose rules reach memos through one
/// folder (rules on that item) may make and change the memos in it, but may not move one out to a
/// folder or the root where they may not create, nor reach a memo under another folder to
/// move it in (`403`); what identifies an item (type, owner, org, id, version) is not in a write's
/// body at all.
async fn moves_need_the_right_at_both_ends(kind: StoreKind) {
    let (app, source) = app(kind).await;
    let open = app.create(json!({"type": "Folder", "name": "open"})).await;
    let closed = app
        .create(json!({"type": "Folder", "name": "closed"}))
        .await;
    let memo_in = |folder: &Value, name: &str| json!({"name": name, "parent": folder["id"], "attributes": {"text": "x"}});
    let theirs = app.post("/api/memos", memo_in(&open, "theirs")).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    let hidden = app.post("/api/memos", memo_in(&closed, "hidden")).await;
    assert_eq!(hidden.status, StatusCode::CREATED, "{}", hidden.text);
    let (_, member) = app.account("default", "mo", false).await;
    // Read by type here; rules on a folder reach the memos under it for writing too.
    app.acl(json!({"principal": "members", "permissions": ["read"], "target_type": "Memo"}))
        .await;
    app.acl(
        json!({"principal": "members", "permissions": ["create", "update"],
        "target_item": open["id"]}),
    )
    .await;
    let uri = |memo: &Answer| format!("/api/memos/{}", memo.body["id"].as_str().expect("id"));

    // Inside the folder they may write.
    let a = send(
        &app,
        &member,
        Method::PATCH,
        &uri(&theirs),
        Some(json!({"attributes": {"stars": 2}})),
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = send(
        &app,
        &member,
        Method::POST,
        "/api/memos",
        Some(memo_in(&open, "new")),
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let before = source.all();

    // Out of it: to the other folder, to the root, by PATCH or PUT.
    for (method, body) in [
        (Method::PATCH, json!({"parent": closed["id"]})),
        (Method::PATCH, json!({"parent": null})),
        (
            Method::PUT,
            json!({"name": "theirs", "parent": closed["id"], "attributes": {"text": "x"}}),
        ),
        (
            Method::PUT,
            json!({"name": "theirs", "attributes": {"text": "x"}}),
        ),
    ] {
        let a = send(
            &app,
            &member,
            method,
            &uri(&theirs),
            Some(body.clone()),
            &[],
        )
        .await;
        refused(&a, StatusCode::FORBIDDEN, &source, &before);
        assert!(a.text.contains("needs create there"), "{body}: {}", a.text);
    }
    // Making one elsewhere, or taking one from elsewhere in.
    let a = send(
        &app,
        &member,
        Method::POST,
        "/api/memos",
        Some(memo_in(&closed, "new")),
        &[],
    )
    .await;
    refused(&a, StatusCode::FORBIDDEN, &source, &before);
    let a = send(
        &app,
        &member,
        Method::PATCH,
        &uri(&hidden),
        Some(json!({"parent": open["id"]})),
        &[],
    )
    .await;
    refused(&a, StatusCode::FORBIDDEN, &source, &before);
    // Under a memo: it is not in the store, so it is no parent.
    let a = send(
        &app,
        &member,
        Method::PATCH,
        &uri(&theirs),
        Some(json!({"parent": hidden.body["id"]})),
        &[],
    )
    .await;
    refused(&a, StatusCode::UNPROCESSABLE_ENTITY, &source, &before);

    // What identifies the item is refused in the body, even as the admin.
    let admin = app.admin_token.clone();
    for field in ["type", "owner", "org", "id", "version", "created_at"] {
        let value = match field {
            "type" => json!("Folder"),
            "version" => json!(9),
            "org" => json!(OTHER_ORG),
            "created_at" => json!("2020-01-01T00:00:00Z"),
            _ => json!(uuid::Uuid::now_v7()),
        };
        for method in [Method::PATCH, Method::PUT] {
            let mut body = json!({"name": "theirs", "attributes": {"text": "x"}});
            body[field] = value.clone();
            let a = send(&app, &admin, method.clone(), &uri(&theirs), Some(body), &[]).await;
            assert!(a.status.is_client_error(), "{method} {field}: {}", a.text);
            refused(&a, a.status, &source, &before);
        }
    }
}

/// The names of the memos `token` lists, following `next_cursor` one memo a page.
async fn listed_names(app: &TestApp, token: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut uri = "/api/memos?limit=1".to_string();
    loop {
        let page = send(app, token, Method::GET, &uri, None, &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 1, "{}", page.text);
        names.extend(
            items
                .iter()
                .filter_map(|i| i["name"].as_str().map(String::from)),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/memos?limit=1&cursor={c}"),
            None => break,
        }
    }
    names.sort();
    names
}

/// Reads follow rules on stored items as writes do: a member whose read rule is on one
/// folder lists and gets the memos under it (in it, or in a folder below it), not those under
/// another folder nor at the root (`404`), page by page; another org's member, with the same
/// rule on their own folder of that name, sees nothing; once the rule is deleted, neither
/// does the member.
async fn reads_follow_rules_on_the_folders_above(kind: StoreKind) {
    let (app, source) = app(kind).await;
    let open = app.create(json!({"type": "Folder", "name": "open"})).await;
    let inner = app
        .create(json!({"type": "Folder", "name": "inner", "parent": open["id"]}))
        .await;
    let closed = app
        .create(json!({"type": "Folder", "name": "closed"}))
        .await;
    let mut uris = Vec::new();
    for (name, parent) in [
        ("in open", &open["id"]),
        ("in inner", &inner["id"]),
        ("in closed", &closed["id"]),
        ("at root", &Value::Null),
    ] {
        let a = app
            .post(
                "/api/memos",
                json!({"name": name, "parent": parent, "attributes": {"text": "x"}}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        uris.push((
            name,
            format!("/api/memos/{}", a.body["id"].as_str().expect("id")),
        ));
    }
    let (_, member) = app.account("default", "fi", false).await;
    let gets = |token: String| {
        let app = &app;
        let uris = uris.clone();
        async move {
            let mut seen = Vec::new();
            for (name, uri) in uris {
                let a = send(app, &token, Method::GET, &uri, None, &[]).await;
                match a.status {
                    StatusCode::OK => seen.push(name),
                    StatusCode::NOT_FOUND => assert_eq!(a.code(), "not_found", "{}", a.text),
                    _ => panic!("{uri}: {}", a.text),
                }
            }
            seen
        }
    };
    assert_eq!(listed_names(&app, &member).await, Vec::<String>::new());
    assert_eq!(gets(member.clone()).await, Vec::<&str>::new());

    let rule = app
        .acl(json!({"principal": "members", "permissions": ["read"], "target_item": open["id"]}))
        .await;
    assert_eq!(listed_names(&app, &member).await, ["in inner", "in open"]);
    assert_eq!(gets(member.clone()).await, ["in open", "in inner"]);
    // Filters still apply to what the rule reaches.
    let a = send(
        &app,
        &member,
        Method::GET,
        "/api/memos?name=in%20open",
        None,
        &[],
    )
    .await;
    assert_eq!(
        a.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        a.text
    );

    // Another org's member, with the same rule on their org's folder of the same name:
    // nothing, even from a source that answers every org's items.
    let (_, stranger) = app.account(OTHER_ORG, "fi", false).await;
    let other_admin = app.rn.token_for(OTHER_ORG, "admin").await;
    let as_other = |body: Value| {
        let (app, token) = (&app, other_admin.clone());
        async move {
            let a = send(app, &token, Method::POST, "/api/items", Some(body), &[]).await;
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
            a.body
        }
    };
    let theirs = as_other(json!({"type": "Folder", "name": "open"})).await;
    as_other(json!({"type": "Acl", "name": "rule", "attributes":
        {"principal": "members", "permissions": ["read"], "target_item": theirs["id"]}}))
    .await;
    source.careless.store(true, Ordering::SeqCst);
    assert_eq!(listed_names(&app, &stranger).await, Vec::<String>::new());
    assert_eq!(gets(stranger.clone()).await, Vec::<&str>::new());
    source.careless.store(false, Ordering::SeqCst);

    // The rule deleted: nothing for the member.
    let a = app
        .call(
            Method::DELETE,
            &format!("/api/items/{}", rule["id"].as_str().expect("id")),
            None,
            &[],
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    assert_eq!(listed_names(&app, &member).await, Vec::<String>::new());
    assert_eq!(gets(member.clone()).await, Vec::<&str>::new());
}

/// A source that panics fails the request with a `500` naming its request id: what it staged
/// is not saved, and the server answers the next request.
async fn a_panicking_source_fails_the_request_not_the_server(kind: StoreKind) {
    let (app, source) = app(kind).await;
    let made = app
        .post(
            "/api/memos",
            json!({"name": "kept", "attributes": {"text": "kept"}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    source.panics.store(true, Ordering::SeqCst);
    let before = app.snapshot().await;
    let memos = source.all();
    let created = app
        .call(
            Method::POST,
            "/api/memos",
            Some(json!({"name": "lost", "attributes": {"text": "lost"}})),
            &[("x-request-id", "req-create-7")],
        )
        .await;
    app.assert_refused(&before, &created, StatusCode::INTERNAL_SERVER_ERROR)
        .await;
    assert_eq!(created.code(), "internal");
    let message = created.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("req-create-7"), "{message}");
    assert_eq!(source.all(), memos, "the source kept nothing either");
    let listed = app
        .call(
            Method::GET,
            "/api/memos",
            None,
            &[("x-request-id", "req-list-8")],
        )
        .await;
    assert_eq!(
        listed.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        listed.text
    );
    assert_eq!(listed.header("x-request-id"), "req-list-8");
    let message = listed.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("req-list-8"), "{message}");
    // The server lives on: the same source answers once it is mended.
    source.panics.store(false, Ordering::SeqCst);
    let again = app.get("/api/memos").await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["items"][0]["name"], "kept", "{}", again.text);
}

on_every_store!(
    a_panicking_source_fails_the_request_not_the_server,
    reads_follow_rules_on_the_folders_above,
    moves_need_the_right_at_both_ends,
    an_admin_writes_the_items_through_the_extension,
    invalid_writes_are_refused_before_the_extension,
    members_write_only_what_their_rules_grant,
    another_org_neither_sees_nor_writes_them,
    a_read_only_source_still_refuses_writes,
);

/// OpenAPI documents the `422` of a module-bound type's writes.
#[tokio::test]
async fn openapi_documents_the_bound_types_refusal() {
    let (app, _) = app(StoreKind::Sqlite).await;
    let doc = app.get("/api/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    for (path, method) in [
        ("/api/deadletters/{id}", "delete"),
        ("/api/memos/{id}", "delete"),
        ("/api/memos", "post"),
    ] {
        let description = doc.body["paths"][path][method]["responses"]["422"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(description.contains("does not write"), "{path} {method}");
    }
}
