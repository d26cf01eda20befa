//! The blocklist matcher: decides in well under a microsecond whether a name is blocked, for a
//! million and more listed names, and by which list.
//!
//! A name is kept as one 64-bit hash built label by label from the root (`h(com)`, then
//! `h(example.com) = xxh3(label "example", seed h(com))`, ...). A query computes the hashes of all
//! its suffixes in one pass over its labels, so "a listed domain blocks its subdomains" costs one
//! probe per label. The hashes live in a sorted `Vec<u64>` with a bucket index on the top bits
//! (a probe is one bucket lookup plus a binary search over ~8 keys): 10 bytes per name instead of
//! a heap string each. A 64-bit collision among 1M names has a chance of about 1 in 10^13 per
//! query, far below the rate at which list authors add wrong names.
//!
//! A [`Filter`] is immutable; reloads build a new one and swap it whole (see `super::filter`), so
//! a query sees either the old or the new filter, never a half-built one.

use std::collections::HashSet;
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::lists::{EntryKind, ParsedList};

const ALL_KINDS: [EntryKind; 5] = [
    EntryKind::Block,
    EntryKind::BlockSubdomains,
    EntryKind::Allow,
    EntryKind::ImportantBlock,
    EntryKind::ImportantAllow,
];

/// Seed of the root (the empty name).
pub(crate) const ROOT_SEED: u64 = 0x6d69_7374_626f_726e; // "mistborn"
/// DNS allows at most 127 labels in a name.
pub const MAX_LABELS: usize = 128;

/// The hash of `label` (already lowercase) under the parent whose hash is `parent`.
#[inline]
pub fn label_hash(parent: u64, label: &[u8]) -> u64 {
    xxh3_64_with_seed(label, parent)
}

/// The hash of a whole lowercase name without a trailing dot (`""` is the root).
pub fn name_hash(name: &str) -> u64 {
    let name = name.trim_end_matches('.');
    if name.is_empty() {
        return ROOT_SEED;
    }
    name.rsplit('.')
        .fold(ROOT_SEED, |h, label| label_hash(h, label.as_bytes()))
}

/// Fills `out` with the hashes of every suffix of `name`, from the TLD (index 0) to the whole name
/// (last). `name` must be lowercase; a trailing dot is ignored. Returns how many were written.
#[inline]
pub fn suffix_hashes(name: &[u8], out: &mut [u64; MAX_LABELS]) -> usize {
    let name = match name.last() {
        Some(b'.') => &name[..name.len() - 1],
        _ => name,
    };
    if name.is_empty() {
        return 0;
    }
    let mut n = 0;
    let mut h = ROOT_SEED;
    let mut end = name.len();
    // Walk labels right to left; each step hashes one label into its parent's hash.
    loop {
        let start = match name[..end].iter().rposition(|&b| b == b'.') {
            Some(dot) => dot + 1,
            None => 0,
        };
        h = label_hash(h, &name[start..end]);
        if n == MAX_LABELS {
            break;
        }
        out[n] = h;
        n += 1;
        if start == 0 {
            break;
        }
        end = start - 1;
    }
    n
}

/// A sorted set of name hashes, each with a small value (the index of the list it came from).
#[derive(Debug, Clone, Default)]
pub struct HashIndex {
    keys: Vec<u64>,
    values: Vec<u16>,
    /// `starts[b]..starts[b + 1]` is the range of keys whose top `bits` bits equal `b`.
    starts: Vec<u32>,
    bits: u32,
}

