//! The cache's delivery check: a path to Redis that accepts `CLIENT
//! TRACKING` and answers `PING` but never delivers an invalidation (a proxy
//! that drops RESP3 push frames, as some front ends do) must not leave the
//! cache serving sessions that other processes changed. The store notices
//! when a connection opens, and then reads Redis for every load.

use std::time::SystemTime;

use session_core::testing::record_at;
use session_core::{SessionId, SessionStore, Timestamp, Update, WriteOutcome};
use session_redis::testing::{own_server, unique_prefix};
use session_redis::{CacheConfig, RedisStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one line (through `\r\n`) into `out`.
async fn line<R: AsyncRead + Unpin>(from: &mut R, out: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        let byte = from.read_u8().await?;
        out.push(byte);
        if out.ends_with(b"\r\n") {
            return Ok(());
        }
    }
}

/// Reads one whole RESP2/RESP3 frame (with its nested frames) into `out`.
async fn frame<R: AsyncRead + Unpin>(from: &mut R, out: &mut Vec<u8>) -> std::io::Result<()> {
    let start = out.len();
    line(from, out).await?;
    let kind = out[start];
    let text = String::from_utf8_lossy(&out[start + 1..out.len() - 2]).into_owned();
    let count: i64 = text.parse().unwrap_or(0);
    match kind {
        // Blobs: a length, then that many bytes and a line end.
        b'$' | b'=' | b'!' if count >= 0 => {
            let mut blob = vec![0; usize::try_from(count).unwrap() + 2];
            from.read_exact(&mut blob).await?;
            out.extend_from_slice(&blob);
        }
        // Aggregates of `count` frames; maps and attributes of pairs.
        b'*' | b'~' | b'>' => {
            for _ in 0..count.max(0) {
                Box::pin(frame(from, out)).await?;
            }
        }
        b'%' | b'|' => {
            for _ in 0..count.max(0) * 2 {
                Box::pin(frame(from, out)).await?;
            }
        }
        _ => {}
    }
    if kind == b'|' {
        // An attribute comes before the frame it describes.
        Box::pin(frame(from, out)).await?;
    }
    Ok(())
}

/// A proxy to `port` that forwards everything but RESP3 push frames from
/// the server. Returns its address.
async fn push_dropping_proxy(port: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    out.clear();
                    if frame(&mut server_read, &mut out).await.is_err() {
                        return;
                    }
                    if out.first() != Some(&b'>') && client_write.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("redis://{addr}")
}

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_drops_invalidations_is_never_served_from_the_cache() {
    let Some(server) = own_server("cache delivery check") else {
        return;
    };
    let prefix = unique_prefix("delivery");
    let url = push_dropping_proxy(server.port()).await;
    let behind = RedisStore::new(url)
        .unwrap()
        .with_prefix(&prefix)
        .with_connections(1)
        .with_cache(CacheConfig::default())
        .unwrap();
    let direct = RedisStore::new(server.url()).unwrap().with_prefix(&prefix);

    let id = SessionId::generate();
    let record = record_at(now(), None, &[("v", "1")]);
    assert_eq!(
        behind.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    for _ in 0..3 {
        behind.load(&id, now()).await.unwrap().unwrap();
    }
    // Another process changes the session; no invalidation can reach the
    // store behind the proxy, but it must read the change at once.
    let update = Update {
        set: vec![("v".into(), "2".into())],
        last_activity: now(),
        expires_at: record.expires_at,
        ..Update::default()
    };
    assert_eq!(
        direct.update(&id, update).await.unwrap(),
        WriteOutcome::Written
    );
    let seen = behind.load(&id, now()).await.unwrap().unwrap();
    assert_eq!(seen.data.get("v"), Some("2"), "served a stale session");
    let stats = behind.cache_stats().unwrap();
    assert_eq!(
        stats.hits, 0,
        "nothing may be served from the cache: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_path_passes_the_check_and_serves_from_the_cache() {
    let Some(server) = own_server("cache delivery check, direct") else {
        return;
    };
    let store = RedisStore::new(server.url())
        .unwrap()
        .with_prefix(unique_prefix("delivery-direct"))
        .with_connections(1)
        .with_cache(CacheConfig::default())
        .unwrap();
    let id = SessionId::generate();
    let record = record_at(now(), None, &[("v", "1")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    store.load(&id, now()).await.unwrap().unwrap();
    let stats = store.cache_stats().unwrap();
    assert!(stats.hits >= 1, "{stats:?}");
}
