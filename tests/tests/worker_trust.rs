//! Job envelopes prove who sent them, on every store: a message that only names an org and an
//! actor, or whose proof does not hold (unsigned, tampered after signing, replayed into
//! another org, signed with another key, an unknown, revoked or misused API key), runs nothing
//! and writes nothing in either org, and is reported for the dead-letter queue with a reason
//! that holds no secret. A producer's API-key job runs as the key's account; a signed job
//! runs as its actor; two accounts' same idempotency key are two jobs.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use realnet::jobs::envelope::JobSigner;
use realnet::jobs::worker::{self, RecordOutcome};
use realnet_tests::sqs::{Message, event, ids};
use realnet_tests::{OTHER_ORG, StoreKind, TestApp, TestTokens, on_every_store};
use serde_json::{Value, json};

fn company(org: &str, actor: &str, name: &str) -> Value {
    json!({"kind": "items.create", "org": org, "actor": actor,
        "payload": {"items": [{"type": "Company", "name": name}]}})
}

/// An API key of `account`, made by `token` (an admin of the account's org).
async fn api_key(app: &TestApp, token: &str, account: uuid::Uuid, name: &str) -> (String, String) {
    let a = app
        .call_as(
            Some(token),
            Method::POST,
            "/api/items",
            Some(json!({"type": "ApiKey", "name": name, "attributes": {"account": account}})),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    (
        a.body["key"].as_str().expect("the key").to_string(),
        a.body["id"].as_str().expect("id").to_string(),
    )
}

async fn companies(app: &TestApp, name: &str) -> Vec<Value> {
    let a = app
        .get(&format!("/api/companies?name={}", name.replace(' ', "%20")))
        .await;
    a.body["items"].as_array().cloned().unwrap_or_default()
}

async fn unproven_envelopes_run_nothing_and_write_nothing(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (member, member_token) = app.account("default", "member", false).await;
    let admin = app.account_id("default", "admin").await;
    let (member_key, _) = api_key(&app, &app.admin_token, member, "producer").await;
    let (revoked_key, revoked_id) = api_key(&app, &app.admin_token, member, "old").await;
    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/items/{revoked_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    let other_token = app.rn.token_for(OTHER_ORG, "admin").await;
    let other_admin = app.account_id(OTHER_ORG, "admin").await;
    let (other_key, _) = api_key(&app, &other_token, other_admin, "theirs").await;
    // A finished job of the member, whose Job item a forger would like to rewrite.
    let sent = app
        .call_as(
            Some(&member_token),
            Method::POST,
            "/api/jobs",
            Some(json!({"kind": "items.create", "payload": {"items": [{"type": "Company", "name": "Real"}]}})),
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let job_id = sent.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        app.finished_job(&member_token, &job_id).await["status"],
        "succeeded"
    );

    // What a genuine signed envelope of the member looks like, and its signature.
    let mut genuine = company("default", "member", "Genuine");
    genuine["job"] = json!(job_id);
    genuine["idempotency_key"] = json!("genuine-1");
    let signature = app.sign(&genuine.to_string()).await;
    let tampered = |change: &dyn Fn(&mut Value)| {
        let mut body = genuine.clone();
        change(&mut body);
        Message {
            body: body.to_string(),
            signature: Some(signature.clone()),
            api_key: None,
        }
    };
    let eve = json!({"kind": "items.create", "org": "default", "actor": "admin",
        "payload": {"items": [{"type": "Account", "name": "eve",
            "attributes": {"username": "eve", "admin": true}}]}});
    let mut eve_elsewhere = eve.clone();
    eve_elsewhere["org"] = json!(OTHER_ORG);
    let mut job_rewrite = json!({"kind": "items.update", "org": "default", "actor": "admin",
        "payload": {"items": [{"id": job_id, "attributes": {"status": "failed"}}]}});
    job_rewrite["job"] = json!(job_id);
    let wrong_key = JobSigner::new(b"another installation's job signing key");
    let mut with_job = company("default", "member", "Keyed");
    with_job["job"] = json!(job_id);
    let mut with_run = company("default", "member", "Keyed");
    with_run["run"] = json!("schedule:x:y");

    let cases: Vec<(&str, Message, &str)> = vec![
        (
            "forged: names an org and an actor, no proof",
            Message::unproven(&eve),
            "no proof",
        ),
        (
            "forged into another org",
            Message::unproven(&eve_elsewhere),
            "no proof",
        ),
        (
            "unsigned, naming a Job item",
            Message::unproven(&job_rewrite),
            "no proof",
        ),
        (
            "an empty signature",
            Message {
                signature: Some(String::new()),
                ..Message::unproven(&eve)
            },
            "signature",
        ),
        (
            "tampered: actor",
            tampered(&|b| b["actor"] = json!("admin")),
            "signature",
        ),
        (
            "tampered: payload",
            tampered(&|b| b["payload"]["items"][0]["name"] = json!("Evil")),
            "signature",
        ),
        (
            "tampered: job item",
            tampered(&|b| b["job"] = json!(uuid::Uuid::now_v7())),
            "signature",
        ),
        (
            "tampered: idempotency key",
            tampered(&|b| b["idempotency_key"] = json!("genuine-2")),
            "signature",
        ),
        (
            "replayed into another org",
            tampered(&|b| {
                b["org"] = json!(OTHER_ORG);
                b["actor"] = json!("admin");
            }),
            "signature",
        ),
        (
            "signed with another key",
            Message {
                signature: Some(wrong_key.sign(&eve.to_string())),
                ..Message::unproven(&eve)
            },
            "signature",
        ),
        (
            "an unknown API key",
            Message::with_key(
                company("default", "member", "K"),
                &format!("rnk_{}", "A".repeat(43)),
            ),
            "not a live API key",
        ),
        (
            "a malformed API key",
            Message::with_key(company("default", "member", "K"), "let me in"),
            "not a live API key",
        ),
        (
            "a revoked API key",
            Message::with_key(company("default", "member", "K"), &revoked_key),
            "not a live API key",
        ),
        (
            "a login token as API key",
            Message::with_key(company("default", "member", "K"), &member_token),
            "login token",
        ),
        (
            "an API key of org A naming org B",
            Message::with_key(company(OTHER_ORG, "admin", "K"), &member_key),
            "org",
        ),
        (
            "another org's API key naming this org",
            Message::with_key(company("default", "admin", "K"), &other_key),
            "org",
        ),
        (
            "an API key naming another actor",
            Message::with_key(company("default", "admin", "K"), &member_key),
            "actor",
        ),
        (
            "an API key naming a Job item",
            Message::with_key(&with_job, &member_key),
            "Job item",
        ),
        (
            "an API key naming a scheduled run",
            Message::with_key(&with_run, &member_key),
            "scheduled run",
        ),
    ];
    let before = app.snapshot().await;
    // Each alone, with its reason: no secret in it.
    for (case, message, reason) in &cases {
        let outcome = worker::run_body(
            &app.rn,
            "m-trust",
            &message.body,
            &message.credentials(),
            Duration::from_secs(30),
        )
        .await;
        let RecordOutcome::Refused(why) = &outcome else {
            panic!("{case}: {outcome:?}");
        };
        assert!(why.contains(reason), "{case}: {why}");
        for secret in [
            &member_key,
            &revoked_key,
            &other_key,
            &member_token,
            &signature,
        ] {
            assert!(!why.contains(secret.as_str()), "{case}: {why}");
        }
    }
    // All in one batch, on a standard and a FIFO queue: every one is reported (for the
    // dead-letter queue), on every delivery.
    let messages: Vec<Message> = cases.into_iter().map(|(_, m, _)| m).collect();
    for fifo in [false, true] {
        let batch = event(&messages, fifo);
        let mut all = ids(&batch);
        let mut reported = app.handle(batch).await;
        // A standard queue's records run at once, so they come back in any order.
        if !fifo {
            all.sort();
            reported.sort();
        }
        assert_eq!(reported, all, "fifo: {fifo}");
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "nothing was written in either org"
    );
    let eve = realnet::auth::identity::find_account(&app.rn, "default", "eve")
        .await
        .expect("query");
    assert!(eve.is_none());
    let job = app.finished_job(&member_token, &job_id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(app.account_id("default", "admin").await, admin);
}

async fn proven_envelopes_run_as_their_sender(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (member, _) = app.account("default", "member", false).await;
    let (member2, _) = app.account("default", "member2", false).await;
    let admin = app.account_id("default", "admin").await;
    let (key, _) = api_key(&app, &app.admin_token, member, "producer").await;
    let (key2, _) = api_key(&app, &app.admin_token, member2, "producer 2").await;
    let mut by_key = company("default", "member", "By key");
    by_key["idempotency_key"] = json!("same-key");
    let mut by_key2 = company("default", "member2", "By key 2");
    by_key2["idempotency_key"] = json!("same-key");
    let mut signed = company("default", "admin", "Signed");
    signed["idempotency_key"] = json!("same-key");
    let batch = event(
        &[
            Message::with_key(&by_key, &key),
            Message::with_key(&by_key2, &key2),
            app.signed(&signed).await,
        ],
        false,
    );
    assert_eq!(app.handle(batch).await, Vec::<String>::new());
    for (name, owner) in [("By key", member), ("By key 2", member2), ("Signed", admin)] {
        let made = companies(&app, name).await;
        assert_eq!(
            made.len(),
            1,
            "{name}: one account's key never suppresses another's"
        );
        assert_eq!(made[0]["owner"], json!(owner), "{name} runs as its sender");
    }
    // The same key of the same account again runs nothing more.
    let again = event(&[Message::with_key(&by_key, &key)], false);
    assert_eq!(app.handle(again).await, Vec::<String>::new());
    assert_eq!(companies(&app, "By key").await.len(), 1);
}

/// The signing key is the installation's: every process over the same store (the api, worker
/// and scheduler functions) shares the one generated and kept there, and a configured
/// `REALNET_JOB_SIGNING_KEY` replaces it; another installation's signatures do not hold.
async fn every_process_of_an_installation_shares_its_key(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let body = company("default", "admin", "Shared").to_string();
    let elsewhere = realnet_tests::realnet(
        app.rn.config.clone(),
        realnet_tests::registry(),
        app.rn.store.clone(),
    );
    let signer = elsewhere.job_signer().await.expect("signer");
    assert_eq!(signer.sign(&body), app.sign(&body).await);
    let configured = |key: &str| {
        let mut config = app.rn.config.clone();
        config.job_signing_key = Some(realnet::config::Secret(key.to_string()));
        realnet_tests::realnet(config, realnet_tests::registry(), app.rn.store.clone())
    };
    let (one, two) = (
        configured("the first installation's key, 32 characters or more"),
        configured("the second installation's key, 32 characters or more"),
    );
    let (first, second) = (
        one.job_signer().await.expect("signer"),
        two.job_signer().await.expect("signer"),
    );
    let signature = first.sign(&body);
    assert!(first.verify(&body, &signature));
    assert!(
        !second.verify(&body, &signature),
        "another installation's key"
    );
    assert!(
        !signer.verify(&body, &signature),
        "the generated key is not the configured one"
    );
}

/// A rotation of `REALNET_JOB_SIGNING_KEY` with the old key in
/// `REALNET_JOB_SIGNING_KEY_PREVIOUS`: jobs queued before the switch (signed with the old key)
/// still run, new ones are signed with the new key; a key not listed and a forged or tampered
/// signature are refused and write nothing; once the old key is no longer listed, what it
/// signed is refused too.
async fn jobs_signed_before_a_rotation_run_while_the_old_key_is_listed(kind: StoreKind) {
    const OLD: &str = "the installation's old signing key, 32 characters";
    const NEW: &str = "the installation's new signing key, 32 characters";
    let secret = |k: &str| realnet::config::Secret(k.to_string());
    let app = TestApp::with_config(kind, |c| {
        c.job_signing_key = Some(secret(NEW));
        c.previous_job_signing_keys = vec![secret(OLD)];
    })
    .await;
    let signed_with = |key: &str, body: &Value| Message {
        signature: Some(JobSigner::new(key.as_bytes()).sign(&body.to_string())),
        ..Message::unproven(body)
    };
    let before_rotation = company("default", "admin", "Queued before the rotation");
    let after_rotation = company("default", "admin", "Sent after the rotation");
    let sent_now = app.signed(&after_rotation).await;
    assert_eq!(
        sent_now.signature,
        signed_with(NEW, &after_rotation).signature,
        "the installation signs with the new key"
    );
    let unlisted = company("default", "admin", "Signed with a key not listed");
    let mut tampered = signed_with(OLD, &before_rotation);
    tampered.body = company("default", "admin", "Tampered").to_string();
    let forged = Message {
        // Well-formed (the base64 of 32 bytes), but no key's.
        signature: Some(format!("{}=", "A".repeat(43))),
        ..Message::unproven(company("default", "admin", "Forged"))
    };
    let before = app.snapshot().await;
    let refused = event(
        &[
            signed_with("a key of no installation, 32 characters long", &unlisted),
            tampered,
            forged,
        ],
        false,
    );
    let mut all = ids(&refused);
    let mut reported = app.handle(refused).await;
    all.sort();
    reported.sort();
    assert_eq!(reported, all, "each refused, for the dead-letter queue");
    assert_eq!(app.snapshot().await, before, "nothing was written");

    let batch = event(&[signed_with(OLD, &before_rotation), sent_now], false);
    assert_eq!(app.handle(batch).await, Vec::<String>::new());
    for name in ["Queued before the rotation", "Sent after the rotation"] {
        assert_eq!(companies(&app, name).await.len(), 1, "{name}");
    }

    // After the overlap: the old key is no longer listed, and what it signed is refused.
    let mut config = app.rn.config.clone();
    config.previous_job_signing_keys.clear();
    let after = std::sync::Arc::new(realnet_tests::realnet(
        config,
        realnet_tests::registry(),
        app.rn.store.clone(),
    ));
    let late = signed_with(OLD, &company("default", "admin", "Too late"));
    let outcome = worker::run_body(
        &after,
        "m-late",
        &late.body,
        &late.credentials(),
        Duration::from_secs(30),
    )
    .await;
    let RecordOutcome::Refused(why) = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(why.contains("signature"), "{why}");
    assert!(!why.contains(OLD) && !why.contains(NEW), "{why}");
    assert!(companies(&app, "Too late").await.is_empty());
}

on_every_store!(
    unproven_envelopes_run_nothing_and_write_nothing,
    proven_envelopes_run_as_their_sender,
    every_process_of_an_installation_shares_its_key,
    jobs_signed_before_a_rotation_run_while_the_old_key_is_listed,
);
