//! The trust rules tried again as an attacker would, after the type behaviours landed: a
//! member managing accounts or rules, the public, another org, and subtypes of the core types
//! defined in an initialization folder. Each refusal answers with the JSON error and changes
//! nothing in either org.

use axum::http::{Method, StatusCode};
use realnet::types::TypeRegistry;
use realnet_tests::{Answer, OTHER_ORG, StoreKind, TestApp, TestTokens, id_of, on_every_store};
use serde_json::{Value, json};

async fn admin_of(app: &TestApp, org: &str) -> realnet::item::Item {
    realnet::auth::identity::find_account(&app.rn, org, "admin")
        .await
        .expect("query")
        .expect("admin")
}

/// The types of Realnet's own initialization folder plus subtypes of the core types, as a
/// deployment might define them: an account, a file (with its own endpoint), a job and a rule.
fn types_with_subtypes() -> TypeRegistry {
    let dir = tempfile::tempdir().expect("temp dir");
    let init = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../initialization");
    for entry in std::fs::read_dir(&init).expect("initialization folder") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    let manifest = dir.path().join("manifest.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).expect("manifest"))
        .expect("manifest parses");
    let files = m["files"].as_array_mut().expect("files");
    let at = files
        .iter()
        .position(|f| f["file"] == "core.json")
        .expect("core.json");
    files.insert(
        at + 1,
        json!({"file": "subtypes.json", "layer": "resource"}),
    );
    std::fs::write(&manifest, m.to_string()).expect("write manifest");
    let subtypes = json!({"types": [
        {"name": "Employee", "base": "Account"},
        {"name": "Photo", "base": "File", "endpoint": "photos"},
        {"name": "Task", "base": "Job"},
        {"name": "Rule", "base": "Acl"},
    ]});
    std::fs::write(dir.path().join("subtypes.json"), subtypes.to_string()).expect("write");
    realnet_tests::types_in(dir.path())
}

/// No password rests in a `Job` item or a queue body, however deep it is nested: a
/// `Schedule` made or changed by an item job carries a job of its own, an item of a type
/// spelled wrong names no behaviour, and a schedule's rehearsal that stops early (a stale
/// version) must not let a nested secret through.
async fn no_secret_nested_in_a_job(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let admin = admin_of(&app, "default").await;
    let harmless =
        json!({"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "f"}]}});
    let schedule = app
        .create(json!({"type": "Schedule", "name": "s", "attributes": {"cron": "0 * * * *", "job": harmless}}))
        .await;
    let folder = app.create(json!({"type": "Folder", "name": "x"})).await;
    let secret = json!({"kind": "items.update", "payload": {"items": [{"id": admin.id, "attributes": {"password": "a new long password"}}]}});
    let deeper = json!({"kind": "items.create", "payload": {"items": [{"type": "Schedule", "name": "inner",
        "attributes": {"cron": "0 * * * *", "job": secret}}]}});

    let before = app.snapshot().await;
    for payload in [
        json!({"kind": "items.create", "payload": {"items": [{"type": "Schedule", "name": "s2",
            "attributes": {"cron": "0 * * * *", "job": secret}}]}}),
        json!({"kind": "items.create", "payload": {"items": [{"type": "Schedule", "name": "s3",
            "attributes": {"cron": "0 * * * *", "job": deeper}}]}}),
        json!({"kind": "items.update", "payload": {"items": [{"id": id_of(&schedule),
            "attributes": {"job": secret}}]}}),
        json!({"kind": "items.create", "payload": {"items": [{"type": "account", "name": "eve",
            "attributes": {"username": "eve", "password": "eve's long password"}}]}}),
    ] {
        let a = app.post("/api/jobs", payload.clone()).await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert!(a.text.contains("write-only"), "{payload}: {}", a.text);
    }
    // A schedule whose job's first item has a stale version: the rehearsal stops there (the
    // run would retry), so only the payload itself can show the secret in the second item.
    let stale = json!({"kind": "items.update", "payload": {"items": [
        {"id": id_of(&folder), "version": 99, "attributes": {}},
        {"id": id_of(&schedule), "attributes": {"job": secret}}]}});
    let uri = format!("/api/items/{}", id_of(&schedule));
    let a = app
        .call(
            Method::PATCH,
            &uri,
            Some(json!({"attributes": {"job": stale}})),
            &[],
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(a.text.contains("write-only"), "{}", a.text);
}

/// The runs of a schedule act as whoever set its job: the public is nobody, so even where a
/// rule lets it change schedules it may not set one's job. Without this, the runs acted as
/// the schedule's owner (an admin here), and a job whose rehearsal stops early (its first
/// item at the version the change itself makes) gave the public an admin's rights.
async fn the_public_sets_no_schedules_job(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    app.acl(json!({"principal": "public", "permissions": ["read", "update"], "target_type": "Schedule"}),
    )
    .await;
    let job =
        json!({"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "f"}]}});
    let schedule = app
        .create(json!({"type": "Schedule", "name": "s", "attributes": {"cron": "0 * * * *", "job": job}}))
        .await;
    let uri = format!("/api/items/{}", id_of(&schedule));
    // The rehearsal stops at the first item, whose version is the one this change makes
    // (so the run would retry): the rule after it would be checked only at run time, as the
    // owner.
    let rule = &app
        .get("/api/items?type=Acl&name=members%20read%20views")
        .await
        .body["items"][0];
    let next = schedule["version"].as_i64().expect("version") + 1;
    let other = json!({"kind": "items.update", "payload": {"items": [
        {"id": id_of(&schedule), "version": next, "attributes": {"enabled": true}},
        {"id": id_of(rule), "attributes": {"principal": "public", "permissions": ["admin"]}}]}});
    let before = app.snapshot().await;
    let a = app
        .call_as(
            None,
            Method::PATCH,
            &uri,
            Some(json!({"attributes": {"job": other}})),
            &[],
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNAUTHORIZED)
        .await;
    // What the rule grants without touching the job, the public may still do.
    let a = app
        .call_as(
            None,
            Method::PATCH,
            &uri,
            Some(json!({"attributes": {"enabled": false}})),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let admin = admin_of(&app, "default").await;
    assert_eq!(a.body["attributes"]["run_as"], json!(admin.id));
}

/// Subtypes of the core types defined in an initialization folder keep their base type's
/// behaviour: a `File` or `Job` subtype is not made through the item API (nor its own
/// endpoint), an `Account` subtype's password is write-only (and refused in jobs), and
/// writing one needs org-wide rights that make no admin.
async fn subtypes_keep_their_base_behaviour(kind: StoreKind) {
    let app = TestApp::with_types(kind, types_with_subtypes(), |_| {}).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    let before = app.snapshot().await;
    for (uri, body) in [
        ("/api/items", json!({"type": "Photo", "name": "p.png"})),
        (
            "/api/photos",
            json!({"name": "p.png", "attributes": {"status": "ready"}}),
        ),
        (
            "/api/items",
            json!({"type": "Task", "name": "t", "attributes": {"kind": "items.create"}}),
        ),
    ] {
        let a = app.post(uri, body.clone()).await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert!(
            a.body["error"]["details"]["fields"]["type"].is_string(),
            "{body}: {}",
            a.text
        );
    }
    let employee = json!({"type": "Employee", "name": "eve", "attributes": {"username": "eve", "admin": true, "password": "eve's long password"}});
    let a = app
        .call_with(&alice, Method::POST, "/api/items", Some(employee.clone()))
        .await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    let a = app
        .post(
            "/api/jobs",
            json!({"kind": "items.create", "payload": {"items": [employee]}}),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    // With an admin rule on Account (org-wide), a subtype is still no way to an admin.
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["admin"], "target_type": "Account"})).await;
    let before = app.snapshot().await;
    let a = app
        .call_with(&alice, Method::POST, "/api/items", Some(employee))
        .await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    // Rules of a subtype of Acl are rules: they grant no more than their author holds.
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["admin"], "target_type": "Acl"})).await;
    let before = app.snapshot().await;
    let a = app.call_with(&alice, Method::POST, "/api/items", Some(json!({"type": "Rule", "name": "r",
        "attributes": {"principal": "members", "permissions": ["delete"], "target_type": "Resource"}}))).await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    // An account of the subtype an admin makes keeps its password out of its attributes.
    let made = app
        .create(json!({"type": "Employee", "name": "dan", "attributes": {"username": "dan", "password": "dan's long password"}}))
        .await;
    assert!(made["attributes"].get("password").is_none(), "{made}");
    let stored = app
        .rn
        .store
        .get("default", id_of(&made).parse().expect("uuid"))
        .await
        .expect("get")
        .expect("stored");
    assert!(stored.attributes.get("password").is_none());
}

/// Server-owned fields in odd shapes and through a type endpoint: another case, `null`, a PUT
/// on `/api/files/{id}`, a schedule's `run_as` in a PUT, and an API key's account (not
/// server-owned, but fixed) changed by a PUT, even by an admin.
async fn managed_fields_in_odd_shapes(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    let (bob_id, _) = app.account("default", "bob", false).await;
    let file = app
        .call_with(
            &alice,
            Method::POST,
            "/api/files",
            Some(json!({"name": "a.txt", "content_type": "text/plain", "size": 3})),
        )
        .await;
    assert_eq!(file.status, StatusCode::CREATED, "{}", file.text);
    let file_uri = format!("/api/files/{}", id_of(&file.body["item"]));
    let job =
        json!({"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "f"}]}});
    let schedule = app
        .create(json!({"type": "Schedule", "name": "s", "attributes": {"cron": "0 * * * *", "job": job}}))
        .await;
    let key = app
        .create(json!({"type": "ApiKey", "name": "k", "attributes": {"account": alice_id}}))
        .await;
    let checksum = "0".repeat(64);

    let before = app.snapshot().await;
    for (token, method, uri, body, field) in [
        (
            &alice,
            Method::PATCH,
            file_uri.clone(),
            json!({"attributes": {"Status": "ready"}}),
            "Status",
        ),
        (
            &alice,
            Method::PATCH,
            file_uri.clone(),
            json!({"attributes": {"status": "ready"}}),
            "status",
        ),
        (
            &alice,
            Method::PUT,
            file_uri.clone(),
            json!({"name": "a.txt", "attributes": {"content_type": "text/plain", "size": 3, "status": null, "checksum": checksum}}),
            "status",
        ),
        (
            &app.admin_token,
            Method::PUT,
            format!("/api/items/{}", id_of(&schedule)),
            json!({"name": "s", "attributes": {"cron": "0 * * * *", "job": job, "run_as": alice_id}}),
            "run_as",
        ),
        (
            &app.admin_token,
            Method::PUT,
            format!("/api/items/{}", id_of(&key)),
            json!({"name": "k", "attributes": {"account": bob_id}}),
            "account",
        ),
    ] {
        let a = app.call_with(token, method, &uri, Some(body.clone())).await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert!(
            a.body["error"]["details"]["fields"][field].is_string(),
            "{body}: {}",
            a.text
        );
    }
}

/// Nothing reaches into another org: not a move under its folder, not a rule on its item,
/// not an API key for its account; both orgs stay as they were.
async fn nothing_reaches_another_org(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, alice) = app.account("default", "alice", false).await;
    let other_admin = app.rn.token_for(OTHER_ORG, "admin").await;
    let theirs = app
        .call_with(
            &other_admin,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Folder", "name": "theirs"})),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    let their_admin = admin_of(&app, OTHER_ORG).await;
    let mine = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Folder", "name": "mine"})),
        )
        .await;
    assert_eq!(mine.status, StatusCode::CREATED);
    let before = app.snapshot().await;
    let moved = app
        .call_with(
            &alice,
            Method::PATCH,
            &format!("/api/items/{}", id_of(&mine.body)),
            Some(json!({"parent": id_of(&theirs.body)})),
        )
        .await;
    app.assert_refused(&before, &moved, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    for body in [
        json!({"type": "Acl", "name": "r", "attributes": {"principal": "members", "permissions": ["admin"], "target_item": id_of(&theirs.body)}}),
        json!({"type": "ApiKey", "name": "k", "attributes": {"account": their_admin.id}}),
    ] {
        let a = app.post("/api/items", body.clone()).await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
}

/// Usernames are unique among the accounts of every account type: the stores keep them
/// unique among `Account` items, and a job's actor is a username that the worker looks up
/// among those. Without this, a member with an admin rule on `Account` made an `Employee` (a
/// subtype) with the org admin's username, linked it to her own identity-provider subject,
/// and her jobs, sent as it, ran as the org admin.
async fn an_account_subtype_takes_no_username(kind: StoreKind) {
    let app = TestApp::with_types(kind, types_with_subtypes(), |_| {}).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["admin"], "target_type": "Account"})).await;
    let bot = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Employee", "name": "bot", "attributes": {"username": "bot"}})),
        )
        .await;
    assert_eq!(bot.status, StatusCode::CREATED, "{}", bot.text);
    let before = app.snapshot().await;
    let made = app.call_with(&alice, Method::POST, "/api/items", Some(json!({"type": "Employee", "name": "shadow",
        "attributes": {"username": "admin", "idp_issuer": "https://idp.example.com", "idp_subject": "alice"}}))).await;
    app.assert_refused(&before, &made, StatusCode::CONFLICT)
        .await;
    let uri = format!("/api/items/{}", id_of(&bot.body));
    for username in ["admin", "alice"] {
        let renamed = app
            .call_with(
                &alice,
                Method::PATCH,
                &uri,
                Some(json!({"attributes": {"username": username}})),
            )
            .await;
        app.assert_refused(&before, &renamed, StatusCode::CONFLICT)
            .await;
    }
    // The other way round too: an Account may not take an Employee's username.
    let a = app
        .post(
            "/api/items",
            json!({"type": "Account", "name": "bot", "attributes": {"username": "bot"}}),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::CONFLICT).await;
    // Keeping one's own username is no conflict.
    let kept = app
        .call_with(
            &alice,
            Method::PATCH,
            &uri,
            Some(json!({"name": "robot", "attributes": {"username": "bot"}})),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
}

/// A member with an admin rule on `Account` may not make or change an admin account, nor one
/// in a group she is not in, and no more may she delete one (the org's admins included, down
/// to the last one), directly or with the folder above it; an account within her rights she
/// may delete.
async fn a_member_deletes_no_account_with_more_rights(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["admin"], "target_type": "Account"})).await;
    let group = app
        .create(json!({"type": "Group", "name": "finance"}))
        .await;
    let folder = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Folder", "name": "people"})),
        )
        .await;
    assert_eq!(folder.status, StatusCode::CREATED, "{}", folder.text);
    let carol = app
        .create(
            json!({"type": "Account", "name": "carol", "parent": id_of(&folder.body),
            "attributes": {"username": "carol", "groups": [id_of(&group)]}}),
        )
        .await;
    let dan = app
        .create(json!({"type": "Account", "name": "dan", "attributes": {"username": "dan"}}))
        .await;
    let admin = admin_of(&app, "default").await;
    let before = app.snapshot().await;
    for uri in [
        format!("/api/items/{}", admin.id),
        format!("/api/items/{}", id_of(&carol)),
        format!("/api/items/{}?recursive=true", id_of(&folder.body)),
    ] {
        let a = app.call_with(&alice, Method::DELETE, &uri, None).await;
        app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    }
    let a = app
        .call_with(
            &alice,
            Method::DELETE,
            &format!("/api/items/{}", id_of(&dan)),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
}

