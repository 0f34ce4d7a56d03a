//! The client against the real engine, over HTTP on 127.0.0.1: every operation, the typed
//! answers and errors, the idempotent create, and downloads that are cut off mid-way
//! (through a proxy that drops the connection) and resume within one retry budget.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastrouter_batch_client::{
    Batch, Client, ClientConfig, ClientError, CreateBatch, ListParams, RequestCounts, RetryEvent, Upload,
    HOSTED_BASE_URL,
};
use fastrouter_batch_core::{RetryPolicy, Secret};
use fastrouter_batch_engine::{Engine, EngineConfig, ProviderMode, SimulatedConfig};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "sk-client-test";

async fn engine(dir: &Path) -> Engine {
    let cfg = EngineConfig {
        data_dir: Some(dir.to_path_buf()),
        api_keys: vec![Secret::new(KEY)],
        provider: ProviderMode::Simulated(SimulatedConfig {
            latency: Duration::ZERO,
            fault_rate: 0.0,
            embedding_dims: 8,
        }),
        ..Default::default()
    };
    Engine::start(cfg).await.expect("the engine starts")
}

/// The retries a client told of: what was retried, and the wait.
type Retries = Arc<Mutex<Vec<(String, Duration)>>>;

/// Retries that cost a few milliseconds, each one recorded.
fn config(base_url: &str, max_retries: u32, retries: &Retries) -> ClientConfig {
    let mut cfg = ClientConfig::new(Some(base_url), Secret::new(KEY));
    cfg.timeout = Duration::from_secs(10);
    cfg.retry = RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(4),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(20),
    };
    let seen = retries.clone();
    cfg.on_retry = Some(Arc::new(move |e: &RetryEvent<'_>| {
        seen.lock().unwrap().push((format!("{} {} {}/{}", e.method, e.path, e.retry, e.max_retries), e.wait));
    }));
    cfg
}

fn connect(base_url: &str, max_retries: u32) -> (Client, Retries) {
    let retries = Arc::new(Mutex::new(Vec::new()));
    (Client::new(config(base_url, max_retries, &retries)).expect("a client"), retries)
}

fn request_line(id: &str) -> String {
    json!({"custom_id": id, "provider": "openai", "method": "POST", "url": "/v1/chat/completions",
           "body": {"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": format!("question {id}")}]}})
    .to_string()
}

fn requests(n: usize) -> Vec<u8> {
    (0..n).map(|i| request_line(&format!("req-{i:04}")) + "\n").collect::<String>().into_bytes()
}

