//! Orgs and their seed items, on every store: an org that was never set up (no `Org` item)
//! has no account anyone can log in to or run a job as, whatever the store holds there; each
//! seed item is made once per org, so one an admin deleted stays deleted when the store is set
//! up again (a restart), and the seed items of a newer definition folder are added once.

use std::path::Path;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use realnet::Realnet;
use realnet::auth::password;
use realnet::item::Item;
use realnet::store::Write;
use realnet_tests::{ADMIN_PASSWORD, OTHER_ORG, StoreKind, TestApp, on_every_store, query};
use serde_json::{Value, json};

/// Every item of `org`, in creation order.
async fn items_of(rn: &Realnet, org: &str) -> Vec<Item> {
    let mut all = Vec::new();
    let mut q = query(&[("limit", "200")]);
    loop {
        let page = rn.store.query(org, &q).await.expect("query");
        all.extend(page.items);
        match page.next {
            Some(p) => q.after = Some(p),
            None => break,
        }
    }
    all
}

async fn login(app: &TestApp, body: Value) -> realnet_tests::Answer {
    app.call_as(None, Method::POST, "/api/auth", Some(body), &[])
        .await
}

/// What `realnet account create --org ghost` made before orgs were checked: an admin account
/// (with a password) in an org that was never set up.
async fn plant_account(rn: &Realnet, org: &str, username: &str, secret: &str) -> Item {
    let now = Utc::now();
    let account = Item {
        id: uuid::Uuid::now_v7(),
        type_name: "Account".into(),
        name: username.into(),
        parent: None,
        org: org.into(),
        owner: None,
        attributes: json!({"username": username, "admin": true})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let hash = password::hash(secret.to_string()).await.expect("not busy");
    rn.store
        .apply(
            org,
            &[
                Write::Create(account.clone()),
                Write::SetPassword {
                    account: account.id,
                    hash: Some(hash),
                },
            ],
        )
        .await
        .expect("plant the account");
    account
}

async fn an_org_never_set_up_has_no_account_to_log_in_to_or_act_as(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let secret = "the typo tenant's password";
    plant_account(&app.rn, "ghost", "eve", secret).await;
    let planted = items_of(&app.rn, "ghost").await;
    let before = app.snapshot().await;
    assert!(!app.rn.org_exists("ghost").await.expect("exists"));
    assert!(app.rn.org_exists(OTHER_ORG).await.expect("exists"));

    // The same answer as a wrong password.
    let wrong = login(
        &app,
        json!({"username": "admin", "password": "not the password"}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    for body in [
        json!({"username": "eve", "password": secret, "org": "ghost"}),
        json!({"username": "admin", "password": ADMIN_PASSWORD, "org": "nope"}),
    ] {
        let a = login(&app, body.clone()).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{body}: {}", a.text);
        assert_eq!(a.body, wrong.body, "{body}");
    }

    // A job naming the planted account as its actor runs nothing, even signed by this
    // installation.
    let envelope = json!({"kind": "items.create", "org": "ghost", "actor": "eve",
        "payload": {"items": [{"type": "Account", "name": "mallory",
            "attributes": {"username": "mallory", "admin": true}}]}})
    .to_string();
    let credentials = realnet::jobs::envelope::Credentials {
        signature: Some(app.sign(&envelope).await),
        api_key: None,
    };
    let outcome = realnet::jobs::worker::run_body(
        &app.rn,
        "ghost-job",
        &envelope,
        &credentials,
        std::time::Duration::from_secs(10),
    )
    .await;
    assert!(
        matches!(outcome, realnet::jobs::worker::RecordOutcome::Failed(_)),
        "{outcome:?}"
    );
    let recorded = app
        .rn
        .store
        .job_outcome("ghost", "message:ghost-job", Utc::now())
        .await
        .expect("read");
    assert_eq!(recorded, None, "not even the failure is recorded there");
    assert_eq!(items_of(&app.rn, "ghost").await, planted, "nothing written");
    assert_eq!(app.snapshot().await, before, "nothing written elsewhere");
    assert_eq!(
        app.rn.store.orgs().await.expect("orgs"),
        vec!["default".to_string(), OTHER_ORG.to_string()]
    );

    // Set up, the org is one: its accounts log in.
    let fresh = realnet_tests::realnet(
        app.rn.config.clone(),
        realnet_tests::registry(),
        app.rn.store.clone(),
    );
    fresh.init_org("ghost", None).await.expect("set up ghost");
    assert!(app.rn.org_exists("ghost").await.expect("exists"));
    let a = login(
        &app,
        json!({"username": "eve", "password": secret, "org": "ghost"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

/// The default rule that lets members read apps, in `org`.
async fn read_apps_rule(rn: &Realnet, org: &str) -> Option<Item> {
    items_of(rn, org)
        .await
        .into_iter()
        .find(|i| i.type_name == "Acl" && i.name == "members read apps")
}

/// The apps a member of the default org sees.
async fn apps_a_member_sees(app: &TestApp, token: &str) -> usize {
    let a = app
        .call_as(Some(token), Method::GET, "/api/items?type=App", None, &[])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body["items"].as_array().map_or(0, Vec::len)
}

async fn a_deleted_default_rule_stays_deleted_after_a_restart(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, member) = app.account("default", "member", false).await;
    assert_eq!(apps_a_member_sees(&app, &member).await, 2);
    let rule = read_apps_rule(&app.rn, "default").await.expect("seeded");
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/items/{}", rule.id),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(apps_a_member_sees(&app, &member).await, 0);
    let before = app.snapshot().await;

    // A restart: a new context over the same store, set up as `realnet serve` does.
    for _ in 0..2 {
        let restarted = realnet_tests::realnet(
            app.rn.config.clone(),
            realnet_tests::registry(),
            app.rn.store.clone(),
        );
        let report = restarted.init().await.expect("init");
        assert_eq!((report.created, report.kept_deleted), (0, 1), "{report:?}");
        assert!(report.admin.is_none());
        let other = restarted
            .init_org(OTHER_ORG, None)
            .await
            .expect("init other");
        assert_eq!((other.created, other.kept_deleted), (0, 0), "{other:?}");
    }
    assert!(read_apps_rule(&app.rn, "default").await.is_none());
    assert!(
        read_apps_rule(&app.rn, OTHER_ORG).await.is_some(),
        "the other org keeps its own"
    );
    assert_eq!(app.snapshot().await, before, "nothing made again");
    assert_eq!(apps_a_member_sees(&app, &member).await, 0);
}

/// A copy of the shipped initialization folder whose definitions add seed items: a folder
/// `Templates` with a child `Letters`, and a child `Archive` of the seeded `Documents`.
fn newer_definitions() -> tempfile::TempDir {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../initialization");
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&shipped).expect("read initialization") {
        let path = entry.expect("entry").path();
        let mut file: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        let name = path.file_name().expect("name").to_owned();
        let items = file.get_mut("items").and_then(Value::as_array_mut);
        match (name.to_str(), items) {
            (Some("apps.json"), Some(items)) => items.push(json!({"type": "Folder",
                "name": "Templates", "children": [{"type": "Folder", "name": "Letters"}]})),
            (Some("core.json"), Some(items)) => {
                for item in items.iter_mut().filter(|i| i["name"] == "Documents") {
                    item["children"] = json!([{"type": "Folder", "name": "Archive"}]);
                }
            }
            _ => {}
        }
        std::fs::write(dir.path().join(name), file.to_string()).expect("write");
    }
    dir
}

fn folders_named<'a>(items: &'a [Item], name: &str) -> Vec<&'a Item> {
    items
        .iter()
        .filter(|i| i.type_name == "Folder" && i.name == name)
        .collect()
}

async fn seeds_of_a_newer_definition_are_added_once(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let dir = newer_definitions();
    let newer = realnet_tests::realnet(
        app.rn.config.clone(),
        realnet_tests::types_in(dir.path()),
        app.rn.store.clone(),
    );
    for org in ["default", OTHER_ORG] {
        let first = newer.init_org(org, None).await.expect("init");
        assert_eq!(first.created, 3, "{org}: Templates, Letters, Archive");
        let again = newer.init_org(org, None).await.expect("init");
        assert_eq!((again.created, again.kept_deleted), (0, 0), "{org}");
        let items = items_of(&app.rn, org).await;
        let documents = folders_named(&items, "Documents");
        let templates = folders_named(&items, "Templates");
        let (letters, archive) = (
            folders_named(&items, "Letters"),
            folders_named(&items, "Archive"),
        );
        assert_eq!(
            (
                documents.len(),
                templates.len(),
                letters.len(),
                archive.len()
            ),
            (1, 1, 1, 1),
            "{org}: each once"
        );
        assert_eq!(letters[0].parent, Some(templates[0].id));
        assert_eq!(archive[0].parent, Some(documents[0].id));
    }

    // Deleted in one org, they stay deleted there; the other org keeps its own.
    let templates = folders_named(&items_of(&app.rn, "default").await, "Templates")[0].id;
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/items/{templates}?recursive=true"),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let before = app.snapshot().await;
    let report = newer.init().await.expect("init");
    assert_eq!((report.created, report.kept_deleted), (0, 1), "{report:?}");
    assert_eq!(app.snapshot().await, before);
    let items = items_of(&app.rn, "default").await;
    assert!(folders_named(&items, "Templates").is_empty());
    assert!(folders_named(&items, "Letters").is_empty());
    let other = items_of(&app.rn, OTHER_ORG).await;
    assert_eq!(folders_named(&other, "Letters").len(), 1);
}

on_every_store!(
    an_org_never_set_up_has_no_account_to_log_in_to_or_act_as,
    a_deleted_default_rule_stays_deleted_after_a_restart,
    seeds_of_a_newer_definition_are_added_once,
);
