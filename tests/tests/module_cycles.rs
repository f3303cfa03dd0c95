//! Layering: no two modules of one folder of `pe/src` import each other, directly or through
//! others of that folder. A module is a file or a sub-folder; it imports a sibling when its
//! code names it by a `use` or an inline path (`super::x`, `crate::a::x`).
//!
//! Run alone: `cargo test -p inplace-tests --test module_cycles`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source without comments and string contents.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal such as '{' or '\n' (lifetimes are left alone).
            let end = b[i + 1..].iter().position(|c| *c == b'\'').map_or(b.len(), |p| i + 1 + p + 1);
            i = end;
            out.push_str("' '");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter().map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

/// `a::{b, c::{d}}` → `[a,b]`, `[a,c,d]`.
fn expand(prefix: &[String], tree: &str) -> Vec<Vec<String>> {
    let tree = tree.split(" as ").next().unwrap_or("").trim();
    let mut res = Vec::new();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> =
            tree[..open].split("::").map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let p: Vec<String> = prefix.iter().cloned().chain(head).collect();
        for item in split_top(inner) {
            res.extend(expand(&p, &item));
        }
    } else {
        let mut p = prefix.to_vec();
        p.extend(tree.split("::").map(str::trim).filter(|x| !x.is_empty()).map(String::from));
        res.push(p);
    }
    res
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path the code names: `use` trees, and inline `crate::…`, `super::…`, `self::…`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before_ok = at == 0 || !is_ident(rest[..at].chars().last().unwrap_or(' '));
        let after = &rest[at + 4..];
        if before_ok {
            if let Some(end) = after.find(';') {
                out.extend(expand(&[], &after[..end]));
            }
        }
        rest = after;
    }
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if (i == 0 || !is_ident(chars[i - 1])) && is_ident(chars[i]) {
            let start = i;
            while i < chars.len() && (is_ident(chars[i]) || (chars[i] == ':' && chars.get(i + 1) == Some(&':'))) {
                i += if chars[i] == ':' { 2 } else { 1 };
            }
            let word: String = chars[start..i].iter().collect();
            let parts: Vec<String> = word.split("::").filter(|x| !x.is_empty()).map(String::from).collect();
            if parts.len() > 1 && matches!(parts[0].as_str(), "crate" | "super" | "self") {
                out.push(parts);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The module path of a file under `src`: `crate::a::b`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src").with_extension("");
    let mut m: Vec<String> = vec!["crate".into()];
    m.extend(rel.iter().map(|c| c.to_string_lossy().into_owned()));
    if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        m.pop();
    }
    m
}

fn resolve(p: &[String], me: &[String]) -> Option<Vec<String>> {
    match p.first().map(String::as_str) {
        Some("crate") => Some(p.to_vec()),
        Some("self") => Some(me.iter().chain(&p[1..]).cloned().collect()),
        Some("super") => {
            let ups = p.iter().take_while(|x| *x == "super").count();
            let base = me.get(..me.len().checked_sub(ups)?)?;
            Some(base.iter().chain(&p[ups..]).cloned().collect())
        }
        _ => None,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "vendor") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Folder → sibling edges (a imports b).
fn edges(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<(String, String)>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<(String, String)>> = BTreeMap::new();
    for f in files {
        let me = module_of(src, &f);
        let code = strip(&std::fs::read_to_string(&f).expect("readable file"));
        for p in paths(&code) {
            let Some(r) = resolve(&p, &me) else { continue };
            for k in 1..me.len() {
                if r.len() <= k || r[..k] != me[..k] || r[k] == me[k] {
                    continue;
                }
                edges.entry(me[..k].to_vec()).or_default().insert((me[k].clone(), r[k].clone()));
            }
        }
    }
    edges
}

/// Strongly connected groups of more than one module (Tarjan).
fn cycles(es: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let mut g: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in es {
        g.entry(a).or_default().push(b);
        g.entry(b).or_default();
    }
    struct T<'a> {
        g: &'a BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for &w in &t.g[v] {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut c = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                c.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                t.out.push(c);
            }
        }
    }
    let mut t = T { g: &g, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    for &v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_module_imports_a_sibling_that_imports_it_back() {
    let src = inplace_tests::workspace().join("pe/src");
    let mut found = Vec::new();
    for (folder, es) in edges(&src) {
        for c in cycles(&es) {
            let how: Vec<String> =
                es.iter().filter(|(a, b)| c.contains(a) && c.contains(b)).map(|(a, b)| format!("{a} → {b}")).collect();
            found.push(format!("{}: {} ({})", folder.join("::"), c.join(" ↔ "), how.join(", ")));
        }
    }
    assert!(found.is_empty(), "import cycles between modules of one folder:\n  {}", found.join("\n  "));
}

#[test]
fn the_checker_sees_cycles() {
    let me: Vec<String> = ["crate", "a", "x"].iter().map(|s| s.to_string()).collect();
    let code = strip("use super::{y::Thing, z};\n// use super::w;\nfn f() { let s = \"super::q\"; super::v::go(); }");
    let got: Vec<Vec<String>> = paths(&code).iter().filter_map(|p| resolve(p, &me)).collect();
    let names: BTreeSet<String> = got.iter().map(|p| p[2].clone()).collect();
    assert_eq!(names, ["v", "y", "z"].iter().map(|s| s.to_string()).collect());
    let es: BTreeSet<(String, String)> =
        [("x", "y"), ("y", "z"), ("z", "x"), ("x", "w")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(cycles(&es), vec![vec!["x".to_string(), "y".into(), "z".into()]]);
}
