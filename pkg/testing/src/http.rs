//! The one HTTP test client every service's API tests use: JSON in, status and JSON (or
//! text) out, bearer tokens, and the assertions on the stable error shape.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A service (or `crm serve`) under test, at `url`.
#[derive(Clone)]
pub struct TestClient {
    pub url: String,
    pub http: reqwest::Client,
}

/// What a test looks at: the status, the headers and the body (JSON, a JSON string for a
/// non-JSON body, `Null` when empty).
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    /// Asserts the status, showing the body when it differs; returns the body.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        self.body
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestClient {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), http: reqwest::Client::new() }
    }

    /// A request to `path` (appended to the url) with the usual parts set.
    pub fn builder(&self, method: Method, path: &str, bearer: Option<&str>) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{}", self.url, path));
        match bearer {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends a built request and reads the response.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Response {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Response { status, headers, body }
    }

    pub async fn request(&self, method: Method, path: &str, bearer: Option<&str>, body: Option<Value>) -> Response {
        let mut req = self.builder(method, path, bearer);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Response {
        self.request(Method::GET, path, Some(bearer), None).await
    }

    pub async fn post(&self, path: &str, bearer: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(bearer), Some(body)).await
    }

    pub async fn put(&self, path: &str, bearer: &str, body: Value) -> Response {
        self.request(Method::PUT, path, Some(bearer), Some(body)).await
    }

    pub async fn patch(&self, path: &str, bearer: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(bearer), Some(body)).await
    }

    pub async fn delete(&self, path: &str, bearer: &str) -> Response {
        self.request(Method::DELETE, path, Some(bearer), None).await
    }
}

/// Asserts the stable error shape (`error`, `code`, `request_id`) and returns the code.
#[track_caller]
pub fn error_code(r: &Response) -> &str {
    assert!(r.body["error"].is_string(), "error shape: {}", r.body);
    assert!(r.body["request_id"].is_string(), "error shape: {}", r.body);
    r.body["code"].as_str().expect("code")
}

/// The fields named in a 400 `VALIDATION_FAILED`.
#[track_caller]
pub fn bad_fields(r: &Response) -> Vec<String> {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(error_code(r), "VALIDATION_FAILED", "{}", r.body);
    r.body["details"]["fields"].as_object().expect("fields").keys().cloned().collect()
}
