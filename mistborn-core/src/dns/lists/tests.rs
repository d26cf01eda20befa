//! The list formats as their documentation describes them: hosts(5), AdGuard's DNS filtering
//! syntax and the Adblock Plus filter docs, one test per point, plus a property test: no line
//! of any list blocks a name the line does not name (or a subdomain of one).

use proptest::prelude::*;

use super::*;
use crate::dns::matcher::{BlockReason, Filter, FilterBuilder, Verdict, name_hash};

fn filter(lists: &[&str]) -> Filter {
    let mut b = FilterBuilder::new();
    for (i, text) in lists.iter().enumerate() {
        b.add_list(&format!("list{i}"), &parse_list(text));
    }
    b.build()
}

fn blocked(f: &Filter, name: &str) -> bool {
    matches!(f.check(name.as_bytes()), Verdict::Blocked(_))
}

fn reasons(p: &ParsedList) -> Vec<(usize, &'static str)> {
    p.invalid.iter().map(|l| (l.line, l.reason)).collect()
}

#[test]
fn all_three_formats_and_comments() {
    let text = "# hosts\n0.0.0.0 a.test b.test # two names\n127.0.0.1 localhost\n:: v6.test\n\
                ! adblock\n[Adblock Plus 2.0]\n||c.test^\n||d.test^$important\n@@||ok.c.test^\n\
                plain.test\nUPPER.Test.\n\n";
    let p = parse_list(text);
    assert_eq!(p.invalid_count, 0, "{:?}", p.invalid);
    let want: Vec<u64> = [
        "a.test",
        "b.test",
        "v6.test",
        "c.test",
        "plain.test",
        "upper.test",
    ]
    .iter()
    .map(|n| name_hash(n))
    .collect();
    assert_eq!(p.block, want);
    assert_eq!(p.important_block, vec![name_hash("d.test")]);
    assert_eq!(p.allow, vec![name_hash("ok.c.test")]);
    assert_eq!(p.entries(), 8);
    assert_eq!(p.lines, 12);
    assert!(p.garbage_reason().is_none());
}

#[test]
fn invalid_lines_are_counted_with_numbers() {
    let text = "good.test\nbad name here\n||x.test^$nonsense\n-lead.test\nfoo..bar\nwe!rd.test\n1.2.3.4\ntrail-.test\n0.0.0.0\n";
    let p = parse_list(text);
    assert_eq!(p.block, vec![name_hash("good.test")]);
    assert_eq!(
        reasons(&p),
        vec![
            (2, "more than one word and not a hosts line (address first)"),
            (3, "unknown adblock modifier"),
            (4, "a label starts or ends with '-'"),
            (5, "empty label (two dots in a row)"),
            (6, "character not allowed in a domain name"),
            (7, "an address without a name"),
            (8, "a label starts or ends with '-'"),
            (9, "an address without a name"),
        ]
    );
    let reason = p.garbage_reason().expect("mostly invalid");
    assert!(reason.contains("8 of 9 lines"), "{reason}");
}

#[test]
fn html_is_garbage() {
    let p = parse_list("<!DOCTYPE html>\n<html><body>Not found</body></html>\n");
    let reason = p.garbage_reason().expect("garbage");
    assert!(reason.starts_with("no valid entry in 2 lines"), "{reason}");
    assert!(parse_list("").garbage_reason().is_some());
}

/// hosts(5): "IP_address canonical_hostname [aliases...]", `#` to the end of the line is a
/// comment, fields separated by blanks or tabs. The header of the usual hosts files (Debian's,
/// macOS's, StevenBlack's) is accepted silently: no error, no entry, `localhost` never blocked.
#[test]
fn hosts_file_headers_pass_silently_and_localhost_is_never_blocked() {
    let text = "\
# This hosts file is a merged collection of hosts from reputable sources
127.0.0.1 localhost
127.0.0.1 localhost.localdomain
127.0.0.1 local
255.255.255.255 broadcasthost
::1 localhost ip6-localhost ip6-loopback
fe80::1%lo0 localhost
ff00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
ff02::3 ip6-allhosts
0.0.0.0 0.0.0.0
127.0.0.1\tLOCALHOST.
0.0.0.0\tads.example.com\ttracker.example.net   # trailing comment
127.0.0.1 localhost.
0.0.0.0 LocalHost
";
    let p = parse_list(text);
    assert_eq!(p.invalid_count, 0, "{:?}", p.invalid);
    assert_eq!(p.not_for_dns, 0);
    assert_eq!(
        p.block,
        vec![
            name_hash("ads.example.com"),
            name_hash("tracker.example.net")
        ]
    );
    let f = filter(&[text, "LOCALHOST\nlocalhost.\n||localhost^\nsub.localhost\n"]);
    for name in ["localhost", "localhost.", "sub.localhost", "broadcasthost"] {
        assert_eq!(f.check(name.as_bytes()), Verdict::Pass, "{name}");
    }
    assert!(blocked(&f, "x.ads.example.com"));
}