/// A rule on an item covers the item's descendants, so granting one needs the right over
/// everything below it: owning the item is not enough. Without this, a member with an admin
/// rule on `Acl` who owned a folder granted herself `delete` on it, and with that deleted the
/// items other members had put under it. A right she holds through an item rule she may pass
/// on.
async fn an_item_rule_grants_nothing_over_others_items_below(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    let (_, bob) = app.account("default", "bob", false).await;
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["admin"], "target_type": "Acl"})).await;
    let folder = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Folder", "name": "shared"})),
        )
        .await;
    assert_eq!(folder.status, StatusCode::CREATED, "{}", folder.text);
    let theirs = app
        .call_with(
            &bob,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Company", "name": "Bob's", "parent": id_of(&folder.body)})),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    let given = app.create(json!({"type": "Folder", "name": "given"})).await;
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["update"], "target_item": id_of(&given)})).await;
    let before = app.snapshot().await;
    for (permission, target) in [("delete", id_of(&folder.body)), ("delete", id_of(&given))] {
        let a = app.call_with(&alice, Method::POST, "/api/items", Some(json!({"type": "Acl", "name": "mine",
            "attributes": {"principal": format!("account:{alice_id}"), "permissions": [permission], "target_item": target}}))).await;
        app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    }
    let a = app.call_with(&alice, Method::POST, "/api/items", Some(json!({"type": "Acl", "name": "pass on",
        "attributes": {"principal": "members", "permissions": ["update"], "target_item": id_of(&given)}}))).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
}

