//! The dashboard's files over HTTP: served without a key (they hold no data), under a
//! Content-Security-Policy that allows this origin alone, with nothing fetched from
//! elsewhere. (What the page does is tested in a real browser: tests/test_dashboard_browser.py.)

mod common;

use common::*;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The local paths `attr="..."` names in `html`.
fn references<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| &html[i + needle.len()..])
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_without_a_key_under_a_strict_policy() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let anonymous = Api::new(&engine).with_key(None);
    let page = anonymous.get("/").await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let html = page.text();
    assert!(html.contains("<form id=\"login-form\""), "{html}");

    let mut assets: Vec<&str> = references(&html, "src");
    assets.extend(references(&html, "href").into_iter().filter(|h| !h.starts_with('#')));
    assets.sort();
    assets.dedup();
    assert_eq!(assets, ["/ui/app.css", "/ui/app.js", "/ui/icon.svg"]);
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let r = anonymous.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.headers["content-type"], content_type, "{path}");
        assert_eq!(r.headers["content-security-policy"], CSP, "{path}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(r.headers["x-frame-options"], "DENY", "{path}");
        let body = r.text();
        // Nothing from another origin: no absolute or protocol-relative URL (the SVG's
        // XML namespace is a name, never fetched).
        let body = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for external in ["http://", "https://", "url(//", "\"//"] {
            assert!(!body.contains(external), "{path} refers to {external}");
        }
    }
    // The page is text-only built: data from the API never goes through an HTML parser.
    let js = anonymous.get("/ui/app.js").await.text();
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "localStorage"] {
        assert!(!js.contains(sink), "app.js uses {sink}");
    }
    assert_error(&anonymous.get("/ui/other.js").await, 404, "unknown_url");
    // The data behind it still needs a key.
    assert_error(&anonymous.get("/v1/batches").await, 401, "invalid_api_key");
    engine.stop().await;
}