#[test]
fn special_use_names_are_never_blocked() {
    let p = parse_list("||x.onion^\n0.0.0.0 printer.local\nbad.invalid\n*.localhost\n");
    assert_eq!((p.entries(), p.invalid_count), (0, 0), "{:?}", p.invalid);
}

#[test]
fn a_hosts_line_mapping_a_real_address_is_not_a_block() {
    let p = parse_list("192.168.1.10 nas.home.example\n0.0.0.0 ads.example\n");
    assert_eq!(p.block, vec![name_hash("ads.example")]);
    assert_eq!(p.invalid_count, 1);
    assert!(p.invalid[0].reason.contains("real address"));
}

#[test]
fn a_byte_order_mark_does_not_cost_the_first_line() {
    for text in [
        "\u{feff}first.example.com\nsecond.example.com\n",
        "\u{feff}0.0.0.0 first.example.com\n",
        "\u{feff}||first.example.com^\n",
    ] {
        let p = parse_list(text);
        assert_eq!(p.invalid_count, 0, "{text:?}: {:?}", p.invalid);
        assert!(
            p.block.contains(&name_hash("first.example.com")),
            "{text:?}"
        );
    }
}

/// Adblock Plus "element hiding" (`##`, exception `#@#`), extended CSS (`#?#`), CSS injection
/// (`#$#`), AdGuard scriptlets and JavaScript (`#%#`, `#@%#`), uBlock's `##+js(..)`, and HTML
/// filtering (`$$`, `$@$`): page rules, not DNS rules. They never block their site.
#[test]
fn cosmetic_and_scriptlet_rules_are_not_for_dns() {
    let text = "\
example.com##.banner
example.com,example.org#@#.ad
example.com#?#div:has(> a.ad)
example.com#$#body { overflow: auto !important; }
example.com#%#//scriptlet('abort-on-property-read', 'alert')
example.com#@%#//scriptlet('set-constant', 'x', '1')
example.com##+js(nobab)
example.com#@$#.ad { display: none; }
example.com$$script[data-src=\"banner\"]
example.com$@$script[tag-content=\"x\"]
##.generic-banner
||ads.example.net^
";
    let p = parse_list(text);
    assert_eq!(p.not_for_dns, 10, "{:?}", p.invalid);
    assert_eq!(p.invalid_count, 0, "{:?}", p.invalid);
    assert_eq!(p.block, vec![name_hash("ads.example.net")]);
    let f = filter(&[text]);
    assert_eq!(f.check(b"example.com"), Verdict::Pass);
    assert_eq!(f.check(b"www.example.org"), Verdict::Pass);
}

/// Rules for browsers (a path, a URL, a request-type or page modifier) are skipped the same way.
#[test]
fn path_and_browser_only_rules_are_not_for_dns() {
    let text = "\
||example.com/ads/banner.js
||example.com^$third-party
||example.com^$script,domain=example.org
|https://example.com/track^
/banner/ad.js
https://example.com/ad
@@||example.com/allowed^$document
";
    let p = parse_list(text);
    assert_eq!((p.not_for_dns, p.entries()), (7, 0), "{:?}", p.invalid);
    assert_eq!(p.invalid_count, 0, "{:?}", p.invalid);
}

/// A public suffix in a list would block every name under it: a line error, not an entry.
#[test]
fn public_suffixes_are_refused_in_lists() {
    let text = "com\n||co.uk^\n0.0.0.0 net\n*.com\n||*.org^\nlocaldomain-typo\n||github.io^\nexample.co.uk\n";
    let p = parse_list(text);
    let lines: Vec<usize> = p.invalid.iter().map(|l| l.line).collect();
    assert_eq!(lines, vec![1, 2, 3, 4, 5, 6], "{:?}", p.invalid);
    assert!(
        p.invalid
            .iter()
            .all(|l| l.reason.starts_with("a public suffix"))
    );
    // github.io is in the private part of the list: a company's domain, and a list may block it.
    assert_eq!(
        p.block,
        vec![name_hash("github.io"), name_hash("example.co.uk")]
    );
    let f = filter(&[text]);
    assert_eq!(f.check(b"example.com"), Verdict::Pass);
    assert_eq!(f.check(b"bbc.co.uk"), Verdict::Pass);
    assert!(blocked(&f, "www.example.co.uk"));
}

#[test]
fn names_are_classified_for_rules() {
    let c = check_name("Com.").expect("valid");
    assert_eq!((c.name.as_str(), c.class), ("com", NameClass::PublicSuffix));
    let c = check_name("LOCALHOST").expect("valid");
    assert_eq!(c.class, NameClass::Special);
    let c = check_name("Bücher.Example").expect("valid");
    assert_eq!(
        (c.name.as_str(), c.class),
        ("xn--bcher-kva.example", NameClass::Ordinary)
    );
    assert!(check_name("-bad.example").is_err());
}

/// AdGuard: `||*.example.org^` blocks the subdomains of example.org, not example.org itself.
#[test]
fn star_dot_blocks_subdomains_only() {
    let f = filter(&["||*.sub-only.example^\n*.plain-sub.example\n"]);
    assert_eq!(f.check(b"sub-only.example"), Verdict::Pass);
    assert!(blocked(&f, "a.sub-only.example"));
    assert!(blocked(&f, "b.a.sub-only.example"));
    assert_eq!(f.check(b"plain-sub.example"), Verdict::Pass);
    assert!(blocked(&f, "www.plain-sub.example"));
    // A whole-name rule elsewhere still blocks the name itself.
    let f = filter(&["||*.both.example^\n", "both.example\n"]);
    assert!(blocked(&f, "both.example"));
}

/// AdGuard: `$important` beats `@@` exceptions; `@@..$important` beats both; the user's own
/// allow rule beats everything.
#[test]
fn important_beats_exceptions() {
    let f = filter(&[
        "||tracker.example^$important\n||ads.example^\n",
        "@@||tracker.example^\n@@||ads.example^\n",
    ]);
    assert_eq!(
        f.check(b"tracker.example"),
        Verdict::Blocked(BlockReason::List(0))
    );
    assert!(blocked(&f, "x.tracker.example"));
    assert_eq!(f.check(b"ads.example"), Verdict::Allowed);
    let f = filter(&["||tracker.example^$important\n@@||tracker.example^$important\n"]);
    assert_eq!(f.check(b"tracker.example"), Verdict::Allowed);
    let mut b = FilterBuilder::new();
    b.add_list("l", &parse_list("||tracker.example^$important\n"));
    b.allow("tracker.example");
    assert_eq!(b.build().check(b"tracker.example"), Verdict::Allowed);
}

/// AdGuard: `$badfilter` switches off the rule with the same text (without `$badfilter`), in
/// every list; it does not touch rules that differ (here `$important`).
#[test]
fn badfilter_switches_off_the_same_rule_everywhere() {
    let f = filter(&[
        "||ads.example^\n||imp.example^$important\n||sub.example^\n",
        "||ads.example^$badfilter\n||imp.example^$badfilter\n||*.sub.example^$badfilter\n",
    ]);
    assert_eq!(f.check(b"ads.example"), Verdict::Pass);
    assert!(blocked(&f, "imp.example"), "$important differs");
    assert!(blocked(&f, "x.sub.example"), "||*. differs from ||");
    let f = filter(&["||imp.example^$important\n||imp.example^$important,badfilter\n"]);
    assert_eq!(f.check(b"imp.example"), Verdict::Pass);
}

/// AdGuard's DNS-only modifiers this resolver does not implement are reported and ignored: never
/// a plain block of the whole name.
#[test]
fn unsupported_dns_modifiers_are_reported_not_blocked() {
    let text = "\
||client.example^$client=192.168.0.1
||denyallow.example^$denyallow=ok.denyallow.example
||dnstype.example^$dnstype=AAAA
||rewrite.example^$dnsrewrite=1.2.3.4
||ctag.example^$ctag=device_phone
/ads[0-9]+\\.example/
||wild*card.example^
";
    let p = parse_list(text);
    assert_eq!(p.entries(), 0);
    assert_eq!(p.invalid_count, 7, "{:?}", p.invalid);
    assert!(p.invalid[0].reason.contains("$client"));
    assert!(p.invalid[2].reason.contains("$dnstype"));
    assert!(p.invalid[5].reason.contains("regular-expression"));
    let f = filter(&[text]);
    for n in [
        "client.example",
        "denyallow.example",
        "dnstype.example",
        "rewrite.example",
    ] {
        assert_eq!(f.check(n.as_bytes()), Verdict::Pass, "{n}");
    }
}

/// Internationalised names are converted to punycode (IDNA), as a browser would ask for them.
#[test]
fn unicode_names_become_punycode() {
    let p = parse_list("münchen.example\n||пример.рф^\n0.0.0.0 Bücher.example\n");
    assert_eq!(p.invalid_count, 0, "{:?}", p.invalid);
    let f = filter(&["münchen.example\n||пример.рф^\n0.0.0.0 Bücher.example\n"]);
    assert!(blocked(&f, "xn--mnchen-3ya.example"));
    assert!(blocked(&f, "www.xn--e1afmkfd.xn--p1ai"));
    assert!(blocked(&f, "xn--bcher-kva.example"));
}

#[test]
fn line_errors_keep_the_first_fifty() {
    let text: String = (0..80).map(|i| format!("bad name {i}\n")).collect();
    let p = parse_list(&format!("{text}ok.example\n"));
    assert_eq!(p.invalid_count, 80);
    assert_eq!(p.invalid.len(), KEPT_LINE_ERRORS);
    assert_eq!(p.invalid[49].line, 50);
}

// --- property test ------------------------------------------------------------------------

/// The names a line mentions: every run of name characters, lowercased, converted to punycode,
/// without leading `*.` or dots.
fn named_in(line: &str) -> Vec<String> {
    line.split(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .filter_map(|t| {
            let t = t.trim_matches('.');
            if t.is_empty() {
                return None;
            }
            Some(check_name(t).map_or_else(|_| t.to_ascii_lowercase(), |c| c.name))
        })
        .collect()
}

fn names_or_parent(query: &str, named: &[String]) -> bool {
    named
        .iter()
        .any(|n| query == n || query.ends_with(&format!(".{n}")))
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("ab".to_string()),
        Just("ads".to_string()),
        Just("x-y".to_string()),
        Just("münchen".to_string()),
        Just("localhost".to_string()),
    ]
}

fn tld() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("com".to_string()),
        Just("example".to_string()),
        Just("co.uk".to_string()),
        Just("test".to_string()),
        Just("github.io".to_string()),
    ]
}

