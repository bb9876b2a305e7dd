//! The HTTP layer (issue 9, items 14 and 15): authentication before the body is read, the
//! upload limit on upload routes only, and connection timeouts.

use std::time::Duration;

use handover_e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens a raw connection to the client listener.
async fn connect(server: &TestServer) -> TcpStream {
    let hostport = server.url().strip_prefix("http://").expect("http base");
    TcpStream::connect(hostport).await.expect("connect")
}

/// Reads until the end of a response head (or EOF / `within`); returns what arrived.
async fn read_head(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut tmp))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
        // Head and a little body: enough to see the errcode of a small JSON error.
        if buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.ends_with(b"}") {
            break;
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test]
async fn unauthenticated_upload_refused_before_its_body_is_read() {
    let server = TestServer::start_with(ServerOptions {
        max_upload_bytes: 50 * 1024 * 1024,
        ..ServerOptions::default()
    })
    .await;
    for token in [None, Some("hot_not_a_token")] {
        let mut s = connect(&server).await;
        let mut head = "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n\
                        Content-Type: application/octet-stream\r\n\
                        Content-Length: 41943040\r\n"
            .to_owned();
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        // 1 MiB of the announced 40, then nothing: only a server that never waits for the
        // body answers.
        s.write_all(&vec![0u8; 1024 * 1024]).await.unwrap();
        let resp = read_head(&mut s, Duration::from_secs(5))
            .await
            .expect("an answer without the rest of the body");
        assert!(resp.starts_with("HTTP/1.1 401"), "{token:?}: {resp}");
        let code = if token.is_some() {
            "M_UNKNOWN_TOKEN"
        } else {
            "M_MISSING_TOKEN"
        };
        assert!(resp.contains(code), "{token:?}: {resp}");
    }
}

#[tokio::test]
async fn upload_limit_only_on_upload_routes() {
    let server = TestServer::start_with(ServerOptions {
        max_upload_bytes: 10 * 1024 * 1024,
        ..ServerOptions::default()
    })
    .await;
    let http = server.http();
    let (_, token) = http.register("alice", "a long password").await;
    // 2 MiB: over the JSON limit (1 MiB), under the upload limit.
    let big = vec![b'a'; 2 * 1024 * 1024];
    let up = http
        .request(
            "POST",
            "/_matrix/media/v3/upload",
            Some(&token),
            Some(("text/plain", big.clone())),
        )
        .await;
    assert_eq!(
        up.status,
        413,
        "text/plain has its own 1 MiB cap: {}",
        up.text()
    );
    let up = http
        .request(
            "POST",
            "/_matrix/media/v3/upload",
            Some(&token),
            Some(("application/octet-stream", big.clone())),
        )
        .await
        .ok();
    assert!(up["content_uri"].is_string());
    // A download is no upload: a body on it gets the JSON limit.
    let resp = http
        .request(
            "GET",
            "/_matrix/client/v1/media/download/localhost/nonexistent",
            Some(&token),
            Some(("application/octet-stream", big)),
        )
        .await;
    resp.assert_error(413, &["M_TOO_LARGE"]);
}

