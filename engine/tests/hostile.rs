//! The engine under hostile input: malformed ids in URLs, oversized multipart parts,
//! reused idempotency keys, slow clients. Every answer is the contract's JSON error and
//! nothing the caller sent is echoed back beyond a short prefix.

mod common;

use common::*;
use serde_json::json;

/// Ids that are not UTF-8 once percent-decoded (`%ff%fe`; the overlong `%C0%AE`, a
/// disguised "."), on every route that takes an id: a JSON 400 naming the id parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_ids_get_the_contracts_json_error_on_every_id_route() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    for bad in ["%ff%fe", "%C0%AE%C0%AE", "file-%80"] {
        let routes = [
            (reqwest::Method::GET, format!("/v1/files/{bad}"), "file_id"),
            (reqwest::Method::DELETE, format!("/v1/files/{bad}"), "file_id"),
            (reqwest::Method::GET, format!("/v1/files/{bad}/content"), "file_id"),
            (reqwest::Method::GET, format!("/v1/batches/{bad}"), "batch_id"),
            (reqwest::Method::POST, format!("/v1/batches/{bad}/cancel"), "batch_id"),
        ];
        for (method, path, param) in routes {
            let r = api.request(method.clone(), &path).await;
            assert_error(&r, 400, "invalid_id");
            assert_eq!(r.json["error"]["param"], param, "{method} {path}: {}", r.text());
            assert_eq!(r.headers["content-type"], "application/json", "{method} {path}");
        }
    }
    // Without a key the answer is the JSON 401, not a complaint about the URL.
    let r = api.with_key(None).get("/v1/files/%ff%fe").await;
    assert_error(&r, 401, "invalid_api_key");
    engine.stop().await;
}

/// Rejections of every kind carry the contract's body: unknown routes, wrong methods,
/// bad queries, bodies that are not multipart, JSON bodies over the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_the_contracts_json_error() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let cases: Vec<(reqwest::Method, &str, u16, &str)> = vec![
        (reqwest::Method::GET, "/v1/nothing", 404, "unknown_url"),
        (reqwest::Method::GET, "/%ff", 404, "unknown_url"),
        (reqwest::Method::PUT, "/v1/files", 405, "method_not_allowed"),
        (reqwest::Method::PATCH, "/v1/batches/fr_batch-x", 405, "method_not_allowed"),
        (reqwest::Method::GET, "/v1/batches?limit=abc", 400, "invalid_query"),
        (reqwest::Method::GET, "/v1/files?limit=0", 400, "invalid_limit"),
    ];
    for (method, path, status, code) in cases {
        let r = api.request(method, path).await;
        assert_error(&r, status, code);
    }
    let r = api.post_raw("/v1/files", "multipart/form-data", b"x".to_vec()).await;
    assert_error(&r, 400, "invalid_upload");
    let r = api.post_raw("/v1/files", "text/plain", b"x".to_vec()).await;
    assert_error(&r, 400, "invalid_upload");
    let r = api.post_json("/v1/batches", &json!({"metadata": {"k": "v".repeat(2 << 20)}})).await;
    assert_error(&r, 413, "request_too_large");
    engine.stop().await;
}
