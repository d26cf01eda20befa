//! Coppercloud lists against the real store (SQLite, and PostgreSQL when configured): add from an
//! upload and from a URL, refuse garbage with line numbers, keep the last good copy when a refresh
//! fails, backups carry the lists.
#![allow(clippy::unwrap_used)]

mod common;

use mistborn_core::firewall::{ListMode, ListUpdate, NewList};
use mistborn_core::{Actor, Change, ErrorKind, Mistborn};

use common::{engines, regular};

const NOW: i64 = 1_800_000_000;

/// Serves `body` once per connection on 127.0.0.1 (a real HTTP download, no outside network).
async fn serve(bodies: Vec<(u16, String)>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        for (status, body) in bodies {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
        }
    });
    format!("http://{addr}/list.txt")
}

#[tokio::test]
async fn lists_upload_download_refresh_keep_last_good() {
    for env in engines().await {
        let mut config = env.config();
        // The list server runs on loopback, which downloads refuse by default.
        config.download.allow_local = true;
        let m = Mistborn::open(config).await.unwrap();
        let mut changes = m.subscribe();
        let fw = m.firewall();

        // Uploads: garbage refused with its line number, nothing stored.
        let e = fw
            .add_list(
                &Actor::System,
                NewList {
                    name: "bad".into(),
                    content: Some("192.0.2.1\n<html>\n".into()),
                    ..NewList::default()
                },
                NOW,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("line 2: '<html>'"), "{e}");
        assert!(fw.lists(&Actor::System).await.unwrap().is_empty());

        let up = fw
            .add_list(
                &Actor::System,
                NewList {
                    name: "uploaded".into(),
                    mode: ListMode::Allow,
                    content: Some("# mine\n192.0.2.0/24\n2001:db8::/48\n".into()),
                    url: None,
                },
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(
            (up.entries, up.mode, up.enabled),
            (2, ListMode::Allow, true)
        );
        assert_eq!(changes.recv().await.unwrap(), Change::Firewall);

        // Regular users may not see or change lists.
        let bob = regular(&m, "bob").await;
        assert_eq!(
            fw.lists(&bob).await.unwrap_err().kind(),
            ErrorKind::Forbidden
        );

        // From a URL: downloaded now; a later refresh with garbage or a failure keeps it.
        let url = serve(vec![
            (
                200,
                "198.51.100.0/24\n198.51.100.7\n203.0.113.5-203.0.113.9\n".into(),
            ),
            (200, "198.51.100.0/24\nnot an address\n".into()),
            (500, "oops".into()),
            (200, "203.0.113.80\n".into()),
        ])
        .await;
        let dl = fw
            .add_list(
                &Actor::System,
                NewList {
                    name: "feed".into(),
                    url: Some(url),
                    ..NewList::default()
                },
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(dl.entries, 3);
        let e = fw
            .refresh_list(&Actor::System, "feed", NOW + 10)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("line 2: 'not an address'"), "{e}");
        let kept = fw.list(&Actor::System, "feed").await.unwrap();
        assert_eq!((kept.entries, kept.refreshed_at), (3, Some(NOW)));
        assert!(kept.last_error.unwrap().contains("line 2"));
        let e = fw
            .refresh_list(&Actor::System, &dl.id, NOW + 20)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("HTTP 500"), "{e}");
        assert_eq!(fw.list(&Actor::System, "feed").await.unwrap().entries, 3);
        let ok = fw
            .refresh_list(&Actor::System, "feed", NOW + 30)
            .await
            .unwrap();
        assert!(ok.updated);
        assert_eq!((ok.list.entries, ok.list.last_error), (1, None));

        // Uploaded lists have no URL to refresh from.
        let e = fw
            .refresh_list(&Actor::System, "uploaded", NOW)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);

        // Update: bad content changes nothing; good content and switches are stored.
        let e = fw
            .update_list(
                &Actor::System,
                "uploaded",
                ListUpdate {
                    enabled: Some(false),
                    content: Some("x\n".into()),
                    ..ListUpdate::default()
                },
                NOW,
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(fw.list(&Actor::System, "uploaded").await.unwrap().enabled);
        let u = fw
            .update_list(
                &Actor::System,
                "uploaded",
                ListUpdate {
                    enabled: Some(false),
                    mode: Some(ListMode::Block),
                    ..ListUpdate::default()
                },
                NOW,
            )
            .await
            .unwrap();
        assert_eq!((u.enabled, u.mode), (false, ListMode::Block));

        // Names are unique.
        let e = fw
            .add_list(
                &Actor::System,
                NewList {
                    name: "feed".into(),
                    content: Some("192.0.2.1".into()),
                    ..NewList::default()
                },
                NOW,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{}", env.engine);

        // Backups carry the lists.
        let backup = m.backup(&Actor::System).await.unwrap();
        let t = backup
            .tables
            .iter()
            .find(|t| t.table == "coppercloud_lists")
            .unwrap();
        assert_eq!(t.rows.len(), 2);

        fw.delete_list(&Actor::System, "feed").await.unwrap();
        assert_eq!(fw.lists(&Actor::System).await.unwrap().len(), 1);
        m.close().await;
    }
}

#[tokio::test]
async fn every_list_write_bumps_the_firewall_revision() {
    use mistborn_core::store::revision::Domain;
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let fw = m.firewall();
        let rev = || m.announced_revision(Domain::Firewall);
        let start = rev();
        fw.add_list(
            &Actor::System,
            NewList {
                name: "a".into(),
                content: Some("192.0.2.1\n".into()),
                ..NewList::default()
            },
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(rev(), start + 1, "{}", env.engine);
        // Same second, only the mode changes: still a new revision.
        fw.update_list(
            &Actor::System,
            "a",
            ListUpdate {
                mode: Some(ListMode::Allow),
                ..ListUpdate::default()
            },
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(rev(), start + 2, "{}", env.engine);
        fw.delete_list(&Actor::System, "a").await.unwrap();
        assert_eq!(rev(), start + 3, "{}", env.engine);
        m.close().await;
    }
}