impl HashIndex {
    /// Builds the index; for duplicate keys the lowest value wins (the earliest list).
    pub fn build(mut pairs: Vec<(u64, u16)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup_by_key(|p| p.0);
        let n = pairs.len();
        // About eight keys per bucket keeps the search short and the table at 0.5 byte per key.
        let mut bits = 0;
        while bits < 28 && (1usize << bits) * 8 < n {
            bits += 1;
        }
        let mut starts = vec![0u32; (1usize << bits) + 1];
        let mut keys = Vec::with_capacity(n);
        let mut values = Vec::with_capacity(n);
        for (k, v) in pairs {
            starts[Self::bucket_of(k, bits) + 1] += 1;
            keys.push(k);
            values.push(v);
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        Self {
            keys,
            values,
            starts,
            bits,
        }
    }

    #[inline]
    fn bucket_of(key: u64, bits: u32) -> usize {
        if bits == 0 {
            0
        } else {
            (key >> (64 - bits)) as usize
        }
    }

    /// The value stored for `key`.
    #[inline]
    pub fn get(&self, key: u64) -> Option<u16> {
        if self.keys.is_empty() {
            return None;
        }
        let b = Self::bucket_of(key, self.bits);
        let (lo, hi) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        let slice = &self.keys[lo..hi];
        slice.binary_search(&key).ok().map(|i| self.values[lo + i])
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.values.capacity() * 2 + self.starts.capacity() * 4
    }
}

/// Why a name is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// A subscribed list (index into [`Filter::lists`]) names the domain or a parent of it.
    List(u16),
    /// The user's own exact deny entry.
    UserExact,
    /// The user's own wildcard deny entry (`*.example.com`).
    UserWildcard,
}

/// What the filter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not listed: resolve it.
    Pass,
    /// Listed, but an allow entry (a list's `@@||..^` or the user's) wins.
    Allowed,
    /// Answer with the sinkhole or NXDOMAIN; never forward.
    Blocked(BlockReason),
}

/// Value used in the user's indexes (not a list).
pub(crate) const USER: u16 = u16::MAX;

/// An immutable, complete filter: every enabled list plus the user's own entries.
///
/// Precedence, highest first: the user's allow rules and lists' `@@..$important` exceptions;
/// `$important` blocks; the user's deny rules and the lists' blocks unless a `@@` exception
/// names the domain or a parent of it.
#[derive(Debug, Clone)]
pub struct Filter {
    pub(crate) block: HashIndex,
    /// Lists' `||*.name^`: blocks the subdomains of `name` only.
    pub(crate) block_subdomains: HashIndex,
    pub(crate) allow: HashIndex,
    pub(crate) important_block: HashIndex,
    /// Lists' `@@..$important` and the user's allow rules.
    pub(crate) important_allow: HashIndex,
    pub(crate) deny_exact: HashIndex,
    pub(crate) deny_wildcard: HashIndex,
    /// Names of the lists, by index (for the query log's "blocked by").
    pub(crate) lists: Vec<Arc<str>>,
    custom_exact: Arc<str>,
    custom_wildcard: Arc<str>,
}

impl Filter {
    /// Decides for `name` (lowercase, trailing dot allowed).
    #[inline]
    pub fn check(&self, name: &[u8]) -> Verdict {
        let mut hashes = [0u64; MAX_LABELS];
        let n = suffix_hashes(name, &mut hashes);
        self.check_hashes(&hashes[..n])
    }

    /// Decides for a name given as lowercase labels from the TLD down (a DNS wire name's labels
    /// reversed), without building a string.
    #[inline]
    pub fn check_labels<'a>(&self, labels_from_tld: impl Iterator<Item = &'a [u8]>) -> Verdict {
        let mut hashes = [0u64; MAX_LABELS];
        let mut n = 0;
        let mut h = ROOT_SEED;
        for label in labels_from_tld.take(MAX_LABELS) {
            h = label_hash(h, label);
            hashes[n] = h;
            n += 1;
        }
        self.check_hashes(&hashes[..n])
    }

    #[inline]
    fn check_hashes(&self, hashes: &[u64]) -> Verdict {
        let important = hashes
            .iter()
            .rev()
            .find_map(|&h| self.important_block.get(h))
            .map(BlockReason::List);
        let Some(reason) = important.or_else(|| self.block_reason(hashes)) else {
            return Verdict::Pass;
        };
        if hashes
            .iter()
            .any(|&h| self.important_allow.get(h).is_some())
        {
            return Verdict::Allowed;
        }
        if important.is_none() && hashes.iter().any(|&h| self.allow.get(h).is_some()) {
            return Verdict::Allowed;
        }
        Verdict::Blocked(reason)
    }

    fn block_reason(&self, hashes: &[u64]) -> Option<BlockReason> {
        let (&whole, parents) = hashes.split_last()?;
        if self.deny_exact.get(whole).is_some() {
            return Some(BlockReason::UserExact);
        }
        if parents.iter().any(|&h| self.deny_wildcard.get(h).is_some()) {
            return Some(BlockReason::UserWildcard);
        }
        // The most specific listed suffix decides which list is named.
        hashes
            .iter()
            .rev()
            .find_map(|&h| self.block.get(h))
            .or_else(|| {
                parents
                    .iter()
                    .rev()
                    .find_map(|&h| self.block_subdomains.get(h))
            })
            .map(BlockReason::List)
    }

    /// The display name of a list by index.
    pub fn list_name(&self, index: u16) -> Option<&str> {
        self.lists.get(usize::from(index)).map(|s| &**s)
    }

    /// How a block reason is shown in the query log (shared, so logging a block never allocates).
    pub fn describe(&self, reason: BlockReason) -> Arc<str> {
        match reason {
            BlockReason::List(i) => self
                .lists
                .get(usize::from(i))
                .cloned()
                .unwrap_or_else(|| Arc::from("a list")),
            BlockReason::UserExact => self.custom_exact.clone(),
            BlockReason::UserWildcard => self.custom_wildcard.clone(),
        }
    }

    /// Number of distinct blocked domains from lists.
    pub fn blocked_len(&self) -> usize {
        self.block.len() + self.block_subdomains.len() + self.important_block.len()
    }

    /// Heap bytes held by the indexes.
    pub fn heap_bytes(&self) -> usize {
        self.block.heap_bytes()
            + self.block_subdomains.heap_bytes()
            + self.allow.heap_bytes()
            + self.important_block.heap_bytes()
            + self.important_allow.heap_bytes()
            + self.deny_exact.heap_bytes()
            + self.deny_wildcard.heap_bytes()
    }
}