fn domain() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 0..3), tld()).prop_map(|(labels, tld)| {
        let mut s = labels.join(".");
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(&tld);
        s
    })
}

fn rule_line() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just(""),
        Just("||"),
        Just("@@||"),
        Just("||*."),
        Just("*."),
        Just("0.0.0.0 "),
        Just("127.0.0.1\t"),
        Just("fe80::1%lo0 "),
        Just("|"),
        Just("/"),
        Just("\u{feff}"),
        Just("@@"),
    ];
    let suffix = prop_oneof![
        Just(""),
        Just("^"),
        Just("^|"),
        Just("."),
        Just("^$important"),
        Just("^$badfilter"),
        Just("^$important,badfilter"),
        Just("$dnstype=A"),
        Just("^$client=10.0.0.1"),
        Just("^$third-party"),
        Just("##.banner"),
        Just("#@#.ad"),
        Just("#%#//scriptlet('x')"),
        Just("$$script"),
        Just("/path^"),
        Just(" # comment"),
    ];
    (prefix, domain(), suffix, prop::option::of(domain())).prop_map(|(p, d, s, extra)| {
        let mut line = format!("{p}{d}{s}");
        if let Some(e) = extra {
            line.push(' ');
            line.push_str(&e);
        }
        line
    })
}

fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => rule_line(),
        1 => "[ -~]{0,40}",
        1 => "\\PC{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the lines, a blocked name is a name some line names, or a subdomain of one; and
    /// localhost is never blocked.
    #[test]
    fn a_line_blocks_only_what_it_names(
        lines in prop::collection::vec(any_line(), 1..4),
        queries in prop::collection::vec(domain(), 1..8),
    ) {
        let named: Vec<String> = lines.iter().flat_map(|l| named_in(l)).collect();
        let f = filter(&[&lines.join("\n")]);
        for q in queries.iter().map(|q| check_name(q).map_or_else(|_| q.clone(), |c| c.name)) {
            if blocked(&f, &q) {
                prop_assert!(names_or_parent(&q, &named), "{q} blocked by {lines:?}");
            }
        }
        for q in ["localhost", "a.localhost", "com", "co.uk"] {
            prop_assert!(!blocked(&f, q), "{q} blocked by {lines:?}");
        }
        // One line at a time, too (no line leans on another to be read).
        for line in &lines {
            let f = filter(&[line]);
            let named = named_in(line);
            for q in &queries {
                let q = check_name(q).map_or_else(|_| q.clone(), |c| c.name);
                if blocked(&f, &q) {
                    prop_assert!(names_or_parent(&q, &named), "{q} blocked by {line:?}");
                }
            }
        }
    }
}