/// Files in the media temp directory and their sizes.
fn temp_uploads(server: &TestServer) -> Vec<u64> {
    let dir = server.data_dir().join("media").join("tmp");
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok().map(|m| m.len()))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls (bounded) until `cond` holds on the temp directory's files.
async fn wait_for_temp(server: &TestServer, cond: impl Fn(&[u64]) -> bool) -> Vec<u64> {
    for _ in 0..200 {
        let files = temp_uploads(server);
        if cond(&files) {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    temp_uploads(server)
}

#[tokio::test]
async fn upload_bodies_are_streamed_to_disk_and_never_left_behind() {
    let server = TestServer::start_with(ServerOptions {
        max_upload_bytes: 8 * 1024 * 1024,
        ..ServerOptions::default()
    })
    .await;
    let http = server.http();
    let (_, token) = http.register("alice", "a long password").await;
    let body: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let half = body.len() / 2;

    // Half of the body, then a pause: the half is already on disk, not held in memory.
    let mut s = connect(&server).await;
    let head = format!(
        "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..half]).await.unwrap();
    let files = wait_for_temp(&server, |f| f.iter().any(|&n| n >= half as u64)).await;
    assert!(
        files.iter().any(|&n| n >= half as u64),
        "the first half is not in the temp directory: {files:?}"
    );
    s.write_all(&body[half..]).await.unwrap();
    let resp = read_head(&mut s, Duration::from_secs(30)).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let uri = resp
        .split("\"content_uri\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("content_uri")
        .to_owned();
    let server_and_id = uri.strip_prefix("mxc://").expect("an mxc URI").to_owned();
    assert!(
        temp_uploads(&server).is_empty(),
        "temp file left after a stored upload"
    );
    let got = http
        .request(
            "GET",
            &format!("/_matrix/client/v1/media/download/{server_and_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got.status, 200);
    assert!(got.body == body, "downloaded bytes differ from the upload");

    // A client that gives up half way leaves nothing behind, and nothing is stored.
    let mut s = connect(&server).await;
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..half]).await.unwrap();
    wait_for_temp(&server, |f| f.iter().any(|&n| n >= half as u64)).await;
    drop(s);
    let left = wait_for_temp(&server, |f| f.is_empty()).await;
    assert!(left.is_empty(), "abandoned upload left {left:?}");

    // Over the limit: 413, and the partial file is gone.
    let big = vec![0u8; 9 * 1024 * 1024];
    let resp = http
        .request(
            "POST",
            "/_matrix/media/v3/upload",
            Some(&token),
            Some(("application/octet-stream", big)),
        )
        .await;
    resp.assert_error(413, &["M_TOO_LARGE"]);
    assert!(
        temp_uploads(&server).is_empty(),
        "oversized upload left a temp file"
    );
}

/// A server with short `[http]` timeouts and a small connection cap.
async fn strict_server(max_connections: usize) -> TestServer {
    TestServer::start_with(ServerOptions {
        extra_toml: format!(
            "[http]\nheader_timeout_secs = 2\nbody_timeout_secs = 2\n\
             max_connections = {max_connections}\n"
        ),
        ..ServerOptions::default()
    })
    .await
}

/// Waits until the server closes `stream` (EOF or reset); returns the bytes it sent first.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut tmp)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&tmp[..n]),
        }
    }
}

#[tokio::test]
async fn slow_loris_headers_are_cut_off() {
    let server = strict_server(64).await;
    let mut s = connect(&server).await;
    s.write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header byte a second, never the blank line that ends the head.
    let drip = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if s.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    let started = tokio::time::Instant::now();
    drip.await;
    // Either the drip failed on a closed socket, or the read sees it closed now.
    let closed = closed_within(&mut s, Duration::from_secs(1)).await;
    assert!(
        closed.is_some(),
        "connection still open after 10 s of headers"
    );
    assert!(started.elapsed() < Duration::from_secs(12));
}

#[tokio::test]
async fn idle_keep_alive_is_closed_and_a_stalled_body_abandoned() {
    let server = strict_server(64).await;
    let mut s = connect(&server).await;
    s.write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let first = read_head(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Then nothing: the keep-alive connection is closed after the header timeout.
    let closed = closed_within(&mut s, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "idle keep-alive connection not closed");

    // A body that stops half way is not waited for beyond the body timeout.
    let mut s = connect(&server).await;
    s.write_all(
        b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":",
    )
    .await
    .unwrap();
    let resp = closed_within(&mut s, Duration::from_secs(6)).await;
    let resp = String::from_utf8_lossy(&resp.expect("stalled body still waited for")).into_owned();
    assert!(resp.is_empty() || resp.starts_with("HTTP/1.1 4"), "{resp}");
}

#[tokio::test]
async fn connections_over_the_cap_are_closed() {
    let server = TestServer::start_with(ServerOptions {
        extra_toml: "[http]\nmax_connections = 3\n".into(),
        ..ServerOptions::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect(&server).await;
        s.write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let r = read_head(&mut s, Duration::from_secs(5)).await.unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        held.push(s);
    }
    let mut over = connect(&server).await;
    let _ = over
        .write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = closed_within(&mut over, Duration::from_secs(5)).await;
    assert_eq!(got.as_deref(), Some(&b""[..]), "4th connection served");
    // One closed: room for a new one.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect(&server).await;
    again
        .write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = read_head(&mut again, Duration::from_secs(5)).await.unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}
