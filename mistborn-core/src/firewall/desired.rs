//! Reads what the policy depends on from the store (pure inputs for [`policy`](super::policy)).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::coppercloud::{ParsedList, parse_list};
use super::policy::{ListRule, PolicyInput, ProfileRule};
use super::store;
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::mistborn::Mistborn;

/// Profiles and the addresses with a live MFA session.
pub(crate) async fn load_profiles(
    m: &Mistborn,
    now: i64,
) -> Result<(Vec<ProfileRule>, BTreeSet<std::net::IpAddr>)> {
    let peers = m.peers().list(&Actor::System).await?;
    let open = m.auth().open_addresses(now).await?;
    Ok((
        peers.iter().map(ProfileRule::from).collect(),
        open.into_iter().collect(),
    ))
}

/// Enabled Coppercloud lists, parsed; `cache` keeps parses of unchanged content.
pub(crate) async fn load_lists(
    m: &Mistborn,
    cache: &mut HashMap<String, (u64, Arc<ParsedList>)>,
) -> Result<Vec<ListRule>> {
    let rows = store::enabled_contents(m.store().pool()).await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut seen = HashMap::new();
    for (id, mode, content) in rows {
        // The id names nft sets: never let a hand-edited row inject into the script.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::Corrupt(format!("Coppercloud list id '{id}'")));
        }
        let hash = xxhash_rust::xxh3::xxh3_64(content.as_bytes());
        let parsed = match cache.get(&id) {
            Some((h, p)) if *h == hash => p.clone(),
            _ => Arc::new(parse_list(&content).map_err(|bad| {
                Error::Corrupt(format!(
                    "stored Coppercloud list {id} has a bad line {}",
                    bad.first().map_or(0, |b| b.line)
                ))
            })?),
        };
        seen.insert(id.clone(), (hash, parsed.clone()));
        out.push(ListRule { id, mode, parsed });
    }
    *cache = seen;
    Ok(out)
}

/// The configuration part of the input, with the state filled in.
pub(crate) fn input(
    m: &Mistborn,
    external_interface: Option<String>,
    profiles: Vec<ProfileRule>,
    open_addresses: BTreeSet<std::net::IpAddr>,
    lists: Vec<ListRule>,
) -> PolicyInput {
    let c = m.config();
    PolicyInput {
        tunnel_interface: c.wireguard.interface.clone(),
        wireguard_port: c.wireguard.listen_port,
        subnet_v4: c.wireguard.subnet_v4,
        subnet_v6: c.wireguard.subnet_v6,
        external_interface,
        admin_source: c.firewall.admin_source,
        ssh_port: c.firewall.ssh_port,
        redirect_interfaces: c.firewall.alternate_port_interfaces.clone(),
        web_ports: c.firewall.web_ports.clone(),
        container_bridges: c.firewall.container_bridges.clone(),
        resolver_uid: c.firewall.resolver_uid,
        profiles,
        open_addresses,
        lists,
    }
}
