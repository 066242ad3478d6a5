//! No password, hash, token or secret in any log line or error body.
//!
//! A binary of its own: it installs the process-wide subscriber, so every line of every
//! thread (runtime workers, blocking pool) is captured, and no other test's lines mix in.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_client_auth::subjects;
use crm_testing::TEST_JWT_SECRET;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

use helpers::{PASSWORD, spawn_app};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_registration_and_reset_flows_log_no_secret() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        // Everything at TRACE, except async-nats' TRACE lines, which dump whole messages
        // (the reset token travels in an event by design): production filters must keep
        // `async_nats` at DEBUG or above (see docs/perf/auth.md, "log levels").
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,async_nats=debug"))
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");

    let app = spawn_app().await;
    let mut bodies: Vec<Value> = Vec::new();
    let (tenant_id, subdomain, invitation) = app.signup().await;
    let (status, admin) = app.register(&invitation, PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    let admin_access = admin["access_token"].as_str().unwrap().to_owned();
    let tenant = helpers::Tenant {
        id: tenant_id,
        subdomain: subdomain.clone(),
        admin: helpers::Session { email: format!("admin@{subdomain}.io"), password: PASSWORD.into(), tokens: serde_json::from_value(admin.clone()).unwrap() },
    };
    let wrong = "Wr0ng-Passw0rd-Unique-7731";
    let user = app.user(&tenant, "viewer").await;
    for body in [
        json!({"email": user.email, "password": wrong, "tenant": subdomain}),
        json!({"email": "nobody@x.io", "password": wrong, "tenant": subdomain}),
        json!({"email": user.email, "password": 918273645501_i64, "tenant": subdomain}),
    ] {
        bodies.push(app.post("/api/v1/auth/login", None, body).await.1);
    }
    let (_, login) = app.post("/api/v1/auth/login", None, json!({"email": user.email, "password": PASSWORD, "tenant": subdomain})).await;
    let (_, refreshed) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": login["refresh_token"]})).await;
    bodies.push(app.post("/api/v1/auth/refresh", None, json!({"refresh_token": login["refresh_token"]})).await.1);
    bodies.push(app.get("/api/v1/auth/me", "not.a.token").await.1);
    let mut requested = app.platform.events(subjects::USER_PASSWORD_RESET_REQUESTED).await;
    bodies.push(app.post("/api/v1/auth/password-reset", None, json!({"email": user.email, "tenant": subdomain})).await.1);
    let reset_token = requested.wait_for(&tenant.id, subjects::USER_PASSWORD_RESET_REQUESTED, Duration::from_secs(10)).await.data["reset_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_password = "N3w-Passw0rd-Unique-9924";
    bodies.push(app.post("/api/v1/auth/password-reset/confirm", None, json!({"token": reset_token, "new_password": "short"})).await.1);
    bodies.push(app.post("/api/v1/auth/password-reset/confirm", None, json!({"token": reset_token, "new_password": new_password})).await.1);
    bodies.push(app.post("/api/v1/auth/password-reset/confirm", None, json!({"token": reset_token, "new_password": new_password})).await.1);
    let (_, relogin) = app.post("/api/v1/auth/login", None, json!({"email": user.email, "password": new_password, "tenant": subdomain})).await;
    bodies.push(app.post("/api/v1/auth/logout", Some(relogin["access_token"].as_str().unwrap()), json!({"refresh_token": relogin["refresh_token"]})).await.1);

    // Every secret of the flows, and what is stored for them.
    let client = app.platform.pool.get().await.unwrap();
    let hashes: Vec<String> = client
        .query(&format!("SELECT password_hash FROM {}.users", tenant.id.schema().as_str()), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let token_hashes: Vec<String> = client
        .query(&format!("SELECT token_hash FROM {}.refresh_tokens", tenant.id.schema().as_str()), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut secrets: Vec<String> = vec![
        PASSWORD.into(),
        wrong.into(),
        new_password.into(),
        "918273645501".into(),
        TEST_JWT_SECRET.into(),
        invitation.clone(),
        reset_token.clone(),
        reset_token.split_once('.').unwrap().1.to_owned(),
        admin_access,
        admin["refresh_token"].as_str().unwrap().into(),
        login["access_token"].as_str().unwrap().into(),
        login["refresh_token"].as_str().unwrap().into(),
        refreshed["access_token"].as_str().unwrap().into(),
        refreshed["refresh_token"].as_str().unwrap().into(),
        relogin["access_token"].as_str().unwrap().into(),
        user.access().into(),
        user.refresh().into(),
    ];
    assert_eq!(hashes.len(), 2);
    secrets.extend(hashes);
    secrets.extend(token_hashes);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() > 20, "the capture works");
    for event in ["login_failed", "refresh_token_reuse", "password_reset_requested", "login_succeeded"] {
        assert!(logs.contains(event), "security event {event} logged ({} lines)", logs.lines().count());
    }
    let errors: String = bodies.iter().map(Value::to_string).collect();
    assert!(errors.contains("INVALID_CREDENTIALS") && errors.contains("INVALID_RESET_TOKEN"), "{errors}");
    for secret in &secrets {
        // JWTs: their signature part alone must not appear either.
        let probe = secret.rsplit('.').next().filter(|s| s.len() >= 20).unwrap_or(secret);
        for line in logs.lines() {
            assert!(!line.contains(probe), "a secret in a log line: {line}");
        }
        assert!(!errors.contains(probe), "a secret in an error body: {errors}");
    }
}
