//! The pieces assembled into a small router, exercised through `tower::ServiceExt::oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_tenant::TenantId;
use crm_web::pagination::parse_cursor;
use crm_web::{
    ApiError, AppJson, AppPath, AppQuery, AuthState, AuthUser, Claims, CorsConfig, Created, CursorCodec, GuardChain,
    JwtKeys, Limits, NoGuard, Page, PlatformOperator, Role, Secret, SystemState, TokenGuard, TokenType,
    finish_router, finish_router_with, parse_limit, system_routes,
};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &[u8] = b"test-secret-of-reasonable-length";
const ISSUER: &str = "crm-auth";
const OPERATOR_TOKEN: &str = "operator-token-123";

#[derive(Clone, FromRef)]
struct TestState {
    auth: AuthState,
    cursors: CursorCodec,
}

#[derive(Debug, Serialize, Deserialize)]
struct NewItem {
    name: String,
    qty: i32,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct After {
    id: i32,
}

/// Refuses user 13, to show the guard hook runs after the token checks.
struct Refuse13;

impl TokenGuard for Refuse13 {
    fn check<'a>(&'a self, user: &'a AuthUser) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            if user.user_id == 13 { Err(ApiError::forbidden("user deactivated")) } else { Ok(()) }
        })
    }
}

async fn create(AppJson(item): AppJson<NewItem>) -> Created<NewItem> {
    Created(item)
}

async fn list(
    axum::extract::State(cursors): axum::extract::State<CursorCodec>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<AppJson<Page<i32>>, ApiError> {
    let limit = parse_limit(q.limit.as_deref())?;
    let start = parse_cursor::<After>(&cursors, q.cursor.as_deref())?.map_or(0, |a| a.id);
    let rows: Vec<i32> = (start + 1..=start + i32::try_from(limit).unwrap_or(0) + 1).collect();
    Ok(AppJson(Page::from_overfetch(rows, limit, None, |id| cursors.encode(&After { id: *id }))))
}

async fn me(user: AuthUser) -> AppJson<Value> {
    AppJson(json!({"user_id": user.user_id, "tenant_id": user.tenant_id, "role": user.role}))
}

async fn maybe_me(user: Option<AuthUser>) -> AppJson<Value> {
    AppJson(json!({"user_id": user.map(|u| u.user_id)}))
}

fn keys() -> JwtKeys {
    JwtKeys::new(SECRET, ISSUER)
}

fn api(cors: &str, limits: Limits) -> Router {
    let state = TestState {
        auth: AuthState::new(keys())
            .with_guard(Arc::new(GuardChain(vec![Arc::new(NoGuard), Arc::new(Refuse13)])))
            .with_platform_token(Some(Secret::new(OPERATOR_TOKEN))),
        cursors: CursorCodec::new(b"cursor-key"),
    };
    let router = Router::new()
        .route("/items", post(create).get(list))
        .route("/items/{id}", get(|AppPath(id): AppPath<i32>| async move { AppJson(id) }))
        .route("/plain-json", post(|axum::Json(item): axum::Json<NewItem>| async move { axum::Json(item) }))
        .route("/text", post(|body: String| async move { body.len().to_string() }))
        .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }))
        .route("/boom", get(|| async { Err::<(), _>(ApiError::internal("secret internals")) }))
        .route("/me", get(me))
        .route("/maybe-me", get(maybe_me))
        .route("/operator", get(|_: PlatformOperator| async { "hello operator" }))
        .with_state(state);
    finish_router_with(router, "web-test", CorsConfig::parse(cors).unwrap(), limits)
}

fn app() -> Router {
    api("https://*.crm.example.com", Limits::default())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn send(router: Router, req: Request<Body>) -> Reply {
    let response = router.oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Reply { status, headers, body }
}

fn req(method: Method, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri)
}

fn json_req(uri: &str, body: impl Into<Body>) -> Request<Body> {
    req(Method::POST, uri).header(header::CONTENT_TYPE, "application/json").body(body.into()).unwrap()
}

fn get_req(uri: &str) -> Request<Body> {
    req(Method::GET, uri).body(Body::empty()).unwrap()
}

/// Asserts our error shape with `status` and `code`; the body's request id must be the one
/// echoed in the header.
fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert!(reply.body["error"].is_string(), "{}", reply.body);
    assert!(reply.body.get("details").is_some(), "{}", reply.body);
    let echoed = reply.headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(reply.body["request_id"], echoed, "{}", reply.body);
    assert_eq!(reply.body.as_object().unwrap().len(), 4, "{}", reply.body);
}

// ---- bodies and parameters ----

