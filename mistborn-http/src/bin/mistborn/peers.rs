//! `mistborn peer ...` and `mistborn getconf`: WireGuard profiles, as the host's operator.

use mistborn_core::peers::{NewPeer, Peer, PeerId, PeerUpdate};
use mistborn_core::{ADMIN_USERNAME, Actor, DEFAULT_PROFILE, Error, Mistborn, Result};

use crate::cli::PeerCommand;
use crate::output::table;

const ME: &Actor = &Actor::System;

/// A profile by id, or by name among `user`'s profiles (admin's by default).
pub(crate) async fn find(m: &Mistborn, key: &str, user: Option<&str>) -> Result<Peer> {
    if key.parse::<PeerId>().is_ok() && user.is_none() {
        return m.peers().get(ME, key).await;
    }
    m.peers()
        .find(ME, Some(user.unwrap_or(ADMIN_USERNAME)), key)
        .await
}

pub async fn peer(m: &Mistborn, cmd: PeerCommand) -> Result<()> {
    match cmd {
        PeerCommand::Add {
            name,
            user,
            kind,
            client_to_client,
            port,
            public_key,
        } => {
            let new = NewPeer {
                user: Some(user.unwrap_or_else(|| ADMIN_USERNAME.into())),
                name,
                kind: Some(kind.parse()?),
                client_to_client,
                listen_port: Some(port.parse()?),
                public_key,
            };
            let p = m.peers().create(ME, new).await?;
            println!(
                "created profile '{}' of '{}' ({}): {} {}",
                p.name, p.username, p.id, p.address_v4, p.address_v6
            );
            println!("client config: mistborn getconf {}", p.id);
        }
        PeerCommand::List { user } => {
            let peers = match user {
                Some(u) => m.peers().list_for_user(ME, &u).await?,
                None => m.peers().list(ME).await?,
            };
            let rows: Vec<Vec<String>> = peers
                .into_iter()
                .map(|p| {
                    vec![
                        p.id.to_string(),
                        p.username.to_string(),
                        p.name.to_string(),
                        p.kind.as_str().into(),
                        if p.client_to_client { "yes" } else { "no" }.into(),
                        p.listen_port.as_str().into(),
                        p.address_v4.to_string(),
                        p.address_v6.to_string(),
                        p.public_key.to_base64(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "ID",
                        "USER",
                        "NAME",
                        "KIND",
                        "C2C",
                        "PORT",
                        "IPV4",
                        "IPV6",
                        "PUBLIC KEY"
                    ],
                    &rows
                )
            );
        }
        PeerCommand::Update {
            profile,
            user,
            name,
            kind,
            client_to_client,
            port,
        } => {
            let change = PeerUpdate {
                name,
                kind: kind.map(|k| k.parse()).transpose()?,
                client_to_client,
                listen_port: port.map(|p| p.parse()).transpose()?,
            };
            let PeerUpdate {
                name,
                kind,
                client_to_client,
                listen_port,
            } = &change;
            if name.is_none()
                && kind.is_none()
                && client_to_client.is_none()
                && listen_port.is_none()
            {
                return Err(Error::invalid(
                    "change",
                    "nothing to change: give --name, --kind, --client-to-client or --port",
                ));
            }
            let p = find(m, &profile, user.as_deref()).await?;
            let p = m.peers().update(ME, p.id.as_str(), change).await?;
            println!(
                "updated profile '{}' of '{}' ({}): kind {}, client-to-client {}, port {}",
                p.name,
                p.username,
                p.id,
                p.kind.as_str(),
                if p.client_to_client { "yes" } else { "no" },
                p.listen_port.as_str()
            );
        }
        PeerCommand::Remove { profile, user } => {
            let p = find(m, &profile, user.as_deref()).await?;
            m.peers().delete(ME, p.id.as_str()).await?;
            println!(
                "deleted profile '{}' of '{}' ({})",
                p.name, p.username, p.id
            );
        }
    }
    Ok(())
}

/// Whether `getconf` prints a QR code after the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrChoice {
    /// Only when stdout is a terminal: `getconf > laptop.conf` must give a file wg-quick reads.
    OnTerminal,
    /// Always (`--qr`).
    Always,
    /// Never (`--no-qr`).
    Never,
}

impl QrChoice {
    /// From the `--qr` / `--no-qr` flags (clap refuses both at once).
    pub fn new(qr: bool, no_qr: bool) -> Self {
        match (qr, no_qr) {
            (true, _) => Self::Always,
            (_, true) => Self::Never,
            _ => Self::OnTerminal,
        }
    }

    fn wanted(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::OnTerminal => std::io::stdout().is_terminal(),
        }
    }
}

pub async fn getconf(
    m: &Mistborn,
    profile: Option<String>,
    user: Option<String>,
    qr: QrChoice,
) -> Result<()> {
    let key = profile.unwrap_or_else(|| DEFAULT_PROFILE.into());
    let p = find(m, &key, user.as_deref()).await?;
    let config = m.peers().client_config(ME, p.id.as_str()).await?;
    let text = config.render();
    print!("{text}");
    if qr.wanted() {
        println!();
        print!("{}", mistborn_core::peers::qr_terminal(&text)?);
        println!();
    }
    Ok(())
}