async fn finished(client: &Client, id: &str) -> Batch {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let b = client.batches().retrieve(id).await.expect("retrieve");
        if b.is_terminal() {
            return b;
        }
        assert!(Instant::now() < deadline, "batch {id} not finished: {}", b.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_list_read_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (client, _) = connect(&engine.url(), 0);
    let files = client.files();

    let data = requests(3);
    let from_bytes = files.create(&Upload::Bytes(data.clone().into()), "a.jsonl", "batch").await.unwrap();
    assert_eq!((from_bytes.filename(), from_bytes.purpose()), (Some("a.jsonl"), Some("batch")));
    assert_eq!((from_bytes.bytes(), from_bytes.num_rows()), (Some(data.len() as u64), Some(3)));
    let path = dir.path().join("in put.jsonl");
    std::fs::write(&path, &data).unwrap();
    let from_path = files.create(&Upload::Path(path.clone()), "in put.jsonl", "batch").await.unwrap();
    assert_eq!(files.retrieve(from_path.id()).await.unwrap(), from_path);

    let first = files.list(Some("batch"), &ListParams { limit: Some(1), after: None }).await.unwrap();
    assert_eq!(first.data.len(), 1);
    assert!(first.has_more);
    let after = first.last_id.clone();
    let rest = files.list(None, &ListParams { limit: Some(10), after }).await.unwrap();
    let mut ids: Vec<&str> = first.data.iter().chain(&rest.data).map(|f| f.id()).collect();
    ids.sort_unstable();
    let mut want = vec![from_bytes.id(), from_path.id()];
    want.sort_unstable();
    assert_eq!(ids, want);
    assert!(!rest.has_more);
    let none = files.list(Some("fine-tune"), &ListParams::default()).await.unwrap();
    assert!(none.data.is_empty());

    assert_eq!(files.content(from_path.id()).await.unwrap(), data);
    let dest = dir.path().join("out").join("copy.jsonl");
    std::fs::create_dir(dest.parent().unwrap()).unwrap();
    assert_eq!(files.download(from_path.id(), &dest).await.unwrap(), data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(std::fs::read_dir(dest.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
    let lines: Vec<String> = files.lines(from_path.id()).unwrap().map(Result::unwrap).collect().await;
    assert_eq!(lines, (0..3).map(|i| request_line(&format!("req-{i:04}"))).collect::<Vec<_>>());

    let deleted = files.delete(from_bytes.id()).await.unwrap();
    assert!(deleted.deleted());
    assert_eq!(deleted.id(), from_bytes.id());
    match files.retrieve(from_bytes.id()).await {
        Err(ClientError::Status(s)) => {
            assert_eq!(s.status, 404);
            assert!(s.request_id.is_some(), "the engine names its answers");
        }
        other => panic!("{other:?}"),
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_create_wait_list_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (client, _) = connect(&engine.url(), 0);
    let file = client.files().create(&Upload::Bytes(requests(4).into()), "in.jsonl", "batch").await.unwrap();

    let mut request = CreateBatch::new(file.id());
    request.metadata = Some(json!({"project": "client-tests"}).as_object().unwrap().clone());
    request.idempotency_key = Some("client-test-key-1".into());
    let batch = client.batches().create(&request).await.unwrap();
    assert_eq!(batch.input_file_id(), Some(file.id()));
    assert_eq!(batch.endpoint(), Some("/v1/chat/completions"));
    assert_eq!(batch.metadata().and_then(|m| m.get("project")), Some(&json!("client-tests")));
    // The same key gives the same batch: a create retried after a lost answer makes no second one.
    assert_eq!(client.batches().create(&request).await.unwrap().id(), batch.id());

    let done = finished(&client, batch.id()).await;
    assert_eq!(done.status(), "completed");
    let counts = done.request_counts().unwrap();
    assert_eq!((counts.total, counts.completed, counts.failed), (4, 4, 0));
    // The engine's breakdown: the four lines are all openai's.
    let breakdown = client.batches().providers(batch.id()).await.unwrap();
    assert_eq!(breakdown.batch_id(), Some(batch.id()));
    assert_eq!(breakdown.request_counts(), [("openai", RequestCounts { total: 4, completed: 4, failed: 0 })]);
    match client.batches().providers("batch_unknown").await {
        Err(ClientError::Status(s)) => assert_eq!(s.status, 404, "{s:?}"),
        other => panic!("{other:?}"),
    }
    let output = client.files().content(done.output_file_id().unwrap()).await.unwrap();
    let results: Vec<Value> =
        output.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|r| r["response"]["status_code"] == 200));

    // Without a key of its own, each create is a new batch.
    let other = client.batches().create(&CreateBatch::new(file.id())).await.unwrap();
    assert_ne!(other.id(), batch.id());
    let page = client.batches().list(&ListParams { limit: Some(1), after: None }).await.unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(page.has_more);
    let all = client.batches().list(&ListParams::default()).await.unwrap();
    let ids: Vec<&str> = all.data.iter().map(Batch::id).collect();
    assert!(ids.contains(&batch.id()) && ids.contains(&other.id()), "{ids:?}");

    // A finished batch cannot be cancelled: the engine says so with a 409.
    match client.batches().cancel(batch.id()).await {
        Err(ClientError::Status(s)) => assert_eq!(s.status, 409, "{s:?}"),
        other => panic!("{other:?}"),
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_and_answers_that_are_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (client, retries) = connect(&engine.url(), 2);
    for (got, name) in [
        (client.files().retrieve("").await.err(), "file_id must not be empty"),
        (client.batches().cancel("..").await.err(), "batch_id must not be '..'"),
        (client.batches().create(&CreateBatch::new("")).await.err(), "input_file_id must not be empty"),
    ] {
        assert!(matches!(&got, Some(ClientError::Config { message }) if message == name), "{got:?}");
    }
    assert!(matches!(client.files().lines("").err(), Some(ClientError::Config { .. })));
    // An id stays one path segment: it never reaches another endpoint.
    for id in ["../batches", "x?y=1", "a/b"] {
        match client.batches().retrieve(id).await {
            Err(ClientError::Status(s)) => assert_eq!(s.status, 404, "{id}"),
            other => panic!("{id}: {other:?}"),
        }
    }
    // A wrong key is a 401, not retried.
    let mut cfg = client.config().clone();
    cfg.api_key = Secret::new("sk-wrong");
    match client.with_config(cfg).files().list(None, &ListParams::default()).await {
        Err(ClientError::Status(s)) => assert_eq!((s.status, s.code.as_deref()), (401, Some("invalid_api_key"))),
        other => panic!("{other:?}"),
    }
    assert!(retries.lock().unwrap().is_empty());
    assert!(matches!(
        Client::new(ClientConfig::new(Some("ftp://127.0.0.1:1"), Secret::new(KEY))),
        Err(ClientError::Config { .. })
    ));
    assert!(Client::new(ClientConfig::new(None, Secret::new(KEY))).unwrap().config().base_url == HOSTED_BASE_URL);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_is_retried_max_retries_times_with_backoff() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (client, retries) = connect(&closed, 2);
    let err = client.batches().retrieve("batch_x").await.unwrap_err();
    assert!(matches!(err, ClientError::Connection { .. }), "{err:?}");
    let seen = retries.lock().unwrap().clone();
    let names: Vec<&str> = seen.iter().map(|(what, _)| what.as_str()).collect();
    assert_eq!(names, ["GET /v1/batches/batch_x 1/2", "GET /v1/batches/batch_x 2/2"]);
    assert!(seen.iter().all(|(_, wait)| !wait.is_zero()), "{seen:?}");
}

/// A proxy to `upstream` that cuts the first `cuts` connections after `after` bytes of the
/// answer; the ones after pass whole. Counts the connections.
async fn cutting_proxy(upstream: String, cuts: usize, after: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.trim_start_matches("http://").to_owned();
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(upstream).await.unwrap();
                let (mut in_read, mut in_write) = inbound.split();
                let (mut out_read, mut out_write) = outbound.split();
                let requests = tokio::io::copy(&mut in_read, &mut out_write);
                let answers = async {
                    if n >= cuts {
                        let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                        return;
                    }
                    let mut left = after;
                    let mut buf = vec![0; 8192];
                    while left > 0 {
                        let Ok(got) = out_read.read(&mut buf[..left.min(8192)]).await else { return };
                        if got == 0 || in_write.write_all(&buf[..got]).await.is_err() {
                            return;
                        }
                        left -= got;
                    }
                };
                tokio::select! {
                    _ = requests => {}
                    _ = answers => {}
                }
            });
        }
    });
    (url, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_cut_off_resume_within_one_retry_budget() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (direct, _) = connect(&engine.url(), 0);
    let data = requests(2000);
    let file = direct.files().create(&Upload::Bytes(data.clone().into()), "big.jsonl", "batch").await.unwrap();
    let want: Vec<String> = String::from_utf8(data.clone()).unwrap().lines().map(str::to_owned).collect();

    // Two cuts, two retries: every line once, in order.
    let (url, connections) = cutting_proxy(engine.url(), 2, 100_000).await;
    let (client, retries) = connect(&url, 2);
    let lines: Vec<String> = client.files().lines(file.id()).unwrap().map(Result::unwrap).collect().await;
    assert_eq!(lines.len(), want.len());
    assert!(lines == want, "a line was lost, repeated or torn");
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    assert_eq!(retries.lock().unwrap().len(), 2, "waited before each reopening");

    // Two cuts, one retry: the lines before the second cut, whole, then the error.
    let (url, _) = cutting_proxy(engine.url(), 2, 100_000).await;
    let (client, _) = connect(&url, 1);
    let mut got = vec![];
    let mut stream = Box::pin(client.files().lines(file.id()).unwrap());
    let err = loop {
        match stream.next().await {
            Some(Ok(line)) => got.push(line),
            Some(Err(e)) => break e,
            None => panic!("the second cut must end the lines with an error"),
        }
    };
    assert!(matches!(err, ClientError::Connection { .. }), "{err:?}");
    assert!(!got.is_empty() && got.len() < want.len() && got[..] == want[..got.len()]);
    assert!(stream.next().await.is_none());

    // The whole content and a download to disk resume the same way.
    let (url, _) = cutting_proxy(engine.url(), 1, 50_000).await;
    let (client, _) = connect(&url, 1);
    assert_eq!(client.files().content(file.id()).await.unwrap(), data);
    let (url, _) = cutting_proxy(engine.url(), 1, 50_000).await;
    let (client, _) = connect(&url, 1);
    let dest = dir.path().join("down.jsonl");
    client.files().download(file.id(), &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_that_retrying_cannot_mend_ends_the_lines_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (client, retries) = connect(&engine.url(), 3);
    let mut lines = Box::pin(client.files().lines("file-missing").unwrap());
    match lines.next().await {
        Some(Err(ClientError::Status(s))) => assert_eq!(s.status, 404),
        other => panic!("{other:?}"),
    }
    assert!(lines.next().await.is_none());
    assert!(retries.lock().unwrap().is_empty(), "a 404 is not retried");
    engine.stop().await;
}

/// A loopback server answering every request with `body` (then, if `endless`, `x` bytes
/// until 1 GiB or the client goes): its URL and the bytes of `x` it sent.
async fn serve_content(body: &'static [u8], endless: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = tcp.read(&mut head).await;
                let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/jsonl\r\nConnection: close\r\n\r\n";
                let _ = tcp.write_all(answer).await;
                let _ = tcp.write_all(body).await;
                let chunk = vec![b'x'; 64 * 1024];
                // Endless for the client; bounded here so a broken client cannot hang the test.
                while endless && counted.load(Ordering::SeqCst) < 1 << 30 && tcp.write_all(&chunk).await.is_ok() {
                    counted.fetch_add(chunk.len(), Ordering::SeqCst);
                }
            });
        }
    });
    (url, sent)
}

