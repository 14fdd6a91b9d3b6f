//! The workspace's layering (issue 22): within a crate, no module imports
//! another that imports it back. Read from the sources: every `crate::`
//! and `super::` path outside comments and unit-test modules names the
//! module it reaches; a pair of modules reaching each other is a circle.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs`, `main.rs` the root.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut m: Module = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        m.pop();
    }
    m
}

/// The code without comments and without its unit-test module.
fn product_code(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    match code.find("#[cfg(test)]\nmod tests {") {
        Some(i) => code[..i].to_string(),
        None => code,
    }
}

fn ident(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// The modules of `modules` that `code`, in module `me`, reaches.
fn reached(code: &str, me: &Module, modules: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut out = BTreeSet::new();
    let mut add = |path: Module| {
        // The longest prefix that is a module, if it is not `me` or one of
        // its ancestors.
        let found = (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains(p));
        if let Some(p) = found
            && !me.starts_with(&p)
        {
            out.insert(p);
        }
    };
    for (i, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut base: Module = Vec::new();
        let mut rest = &code[i..];
        if let Some(r) = rest.strip_prefix("crate::") {
            rest = r;
        } else {
            base = me.clone();
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
        }
        if let Some(group) = rest.strip_prefix('{') {
            for item in group.split('}').next().unwrap_or("").split(',') {
                let (name, _) = ident(item.trim());
                let mut p = base.clone();
                p.push(name.to_string());
                add(p);
            }
            continue;
        }
        let mut p = base;
        loop {
            let (name, tail) = ident(rest);
            if name.is_empty() {
                break;
            }
            p.push(name.to_string());
            match tail.strip_prefix("::") {
                Some(t) if !t.starts_with('{') => rest = t,
                _ => break,
            }
        }
        add(p);
    }
    out
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut circles = Vec::new();
    for krate in std::fs::read_dir(&crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeMap<Module, PathBuf> = files
            .iter()
            .map(|f| (module_of(&src, f), f.clone()))
            .collect();
        let names: BTreeSet<Module> = modules.keys().cloned().collect();
        let edges: BTreeMap<&Module, BTreeSet<Module>> = modules
            .iter()
            .map(|(m, f)| {
                let code = product_code(&std::fs::read_to_string(f).unwrap());
                (m, reached(&code, m, &names))
            })
            .collect();
        for (a, to) in &edges {
            for b in to {
                if a < &b && edges.get(b).is_some_and(|back| back.contains(*a)) {
                    circles.push(format!(
                        "{}: {} <-> {}",
                        src.display(),
                        a.join("::"),
                        b.join("::")
                    ));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules importing each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_check_sees_a_circle() {
    let names: BTreeSet<Module> = [vec!["a".to_string()], vec!["b".to_string()]].into();
    let a = vec!["a".to_string()];
    let b = vec!["b".to_string()];
    assert!(reached("use crate::b::Thing;", &a, &names).contains(&b));
    assert!(reached("use super::{b, c};", &a, &names).contains(&b));
    assert!(reached("x = crate::b::f();", &a, &names).contains(&b));
    assert!(product_code("// crate::b::f()").trim().is_empty());
    assert!(reached("use crate::a::X;", &a, &names).is_empty(), "itself");
}