#[tokio::test]
async fn valid_json_is_created() {
    let reply = send(app(), json_req("/items", r#"{"name":"a","qty":1}"#)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body, json!({"name": "a", "qty": 1}));
}

#[tokio::test]
async fn malformed_json_is_400_with_request_id() {
    let reply = send(app(), json_req("/items", r#"{"name": "a", "qty""#)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(reply.body["request_id"].as_str().unwrap().len(), 26, "a generated ULID");
}

#[tokio::test]
async fn missing_field_and_wrong_type_are_400() {
    // Field-level faults are VALIDATION_FAILED naming the field, like every validation.
    let reply = send(app(), json_req("/items", r#"{"name":"a"}"#)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(reply.body["details"]["fields"]["qty"], "required", "{}", reply.body);
    let reply = send(app(), json_req("/items", r#"{"name":"a","qty":"many"}"#)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert!(reply.body["details"]["fields"]["qty"].is_string(), "{}", reply.body);
    let reply = send(app(), json_req("/items", r#"{"name":"a\u0000","qty":1}"#)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert!(reply.body["details"]["fields"]["name"].is_string(), "{}", reply.body);
    // Malformed JSON stays BAD_REQUEST.
    let reply = send(app(), json_req("/items", r#"{"name":"#)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "BAD_REQUEST");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let r = req(Method::POST, "/items").header(header::CONTENT_TYPE, "text/plain").body(Body::from("{}")).unwrap();
    assert_error(&send(app(), r).await, StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    let r = req(Method::POST, "/items").body(Body::from("{}")).unwrap();
    assert_error(&send(app(), r).await, StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn framework_rejections_are_reshaped() {
    // A handler using axum's own Json still answers in our shape.
    let reply = send(app(), json_req("/plain-json", r#"{"name":"a"}"#)).await;
    assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE");
    assert!(reply.body["error"].as_str().unwrap().contains("qty"), "{}", reply.body);
}

#[tokio::test]
async fn bad_path_parameter_is_400() {
    assert_error(&send(app(), get_req("/items/abc")).await, StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(send(app(), get_req("/items/7")).await.body, json!(7));
}

#[tokio::test]
async fn bad_limits_are_400() {
    for limit in ["-5", "1000", "abc", "0"] {
        let reply = send(app(), get_req(&format!("/items?limit={limit}"))).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        assert!(reply.body["details"]["fields"]["limit"].is_string(), "{}", reply.body);
    }
}

#[tokio::test]
async fn pagination_round_trip_and_garbage_cursor() {
    let first = send(app(), get_req("/items?limit=2")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["data"], json!([1, 2]));
    assert_eq!(first.body["pagination"]["has_next"], true);
    assert!(first.body["pagination"].get("total_count").is_none());
    let cursor = first.body["pagination"]["next_cursor"].as_str().unwrap();
    let second = send(app(), get_req(&format!("/items?limit=2&cursor={cursor}"))).await;
    assert_eq!(second.body["data"], json!([3, 4]));

    let reply = send(app(), get_req("/items?cursor=garbage")).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "INVALID_CURSOR");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let big = format!(r#"{{"name":"{}","qty":1}}"#, "x".repeat(1024 * 1024));
    assert_error(&send(app(), json_req("/items", big.clone())).await, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    // Also for handlers reading the raw body.
    let r = req(Method::POST, "/text").body(Body::from(big)).unwrap();
    assert_error(&send(app(), r).await, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

// ---- routing, ids, timeouts ----

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_405() {
    assert_error(&send(app(), get_req("/nope")).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = req(Method::DELETE, "/items").body(Body::empty()).unwrap();
    assert_error(&send(app(), r).await, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn request_id_is_echoed_generated_or_replaced() {
    let r = req(Method::GET, "/nope").header("x-request-id", "client-id_1.2").body(Body::empty()).unwrap();
    let reply = send(app(), r).await;
    assert_eq!(reply.headers["x-request-id"], "client-id_1.2");
    assert_eq!(reply.body["request_id"], "client-id_1.2");

    let reply = send(app(), get_req("/items/1")).await;
    let generated = reply.headers["x-request-id"].to_str().unwrap();
    assert!(ulid::Ulid::from_string(generated).is_ok());

    let r = req(Method::GET, "/items/1").header("x-request-id", "bad id;<script>").body(Body::empty()).unwrap();
    let reply = send(app(), r).await;
    assert_ne!(reply.headers["x-request-id"], "bad id;<script>");
}

#[tokio::test]
async fn internal_errors_are_generic() {
    let reply = send(app(), get_req("/boom")).await;
    assert_error(&reply, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL");
    assert_eq!(reply.body["error"], "internal error");
}

#[tokio::test]
async fn slow_requests_time_out_in_our_shape() {
    let router = api("", Limits { timeout: Duration::from_millis(50), ..Limits::default() });
    assert_error(&send(router, get_req("/slow")).await, StatusCode::SERVICE_UNAVAILABLE, "TIMEOUT");
}

// ---- authentication ----

fn claims(typ: TokenType, user_id: i32, tenant: TenantId) -> Claims {
    Claims::new(typ, user_id, tenant, "rep@acme.io", Role::SalesRep, ISSUER, Duration::from_secs(900))
}

fn bearer(uri: &str, token: &str) -> axum::http::request::Builder {
    req(Method::GET, uri).header(header::AUTHORIZATION, format!("Bearer {token}"))
}

async fn call_me(token: &str) -> Reply {
    send(app(), bearer("/me", token).body(Body::empty()).unwrap()).await
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn valid_token_is_accepted() {
    let tenant = TenantId::new();
    let token = keys().issue(&claims(TokenType::Access, 7, tenant)).unwrap();
    let reply = call_me(&token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, json!({"user_id": 7, "tenant_id": tenant.to_string(), "role": "sales_rep"}));
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let tenant = TenantId::new();
    let good = claims(TokenType::Access, 7, tenant);
    let claims_json = serde_json::to_value(&good).unwrap();
    let valid = keys().issue(&good).unwrap();
    let valid_sig = valid.rsplit('.').next().unwrap();

    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims_json));
    let rs256 = format!("{}.{}.{valid_sig}", b64(&json!({"alg": "RS256", "typ": "JWT"})), b64(&claims_json));
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &good,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let other_key = JwtKeys::new(b"another-secret", ISSUER).issue(&good).unwrap();
    let mut expired = good.clone();
    expired.iat -= 7200;
    expired.exp -= 3600;
    let expired = keys().issue(&expired).unwrap();
    let mut not_yet = good.clone();
    not_yet.nbf = Some(not_yet.iat + 3600);
    let not_yet = keys().issue(&not_yet).unwrap();
    let wrong_issuer = JwtKeys::new(SECRET, "someone-else").issue(&Claims { iss: "someone-else".into(), ..good.clone() }).unwrap();
    let refresh = keys().issue(&claims(TokenType::Refresh, 7, tenant)).unwrap();
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        let mut escalated = claims_json.clone();
        escalated["role"] = json!("admin");
        parts[1] = b64(&escalated);
        parts.join(".")
    };

    for (name, token) in [
        ("alg none", alg_none.as_str()),
        ("RS256 header", &rs256),
        ("HS512", &hs512),
        ("bad signature", &other_key),
        ("expired", &expired),
        ("not yet valid", &not_yet),
        ("wrong issuer", &wrong_issuer),
        ("refresh as access", &refresh),
        ("tampered claims", &tampered),
        ("garbage", "not.a.token"),
        ("empty parts", ".."),
    ] {
        let reply = call_me(token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {}", reply.body);
        assert_error(&reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_401() {
    assert_error(&send(app(), get_req("/me")).await, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = req(Method::GET, "/me").header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz").body(Body::empty()).unwrap();
    assert_error(&send(app(), r).await, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn tenant_header_must_match_the_token() {
    let tenant = TenantId::new();
    let token = keys().issue(&claims(TokenType::Access, 7, tenant)).unwrap();
    let with_header = |value: String| bearer("/me", &token).header("x-tenant-id", value).body(Body::empty()).unwrap();

    assert_eq!(send(app(), with_header(tenant.to_string())).await.status, StatusCode::OK);
    let reply = send(app(), with_header(TenantId::new().to_string())).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "TENANT_MISMATCH");
}

#[tokio::test]
async fn guards_run_after_verification() {
    let token = keys().issue(&claims(TokenType::Access, 13, TenantId::new())).unwrap();
    assert_error(&call_me(&token).await, StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn optional_auth() {
    let reply = send(app(), get_req("/maybe-me")).await;
    assert_eq!(reply.body, json!({"user_id": null}));
    let token = keys().issue(&claims(TokenType::Access, 7, TenantId::new())).unwrap();
    let reply = send(app(), bearer("/maybe-me", &token).body(Body::empty()).unwrap()).await;
    assert_eq!(reply.body, json!({"user_id": 7}));
    let reply = send(app(), bearer("/maybe-me", "garbage").body(Body::empty()).unwrap()).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn platform_operator_token() {
    let reply = send(app(), bearer("/operator", OPERATOR_TOKEN).body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let user_token = keys().issue(&claims(TokenType::Access, 7, TenantId::new())).unwrap();
    for token in ["operator-token-12", "operator-token-1234", user_token.as_str()] {
        let reply = send(app(), bearer("/operator", token).body(Body::empty()).unwrap()).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    assert_error(&send(app(), get_req("/operator")).await, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

// ---- CORS ----

async fn preflight(router: Router, origin: &str) -> Reply {
    let r = req(Method::OPTIONS, "/items")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type,x-request-id,x-tenant-id")
        .body(Body::empty())
        .unwrap();
    send(router, r).await
}

#[tokio::test]
async fn cors_preflight_allows_tenant_subdomains_only() {
    let ok = preflight(app(), "https://acme.crm.example.com").await;
    assert!(ok.status.is_success(), "{}", ok.status);
    assert_eq!(ok.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://acme.crm.example.com");
    let allowed_headers = ok.headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().to_ascii_lowercase();
    for h in ["authorization", "content-type", "x-request-id", "x-tenant-id"] {
        assert!(allowed_headers.contains(h), "{allowed_headers}");
    }

    let evil = preflight(app(), "https://evil.com").await;
    assert!(evil.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    // Actual requests expose the request id to the browser.
    let r = req(Method::GET, "/items/1").header(header::ORIGIN, "https://acme.crm.example.com").body(Body::empty()).unwrap();
    let reply = send(app(), r).await;
    let exposed = reply.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"));
}

#[tokio::test]
async fn cors_star_allows_any_origin() {
    let reply = preflight(api("*", Limits::default()), "https://evil.com").await;
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

// ---- system routes ----

fn unreachable_db() -> crm_tenant::TenantDb {
    let config = crm_database::DbConfig {
        url: "postgres://nobody@127.0.0.1:1/none".into(),
        connect_timeout: Duration::from_secs(1),
        acquire_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    crm_tenant::TenantDb::new(crm_database::create_pool(&config).unwrap())
}

fn system_app() -> Router {
    let system = SystemState {
        service: "web-test",
        version: "0.0.1",
        db: unreachable_db(),
        nats: None,
        ready_checks: Vec::new(),
        openapi: Arc::new(json!({"openapi": "3.1.0", "info": {"title": "test"}})),
    };
    finish_router(Router::new().merge(system_routes(system)), "web-test", CorsConfig::default())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    send(app(), get_req("/items/42")).await;
    let reply = send(system_app(), get_req("/metrics")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.body.as_str().unwrap();
    assert!(text.contains("http_requests_total{"), "{text}");
    assert!(text.contains(r#"route="/items/{id}""#), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
    assert!(!text.contains(r#"route="/items/42""#), "raw paths must not become labels");
}

#[tokio::test]
async fn health_and_ready_report_a_dead_database() {
    let health = send(system_app(), get_req("/health")).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE, "{}", health.body);
    assert_eq!(health.body["status"], "unhealthy");
    assert_eq!(health.body["service"], "web-test");
    assert_eq!(health.body["database"]["healthy"], false);
    assert!(health.body["database"]["stats"]["max_conns"].is_number());
    assert!(health.body["database"].get("error").is_none(), "no internal error text");
    assert_eq!(health.body["nats"], json!({"configured": false, "connected": false}));

    let ready = send(system_app(), get_req("/ready")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body, json!({"ready": false, "checks": {"database": "unreachable"}}));
}

#[tokio::test]
async fn openapi_document_is_served() {
    let reply = send(system_app(), get_req("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["openapi"], "3.1.0");
}

// ---- logs ----

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A global subscriber (tests of this binary run on several threads; a thread-local one
/// misses events whose callsite interest another thread cached first) in the same JSON format
/// as `init_tracing`, writing to a buffer.
fn captured_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            tracing::callsite::rebuild_interest_cache();
            captured
        })
        .clone()
}

#[tokio::test]
async fn one_log_line_per_request_with_tenant_and_user() {
    let captured = captured_logs();
    let tenant = TenantId::new();
    let token = keys().issue(&claims(TokenType::Access, 7, tenant)).unwrap();
    let r = bearer("/me", &token).header("x-request-id", "log-test-1").body(Body::empty()).unwrap();
    assert_eq!(send(app(), r).await.status, StatusCode::OK);

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &Value| l["message"] == "request completed" && l["span"]["request_id"] == "log-test-1")
        .collect();
    assert_eq!(lines.len(), 1, "{output}");
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].is_number());
    let span = &line["span"];
    assert_eq!(span["request_id"], "log-test-1");
    assert_eq!(span["tenant_id"], tenant.to_string());
    assert_eq!(span["user_id"], 7);
    assert_eq!(span["method"], "GET");
    assert_eq!(span["route"], "/me");
    assert!(!output.contains(&token), "tokens are never logged");
}