/// Who a schedule runs as is not for a job to say either: an `items.update` job that sends
/// `run_as` fails and changes nothing, and a schedule made by a job runs as the job's actor.
async fn jobs_set_no_run_as(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    app.acl(json!({"principal": "members", "permissions": ["create", "update"], "target_type": "Schedule"})).await;
    let job =
        json!({"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "f"}]}});
    let schedule = app.call_with(&alice,
        Method::POST,
        "/api/items",
        Some(json!({"type": "Schedule", "name": "s", "attributes": {"cron": "0 * * * *", "job": job}})),
    )
    .await;
    assert_eq!(schedule.status, StatusCode::CREATED, "{}", schedule.text);
    let admin = admin_of(&app, "default").await;
    let before = app.snapshot().await;
    let sent = app.call_with(&alice,
        Method::POST,
        "/api/jobs",
        Some(json!({"kind": "items.update",
        "payload": {"items": [{"id": id_of(&schedule.body), "attributes": {"run_as": admin.id}}]}})),
    )
    .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let done = app.finished_job(&alice, &id_of(&sent.body)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done.to_string().contains("run_as"), "{done}");
    let after: Vec<_> = app
        .snapshot()
        .await
        .into_iter()
        .filter(|i| i.type_name != "Job")
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|i| i.type_name != "Job")
        .collect();
    assert_eq!(after, before);
    let sent = app.call_with(&alice, Method::POST, "/api/jobs", Some(json!({"kind": "items.create",
        "payload": {"items": [{"type": "Schedule", "name": "by job", "attributes": {"cron": "0 * * * *", "job": job}}]}}))).await;
    let done = app.finished_job(&alice, &id_of(&sent.body)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let made = app
        .get(&format!(
            "/api/items/{}",
            done["result"]["items"][0]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        made.body["attributes"]["run_as"],
        json!(alice_id),
        "{}",
        made.text
    );
}

/// Setting a schedule's job needs the rights the job needs, for every item of it: a version
/// the first item does not have yet (the one this very change gives the schedule) must not
/// stop the rehearsal before the items after it are checked.
async fn a_stale_version_skips_no_rehearsal(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, alice) = app.account("default", "alice", false).await;
    app.acl(json!({"principal": "members", "permissions": ["create", "update"], "target_type": "Schedule"})).await;
    let job =
        json!({"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "f"}]}});
    let schedule = app.call_with(&alice,
        Method::POST,
        "/api/items",
        Some(json!({"type": "Schedule", "name": "s", "attributes": {"cron": "0 * * * *", "job": job}})),
    )
    .await;
    assert_eq!(schedule.status, StatusCode::CREATED, "{}", schedule.text);
    let admin = admin_of(&app, "default").await;
    let next = schedule.body["version"].as_i64().expect("version") + 1;
    let sneaky = json!({"kind": "items.update", "payload": {"items": [
        {"id": id_of(&schedule.body), "version": next, "attributes": {"enabled": true}},
        {"id": admin.id, "attributes": {"disabled": true}}]}});
    let before = app.snapshot().await;
    let a = app
        .call_with(
            &alice,
            Method::PATCH,
            &format!("/api/items/{}", id_of(&schedule.body)),
            Some(json!({"attributes": {"job": sneaky}})),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(
        a.body["error"]["details"]["fields"]["job"].is_string(),
        "{}",
        a.text
    );
}

/// A login from `ip`, with `org` given or not.
async fn login_at(app: &TestApp, ip: &str, body: Value) -> Answer {
    let mut request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/auth")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .expect("request");
    let ip: std::net::IpAddr = ip.parse().expect("an address");
    request
        .extensions_mut()
        .insert(realnet::auth::ClientAddr(ip));
    app.dispatch(request).await
}

/// The login counts are not dodged by spelling the same attempt another way: the org given
/// or left out, another address of the same IPv6 /64, the IPv4-mapped form of an IPv4
/// address. A username in another case is another username (it logs nobody in).
async fn login_counts_are_not_dodged(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| c.auth.max_failures = 3).await;
    let wrong = |org: Option<&str>| match org {
        Some(o) => json!({"username": "admin", "password": "wrong password", "org": o}),
        None => json!({"username": "admin", "password": "wrong password"}),
    };
    let right = json!({"username": "admin", "password": realnet_tests::ADMIN_PASSWORD});
    for (ip, org) in [
        ("2001:db8::1", None),
        ("2001:db8::2", Some("default")),
        ("2001:db8::ffff:3", None),
    ] {
        let a = login_at(&app, ip, wrong(org)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{ip}: {}", a.text);
    }
    for (ip, body) in [
        ("2001:db8::4", right.clone()),
        (
            "2001:db8::5",
            json!({"username": "admin", "password": realnet_tests::ADMIN_PASSWORD, "org": "default"}),
        ),
    ] {
        let a = login_at(&app, ip, body).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{ip}: {}", a.text);
    }
    for ip in ["192.0.2.7", "::ffff:192.0.2.7", "192.0.2.7"] {
        let a = login_at(&app, ip, wrong(None)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{ip}: {}", a.text);
    }
    let a = login_at(&app, "::ffff:192.0.2.7", right.clone()).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    let upper = json!({"username": "ADMIN", "password": realnet_tests::ADMIN_PASSWORD});
    let a = login_at(&app, "198.51.100.1", upper).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    // Another address still logs in.
    let a = login_at(&app, "198.51.100.2", right).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

on_every_store!(
    no_secret_nested_in_a_job,
    the_public_sets_no_schedules_job,
    subtypes_keep_their_base_behaviour,
    managed_fields_in_odd_shapes,
    nothing_reaches_another_org,
    an_account_subtype_takes_no_username,
    a_member_deletes_no_account_with_more_rights,
    an_item_rule_grants_nothing_over_others_items_below,
    jobs_set_no_run_as,
    a_stale_version_skips_no_rehearsal,
    login_counts_are_not_dodged,
);