/// A file whose content is one endless line (a loopback server that never stops sending):
/// the lines stop past their limit with `line_too_large` naming the line, without holding
/// more than the limit or reading to an end that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_line_ends_the_lines_with_line_too_large() {
    let (url, sent) = serve_content(b"first\n", true).await;
    let (client, _) = connect(&url, 0);
    let mut lines = Box::pin(client.files().lines_within("file-endless", 1 << 20).unwrap());
    assert_eq!(lines.next().await.unwrap().unwrap(), "first");
    let err = tokio::time::timeout(Duration::from_secs(20), lines.next()).await.expect("stopped in time");
    match err {
        Some(Err(ClientError::Decode { message })) => {
            assert!(message.contains("file file-endless, line 2:") && message.contains("[line_too_large]"), "{message}")
        }
        other => panic!("expected line_too_large, got {other:?}"),
    }
    assert!(lines.next().await.is_none());
    drop(lines);
    assert!(sent.load(Ordering::SeqCst) < 1 << 30, "the client read on to the server's own bound");
}

/// The limit is exact: a line of `max` bytes (`\r\n` or not) passes, one of `max + 1` does
/// not, whether its newline comes with it or it is the last line without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_line_limit_is_exact() {
    let lines = |body: &'static [u8]| async move {
        let (url, _) = serve_content(body, false).await;
        let (client, _) = connect(&url, 0);
        let stream = client.files().lines_within("file-x", 4).unwrap();
        stream.collect::<Vec<_>>().await
    };
    let ok = lines(b"abcd\nwxyz\r\nabcd").await;
    assert_eq!(ok.into_iter().map(Result::unwrap).collect::<Vec<_>>(), ["abcd", "wxyz", "abcd"]);
    for body in [&b"abcd\nabcde\nabcd\n"[..], b"abcd\nabcde\r\n", b"abcd\nabcde"] {
        let got = lines(body).await;
        assert_eq!(got.len(), 2, "{:?}: {got:?}", String::from_utf8_lossy(body));
        assert_eq!(got[0].as_ref().unwrap(), "abcd");
        assert!(matches!(&got[1], Err(ClientError::Decode { message }) if message.contains("line 2:")), "{got:?}");
    }
}