impl Default for Filter {
    fn default() -> Self {
        FilterBuilder::new().build()
    }
}

/// Collects lists and the user's entries, then builds a [`Filter`].
#[derive(Debug, Default)]
pub struct FilterBuilder {
    block: Vec<(u64, u16)>,
    block_subdomains: Vec<(u64, u16)>,
    allow: Vec<(u64, u16)>,
    important_block: Vec<(u64, u16)>,
    important_allow: Vec<(u64, u16)>,
    /// Rules switched off by a `$badfilter` rule in any list.
    badfilter: Vec<(EntryKind, u64)>,
    deny_exact: Vec<(u64, u16)>,
    deny_wildcard: Vec<(u64, u16)>,
    lists: Vec<Arc<str>>,
}

impl FilterBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parsed list under `name`; earlier lists win when the same name is in two.
    pub fn add_list(&mut self, name: &str, list: &ParsedList) {
        let index = u16::try_from(self.lists.len()).unwrap_or(USER - 1);
        self.lists.push(Arc::from(name));
        for kind in ALL_KINDS {
            let hashes = list.of_kind(kind);
            let into = self.of_kind(kind);
            into.reserve(hashes.len());
            into.extend(hashes.iter().map(|&h| (h, index)));
        }
        self.badfilter.extend_from_slice(&list.badfilter);
    }

    fn of_kind(&mut self, kind: EntryKind) -> &mut Vec<(u64, u16)> {
        match kind {
            EntryKind::Block => &mut self.block,
            EntryKind::BlockSubdomains => &mut self.block_subdomains,
            EntryKind::Allow => &mut self.allow,
            EntryKind::ImportantBlock => &mut self.important_block,
            EntryKind::ImportantAllow => &mut self.important_allow,
        }
    }

    /// The user's exact deny entry (the name only, not its subdomains).
    pub fn deny_exact(&mut self, name: &str) {
        self.deny_exact
            .push((name_hash(&name.to_ascii_lowercase()), USER));
    }

    /// The user's wildcard deny entry: `*.example.com` or `example.com` blocks every subdomain of
    /// example.com (not example.com itself).
    pub fn deny_wildcard(&mut self, name: &str) {
        let base = name.trim_start_matches("*.").to_ascii_lowercase();
        self.deny_wildcard.push((name_hash(&base), USER));
    }

    /// The user's allow entry: the name and its subdomains are never blocked, whatever a list
    /// says (`$important` included).
    pub fn allow(&mut self, name: &str) {
        self.important_allow
            .push((name_hash(&name.to_ascii_lowercase()), USER));
    }

    /// Sorts everything into a [`Filter`].
    pub fn build(mut self) -> Filter {
        if !self.badfilter.is_empty() {
            let off: HashSet<(EntryKind, u64)> = self.badfilter.drain(..).collect();
            for kind in ALL_KINDS {
                self.of_kind(kind)
                    .retain(|&(h, _)| !off.contains(&(kind, h)));
            }
        }
        Filter {
            block: HashIndex::build(self.block),
            block_subdomains: HashIndex::build(self.block_subdomains),
            allow: HashIndex::build(self.allow),
            important_block: HashIndex::build(self.important_block),
            important_allow: HashIndex::build(self.important_allow),
            deny_exact: HashIndex::build(self.deny_exact),
            deny_wildcard: HashIndex::build(self.deny_wildcard),
            lists: self.lists,
            custom_exact: Arc::from("custom deny"),
            custom_wildcard: Arc::from("custom wildcard deny"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::lists::parse_list;

    fn filter() -> Filter {
        let mut b = FilterBuilder::new();
        b.add_list(
            "ads",
            &parse_list(
                "ads.example\n0.0.0.0 tracker.test\n||adblock.example^\n@@||ok.ads.example^\n",
            ),
        );
        b.add_list("second", &parse_list("tracker.test\nother.test\n"));
        b.deny_exact("exact.user.test");
        b.deny_wildcard("*.wild.user.test");
        b.allow("fine.other.test");
        b.build()
    }

    #[test]
    fn suffix_hashes_match_name_hash() {
        let mut out = [0u64; MAX_LABELS];
        let n = suffix_hashes(b"a.b.example.com.", &mut out);
        assert_eq!(n, 4);
        assert_eq!(out[0], name_hash("com"));
        assert_eq!(out[1], name_hash("example.com"));
        assert_eq!(out[3], name_hash("a.b.example.com"));
        assert_eq!(suffix_hashes(b".", &mut out), 0);
        assert_ne!(name_hash("ab.c"), name_hash("a.bc"));
    }

    #[test]
    fn lists_block_names_and_subdomains_allow_wins() {
        let f = filter();
        assert_eq!(
            f.check(b"ads.example."),
            Verdict::Blocked(BlockReason::List(0))
        );
        assert_eq!(
            f.check(b"x.y.ads.example"),
            Verdict::Blocked(BlockReason::List(0))
        );
        assert_eq!(
            f.check(b"sub.adblock.example"),
            Verdict::Blocked(BlockReason::List(0))
        );
        assert_eq!(
            f.check(b"tracker.test"),
            Verdict::Blocked(BlockReason::List(0))
        );
        assert_eq!(
            f.check(b"other.test"),
            Verdict::Blocked(BlockReason::List(1))
        );
        assert_eq!(f.check(b"ok.ads.example"), Verdict::Allowed);
        assert_eq!(f.check(b"deep.ok.ads.example"), Verdict::Allowed);
        assert_eq!(f.check(b"fine.other.test"), Verdict::Allowed);
        assert_eq!(f.check(b"example"), Verdict::Pass);
        assert_eq!(f.check(b"notads.example"), Verdict::Pass);
        assert_eq!(f.check(b"test"), Verdict::Pass);
        assert_eq!(&*f.describe(BlockReason::List(1)), "second");
    }

    #[test]
    fn user_exact_and_wildcard_denies() {
        let f = filter();
        assert_eq!(
            f.check(b"exact.user.test"),
            Verdict::Blocked(BlockReason::UserExact)
        );
        assert_eq!(f.check(b"sub.exact.user.test"), Verdict::Pass);
        assert_eq!(f.check(b"wild.user.test"), Verdict::Pass);
        assert_eq!(
            f.check(b"a.wild.user.test"),
            Verdict::Blocked(BlockReason::UserWildcard)
        );
        assert_eq!(
            f.check(b"b.a.wild.user.test"),
            Verdict::Blocked(BlockReason::UserWildcard)
        );
    }

    #[test]
    fn index_finds_every_key_and_no_other() {
        let pairs: Vec<(u64, u16)> = (0..100_000u64)
            .map(|i| (name_hash(&format!("n{i}.test")), (i % 7) as u16))
            .collect();
        let idx = HashIndex::build(pairs.clone());
        assert_eq!(idx.len(), 100_000);
        for (k, v) in &pairs {
            assert_eq!(idx.get(*k), Some(*v));
        }
        for i in 0..10_000u64 {
            assert_eq!(idx.get(name_hash(&format!("m{i}.test"))), None);
        }
        assert_eq!(HashIndex::default().get(1), None);
    }
}
