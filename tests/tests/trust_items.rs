//! The trust rules of the item API, tried as an attacker would with the default rules and two
//! members: recursive deletes that would take another member's items, identity writes through
//! rules that are not org-wide, server-owned fields, items only the server makes, moves into
//! places the mover may not create in, deleted groups, and rules or accounts that would grant
//! more than their author holds. Each refusal answers with the JSON error and changes nothing
//! in either org.

use axum::http::{Method, StatusCode};
use realnet_tests::{StoreKind, TestApp, id_of, on_every_store};
use serde_json::{Value, json};

/// A member may delete their own folder, but not recursively when it holds another member's
/// items: all or nothing, and the refusal names the item.
async fn recursive_delete_checks_every_item(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, alice) = app.account("default", "alice", false).await;
    let (_, bob) = app.account("default", "bob", false).await;
    let folder = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Folder", "name": "mine"})),
        )
        .await;
    assert_eq!(folder.status, StatusCode::CREATED, "{}", folder.text);
    let own = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Folder", "name": "own child", "parent": id_of(&folder.body)})),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED);
    let theirs = app
        .call_with(
            &bob,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Company", "name": "Bob's", "parent": id_of(&own.body)})),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);

    let before = app.snapshot().await;
    let uri = format!("/api/items/{}?recursive=true", id_of(&folder.body));
    let a = app.call_with(&alice, Method::DELETE, &uri, None).await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    assert!(
        a.text.contains(&id_of(&theirs.body)),
        "names the item: {}",
        a.text
    );

    // The same through the items.delete job: it fails, and nothing is removed.
    let job = app
        .call_with(
            &alice,
            Method::POST,
            "/api/jobs",
            Some(json!({"kind": "items.delete",
        "payload": {"ids": [id_of(&folder.body)], "recursive": true}})),
        )
        .await;
    assert_eq!(job.status, StatusCode::ACCEPTED, "{}", job.text);
    let done = app.finished_job(&alice, &id_of(&job.body)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        app.snapshot()
            .await
            .iter()
            .any(|i| i.id.to_string() == id_of(&theirs.body))
    );

    // Once Bob's item is gone, Alice's own tree goes, all of it.
    let gone = app
        .call_with(
            &bob,
            Method::DELETE,
            &format!("/api/items/{}", id_of(&theirs.body)),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let a = app.call_with(&alice, Method::DELETE, &uri, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let left = app.get(&format!("/api/items/{}", id_of(&own.body))).await;
    assert_eq!(left.status, StatusCode::NOT_FOUND);
}

/// A rule on a folder reaches everything below it in a recursive delete too, even items of
/// others, and even when the folder deleted is below the rule's.
async fn a_rule_above_reaches_a_recursive_delete(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    let (_, bob) = app.account("default", "bob", false).await;
    let top = app.create(json!({"type": "Folder", "name": "top"})).await;
    let shared = app
        .create(json!({"type": "Folder", "name": "shared", "parent": id_of(&top)}))
        .await;
    let sub = app
        .create(json!({"type": "Folder", "name": "sub", "parent": id_of(&shared)}))
        .await;
    app.acl(
        json!({"principal": format!("account:{alice_id}"), "permissions": ["delete"],
        "target_item": id_of(&top)}),
    )
    .await;
    let theirs = app
        .call_with(
            &bob,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Company", "name": "Bob's", "parent": id_of(&sub)})),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    let uri = format!("/api/items/{}?recursive=true", id_of(&shared));
    let a = app.call_with(&alice, Method::DELETE, &uri, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    for gone in [&shared, &sub, &theirs.body] {
        let uri = format!("/api/items/{}", id_of(gone));
        assert_eq!(app.get(&uri).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.get(&format!("/api/items/{}", id_of(&top))).await.status,
        StatusCode::OK
    );
}

/// Deleting an account recursively (its children with it) revokes its tokens too.
async fn a_recursive_delete_runs_each_items_behaviour(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let folder = app
        .create(json!({"type": "Folder", "name": "people"}))
        .await;
    let carol = app
        .create(
            json!({"type": "Account", "name": "carol", "parent": id_of(&folder),
        "attributes": {"username": "carol", "password": "carol's long password"}}),
        )
        .await;
    let login = app
        .call_as(
            None,
            Method::POST,
            "/api/auth",
            Some(json!({"username": "carol",
        "password": "carol's long password"})),
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let token = login.body["token"].as_str().expect("token").to_string();
    let a = app
        .call(
            Method::DELETE,
            &format!("/api/items/{}?recursive=true", id_of(&folder)),
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let me = app.call_with(&token, Method::GET, "/api/auth", None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    let again = app
        .call_as(
            None,
            Method::POST,
            "/api/auth",
            Some(json!({"username": "carol",
        "password": "carol's long password"})),
            &[],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get(&format!("/api/items/{}", id_of(&carol)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// An `admin` rule on a folder, an owner rule granting `admin`, or an admin rule on `Item`
/// never let a member write identity items: that needs an org admin or an admin rule on the
/// identity type itself, and even then nobody makes an admin or grants what they lack.
async fn admin_is_org_wide(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    let folder = app
        .create(json!({"type": "Folder", "name": "alice's"}))
        .await;
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["admin"], "target_item": id_of(&folder)})).await;
    app.acl(json!({"principal": "owner", "permissions": ["admin"], "target_type": "Item"}))
        .await;
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["admin"], "target_type": "Item"})).await;

    let before = app.snapshot().await;
    for body in [
        json!({"type": "Account", "name": "eve", "attributes": {"username": "eve", "admin": true, "password": "eve's long password"}}),
        json!({"type": "Account", "name": "eve", "parent": id_of(&folder), "attributes": {"username": "eve", "password": "eve's long password"}}),
        json!({"type": "Acl", "name": "mine", "attributes": {"principal": "members", "permissions": ["admin"], "target_type": "Account"}}),
        json!({"type": "Group", "name": "admins"}),
        json!({"type": "ApiKey", "name": "k", "attributes": {"account": alice_id}}),
    ] {
        let a = app
            .call_with(&alice, Method::POST, "/api/items", Some(body.clone()))
            .await;
        app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    }
    // Her own account neither: she owns nothing of it, and making herself admin is refused.
    let me = format!("/api/items/{alice_id}");
    let a = app
        .call_with(
            &alice,
            Method::PATCH,
            &me,
            Some(json!({"attributes": {"admin": true}})),
        )
        .await;
    assert!(
        a.status == StatusCode::FORBIDDEN || a.status == StatusCode::NOT_FOUND,
        "{}",
        a.text
    );
    assert_eq!(app.snapshot().await, before);
    let login = app
        .call_as(
            None,
            Method::POST,
            "/api/auth",
            Some(json!({"username": "eve", "password": "eve's long password"})),
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
}

/// An admin rule on `Account` lets a member manage accounts, but only within their own
/// rights: no admin accounts, no groups they are not in, no accounts with rules of their own,
/// no API keys for others, no rules granting what they lack.
async fn nobody_grants_what_they_do_not_hold(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    let (bob_id, _) = app.account("default", "bob", false).await;
    let group = app
        .create(json!({"type": "Group", "name": "finance"}))
        .await;
    for t in ["Account", "Acl", "ApiKey"] {
        app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["admin"], "target_type": t})).await;
    }
    app.acl(json!({"principal": format!("account:{bob_id}"), "permissions": ["read"], "target_type": "Deal"})).await;
    let (carl_id, _) = app.account("default", "carl", false).await;
    let admin = realnet::auth::identity::find_account(&app.rn, "default", "admin")
        .await
        .expect("q")
        .expect("admin");

    let before = app.snapshot().await;
    let attempts = [
        (
            Method::PATCH,
            format!("/api/items/{carl_id}"),
            json!({"attributes": {"password": "taken over password"}}),
        ),
        (
            Method::PATCH,
            format!("/api/items/{carl_id}"),
            json!({"attributes": {"idp_issuer": "https://idp.example", "idp_subject": "alice-elsewhere"}}),
        ),
        (
            Method::POST,
            "/api/items".to_string(),
            json!({"type": "Account", "name": "eve", "attributes": {"username": "eve", "admin": true}}),
        ),
        (
            Method::POST,
            "/api/items".to_string(),
            json!({"type": "Account", "name": "eve", "attributes": {"username": "eve", "groups": [id_of(&group)]}}),
        ),
        (
            Method::PATCH,
            format!("/api/items/{}", admin.id),
            json!({"attributes": {"password": "taken over password"}}),
        ),
        (
            Method::PATCH,
            format!("/api/items/{bob_id}"),
            json!({"attributes": {"password": "taken over password"}}),
        ),
        (
            Method::POST,
            "/api/items".to_string(),
            json!({"type": "ApiKey", "name": "k", "attributes": {"account": admin.id}}),
        ),
        (
            Method::POST,
            "/api/items".to_string(),
            json!({"type": "Acl", "name": "r", "attributes": {"principal": "members", "permissions": ["delete"], "target_type": "Resource"}}),
        ),
        (
            Method::POST,
            "/api/items".to_string(),
            json!({"type": "Acl", "name": "r", "attributes": {"principal": "public", "permissions": ["admin"], "target_type": "Group"}}),
        ),
    ];
    for (method, uri, body) in attempts {
        let a = app
            .call_with(&alice, method, &uri, Some(body.clone()))
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{body}: {}", a.text);
        assert_eq!(app.snapshot().await, before, "{body}");
    }
    // Within her rights, she may.
    let ok = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Account", "name": "dan",
        "attributes": {"username": "dan"}})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    let ok = app.call_with(&alice, Method::POST, "/api/items", Some(json!({"type": "Acl", "name": "r",
        "attributes": {"principal": "members", "permissions": ["read"], "target_type": "Resource"}}))).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    let ok = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "ApiKey", "name": "mine",
        "attributes": {"account": alice_id}})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
}

/// Server-owned fields: a member cannot mark a file ready, give it a checksum or change its
/// size, nor rewrite a job's status or result; `File`, `Job` and `Org` items are not made
/// through the item API, not even by an admin.
async fn server_owned_fields_and_items(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, alice) = app.account("default", "alice", false).await;
    let file = app
        .call_with(
            &alice,
            Method::POST,
            "/api/files",
            Some(json!({"name": "a.txt", "content_type": "text/plain", "size": 3})),
        )
        .await;
    assert_eq!(file.status, StatusCode::CREATED, "{}", file.text);
    let uri = format!("/api/items/{}", id_of(&file.body["item"]));
    let job = app
        .call_with(
            &alice,
            Method::POST,
            "/api/jobs",
            Some(json!({"kind": "items.create",
        "payload": {"items": [{"type": "Folder", "name": "by job"}]}})),
        )
        .await;
    assert_eq!(job.status, StatusCode::ACCEPTED, "{}", job.text);
    app.finished_job(&alice, &id_of(&job.body)).await;
    let job_uri = format!("/api/items/{}", id_of(&job.body));

    let before = app.snapshot().await;
    let checksum = "0".repeat(64);
    for (token, method, uri, body, field) in [
        (
            &alice,
            Method::PATCH,
            &uri,
            json!({"attributes": {"status": "ready"}}),
            "status",
        ),
        (
            &alice,
            Method::PATCH,
            &uri,
            json!({"attributes": {"checksum": checksum}}),
            "checksum",
        ),
        (
            &alice,
            Method::PATCH,
            &uri,
            json!({"attributes": {"size": 4}}),
            "size",
        ),
        (
            &alice,
            Method::PATCH,
            &uri,
            json!({"attributes": {"size": null}}),
            "size",
        ),
        (
            &alice,
            Method::PUT,
            &uri,
            json!({"name": "a.txt", "attributes": {"content_type": "text/plain", "size": 3, "status": "ready", "checksum": checksum}}),
            "status",
        ),
        (
            &app.admin_token,
            Method::PATCH,
            &job_uri,
            json!({"attributes": {"status": "queued", "result": {"count": 9}}}),
            "status",
        ),
        (
            &alice,
            Method::PATCH,
            &job_uri,
            json!({"attributes": {"error": "made up"}}),
            "error",
        ),
    ] {
        let a = app.call_with(token, method, uri, Some(body.clone())).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.text
        );
        assert!(
            a.body["error"]["details"]["fields"][field].is_string(),
            "{body}: {}",
            a.text
        );
        assert_eq!(app.snapshot().await, before, "{body}");
    }
    for (token, body) in [
        (
            &alice,
            json!({"type": "File", "name": "b.txt", "attributes": {"content_type": "text/plain", "size": 3, "status": "ready", "checksum": checksum}}),
        ),
        (&app.admin_token, json!({"type": "File", "name": "b.txt"})),
        (
            &app.admin_token,
            json!({"type": "Job", "name": "j", "attributes": {"kind": "items.create"}}),
        ),
        (&app.admin_token, json!({"type": "Org", "name": "nope"})),
    ] {
        let a = app
            .call_with(token, Method::POST, "/api/items", Some(body.clone()))
            .await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.text
        );
        assert!(
            a.body["error"]["details"]["fields"]["type"].is_string(),
            "{}",
            a.text
        );
        assert_eq!(app.snapshot().await, before, "{body}");
    }
    // The org's own `Org` item cannot be deleted, not even by an admin.
    let org_item = app.get("/api/items?type=Org").await.body["items"][0].clone();
    let a = app
        .call(
            Method::DELETE,
            &format!("/api/items/{}", id_of(&org_item)),
            None,
            &[],
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;

    // Sending a server-owned field unchanged (a read-modify-write PUT) is fine.
    let current = app.get(&uri).await.body;
    let put = app
        .call_with(
            &alice,
            Method::PUT,
            &uri,
            Some(json!({"name": "renamed.txt",
        "attributes": current["attributes"]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["attributes"]["status"], "pending");
}

/// Moving an item needs `update` on it and `create` where it goes.
async fn moves_need_create_on_the_new_parent(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    let open = app.create(json!({"type": "Folder", "name": "open"})).await;
    let closed = app
        .create(json!({"type": "Folder", "name": "closed"}))
        .await;
    // Alice may read everything, and create only under `open`.
    let defaults = app
        .get("/api/items?type=Acl&name=members%20read%20and%20create%20resources")
        .await;
    let rule = &defaults.body["items"][0];
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/items/{}", id_of(rule)),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    app.acl(json!({"principal": "members", "permissions": ["read"], "target_type": "Resource"}))
        .await;
    app.acl(json!({"principal": format!("account:{alice_id}"), "permissions": ["create"], "target_item": id_of(&open)})).await;
    let mine = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Folder", "name": "mine", "parent": id_of(&open)})),
        )
        .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.text);

    let before = app.snapshot().await;
    let uri = format!("/api/items/{}", id_of(&mine.body));
    for parent in [json!(id_of(&closed)), Value::Null] {
        let a = app
            .call_with(&alice, Method::PATCH, &uri, Some(json!({"parent": parent})))
            .await;
        app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    }
    let put = app
        .call_with(
            &alice,
            Method::PUT,
            &uri,
            Some(json!({"name": "mine", "parent": id_of(&closed)})),
        )
        .await;
    app.assert_refused(&before, &put, StatusCode::FORBIDDEN)
        .await;
}

/// A deleted group grants nothing, even to accounts whose `groups` still name it.
async fn a_deleted_group_grants_nothing(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let group = app.create(json!({"type": "Group", "name": "sales"})).await;
    let carol = app
        .create(
            json!({"type": "Account", "name": "carol", "attributes": {"username": "carol",
        "groups": [id_of(&group)]}}),
        )
        .await;
    app.acl(json!({"principal": format!("group:{}", id_of(&group)), "permissions": ["read"], "target_type": "Account"})).await;
    let token = realnet_tests::TestTokens::token_for(&*app.rn, "default", "carol").await;
    let uri = format!("/api/items/{}", id_of(&carol));
    let admin_list = "/api/items?type=Account";
    assert_eq!(
        app.call_with(&token, Method::GET, admin_list, None)
            .await
            .body["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/items/{}", id_of(&group)),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let listed = app.call_with(&token, Method::GET, admin_list, None).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    let me = app.call_with(&token, Method::GET, "/api/auth", None).await;
    assert_eq!(me.body["groups"], json!([]), "{}", me.text);
    assert_eq!(
        app.get(&uri).await.body["attributes"]["groups"],
        json!([id_of(&group)])
    );
}

/// Passwords never rest in a `Job` or `Schedule` item or a queue body: item jobs that carry a
/// write-only attribute are refused before anything is recorded.
async fn no_secret_rests_in_a_job(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let admin = realnet::auth::identity::find_account(&app.rn, "default", "admin")
        .await
        .expect("q")
        .expect("admin");
    let before = app.snapshot().await;
    for payload in [
        json!({"items": [{"type": "Account", "name": "eve", "attributes": {"username": "eve", "password": "eve's long password"}}]}),
        json!({"items": [{"id": admin.id, "attributes": {"password": "a new long password"}}]}),
    ] {
        let kind = if payload["items"][0]["id"].is_string() {
            "items.update"
        } else {
            "items.create"
        };
        let a = app
            .post("/api/jobs", json!({"kind": kind, "payload": payload}))
            .await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert!(a.text.contains("write-only"), "{}", a.text);
        let s = app
            .post(
                "/api/items",
                json!({"type": "Schedule", "name": "s", "attributes": {
            "cron": "0 * * * *", "job": {"kind": kind, "payload": payload}}}),
            )
            .await;
        app.assert_refused(&before, &s, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert!(
            s.body["error"]["details"]["fields"]["job"].is_string(),
            "{}",
            s.text
        );
    }
}

/// A schedule runs as whoever last set its job, and setting it needs the job's rights.
async fn schedules_run_as_the_account_that_set_their_job(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    app.acl(json!({"principal": "members", "permissions": ["create", "update"], "target_type": "Schedule"})).await;
    let job = json!({"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "nightly"}]}});
    let made = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Schedule", "name": "s",
        "attributes": {"cron": "0 3 * * *", "job": job}})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    assert_eq!(made.body["attributes"]["run_as"], json!(alice_id));
    let uri = format!("/api/items/{}", id_of(&made.body));

    // A job she may not run (creating accounts) is refused when she sets it.
    let before = app.snapshot().await;
    let bad = json!({"kind": "items.create", "payload": {"items": [{"type": "Account", "name": "eve", "attributes": {"username": "eve", "admin": true}}]}});
    let a = app
        .call_with(
            &alice,
            Method::PATCH,
            &uri,
            Some(json!({"attributes": {"job": bad}})),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(
        a.body["error"]["details"]["fields"]["job"].is_string(),
        "{}",
        a.text
    );
    // Nor can she choose who it runs as.
    let admin = realnet::auth::identity::find_account(&app.rn, "default", "admin")
        .await
        .expect("q")
        .expect("admin");
    let a = app
        .call_with(
            &alice,
            Method::PATCH,
            &uri,
            Some(json!({"attributes": {"run_as": admin.id}})),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;

    // Renaming keeps who it runs as; the admin setting the job takes it over.
    let renamed = app
        .call_with(
            &alice,
            Method::PATCH,
            &uri,
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(
        renamed.body["attributes"]["run_as"],
        json!(alice_id),
        "{}",
        renamed.text
    );
    let taken = app
        .call(
            Method::PATCH,
            &uri,
            Some(json!({"attributes": {"job": bad}})),
            &[],
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text);
    assert_eq!(taken.body["attributes"]["run_as"], json!(admin.id));
}

/// A type a deployment derives from a core type gets the core type's behaviour and cannot
/// escape it: an `Employee` (an `Account`) has a write-only, hashed password, is written only
/// by admins, keeps usernames unique and logs in; an `Invoice` (a `File`) is not made through
/// the item API and its status stays the server's.
async fn subtypes_keep_their_base_behaviour(kind: StoreKind) {
    let dir = realnet_tests::init_dir_with(json!([
        {"name": "Employee", "base": "Account", "fields": [{"name": "department", "kind": "string"}]},
        {"name": "Invoice", "base": "File"}
    ]));
    let types = realnet_tests::types_in(dir.path());
    let app = TestApp::with_types(kind, types, |_| {}).await;
    let (_, alice) = app.account("default", "alice", false).await;
    let made = app
        .create(json!({"type": "Employee", "name": "erin", "attributes": {
        "username": "erin", "department": "sales", "password": "erin's long password"}}))
        .await;
    assert!(made["attributes"].get("password").is_none(), "{made}");
    let login = app
        .call_as(
            None,
            Method::POST,
            "/api/auth",
            Some(json!({"username": "erin",
        "password": "erin's long password"})),
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);

    let before = app.snapshot().await;
    let a = app
        .call_with(
            &alice,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Employee",
        "name": "mallory", "attributes": {"username": "mallory", "admin": true}})),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    let a = app
        .post(
            "/api/items",
            json!({"type": "Employee", "name": "alice 2",
        "attributes": {"username": "alice"}}),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::CONFLICT).await;
    let a = app
        .post(
            "/api/items",
            json!({"type": "Invoice", "name": "i.pdf",
        "attributes": {"status": "ready"}}),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let a = app
        .post(
            "/api/jobs",
            json!({"kind": "items.create", "payload": {"items": [{"type": "Employee",
        "name": "e", "attributes": {"username": "e", "password": "a long enough password"}}]}}),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
}

on_every_store!(
    a_rule_above_reaches_a_recursive_delete,
    subtypes_keep_their_base_behaviour,
    recursive_delete_checks_every_item,
    a_recursive_delete_runs_each_items_behaviour,
    admin_is_org_wide,
    nobody_grants_what_they_do_not_hold,
    server_owned_fields_and_items,
    moves_need_create_on_the_new_parent,
    a_deleted_group_grants_nothing,
    no_secret_rests_in_a_job,
    schedules_run_as_the_account_that_set_their_job,
);
