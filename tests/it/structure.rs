//! The shape of `src/`: no file over 600 lines of code, and no import circle between files.
//!
//! Lines of code are the non-blank lines that are not `//` comments, before a file's
//! `#[cfg(test)] mod tests` (unit tests are not counted). An import is a path a file names
//! that starts with `crate::`, `super::` or `self::`; it points at the deepest module file the
//! path reaches (`use crate::alert::{A, B}` points at `alert`). A submodule naming its own
//! ancestors (`super::Stage`) is part of them, not above them, so that edge is not followed;
//! nor is a path a module writes into its own submodules without a head (`channels::Slot`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The most lines of code a file in `src/` may have.
const MOST_LINES: usize = 600;

type Module = Vec<String>;

struct SourceFile {
    path: PathBuf,
    module: Module,
    /// The text before its unit tests, comment lines blanked.
    code: String,
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("src/ is readable") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                let text = match text.find("#[cfg(test)]\nmod tests") {
                    Some(cut) => text[..cut].to_string(),
                    None => text,
                };
                let code = text
                    .lines()
                    .map(|line| {
                        if line.trim_start().starts_with("//") {
                            ""
                        } else {
                            line.split(" //").next().unwrap_or_default()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                files.push(SourceFile {
                    module: module_of(&root, &path),
                    path,
                    code,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// `src/alert/stage/holds.rs` is `alert::stage::holds`; `lib.rs` and `main.rs` are the crate.
fn module_of(root: &Path, path: &Path) -> Module {
    let relative = path
        .strip_prefix(root)
        .expect("under src/")
        .with_extension("");
    let mut module: Module = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if module.last().is_some_and(|last| last == "mod") {
        module.pop();
    }
    if module == ["lib"] || module == ["main"] {
        module.clear();
    }
    module
}

/// Each `crate::`/`super::`/`self::` path in `code`, as the segments after its head, resolved
/// against `module`.
fn paths_named(module: &[String], code: &str) -> Vec<Module> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for head in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(offset) = code[from..].find(head) {
            let start = from + offset;
            from = start + head.len();
            let boundary = start == 0 || {
                let before = bytes[start - 1];
                !(before.is_ascii_alphanumeric() || before == b'_' || before == b':')
            };
            if !boundary {
                continue;
            }
            let mut segments: Module = code[from..]
                .split("::")
                .map(|segment| {
                    segment
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|segment| !segment.is_empty())
                .collect();
            let mut base: Module = match head {
                "crate::" => Vec::new(),
                "self::" => module.to_vec(),
                // `super` of `a/b.rs` and of `a/b/mod.rs` is `a`.
                _ => module[..module.len().saturating_sub(1)].to_vec(),
            };
            while segments.first().is_some_and(|segment| segment == "super") {
                segments.remove(0);
                base.pop();
            }
            base.extend(segments);
            found.push(base);
        }
    }
    found
}

fn import_graph(files: &[SourceFile]) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules: BTreeSet<Module> = files.iter().map(|file| file.module.clone()).collect();
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in files {
        let edges = graph.entry(file.module.clone()).or_default();
        for path in paths_named(&file.module, &file.code) {
            let target = (1..=path.len())
                .rev()
                .map(|length| path[..length].to_vec())
                .find(|prefix| modules.contains(prefix));
            let Some(target) = target else { continue };
            let ancestor = file.module.starts_with(&target);
            if target != file.module && !ancestor {
                edges.insert(target);
            }
        }
    }
    graph
}

/// The strongly connected groups of more than one module (Tarjan).
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        on_stack: BTreeSet<&'g Module>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, module: &'g Module) {
            let next = self.index.len();
            self.index.insert(module, next);
            self.low.insert(module, next);
            self.stack.push(module);
            self.on_stack.insert(module);
            for target in self.graph.get(module).into_iter().flatten() {
                if !self.index.contains_key(target) {
                    self.visit(target);
                    let low = self.low[module].min(self.low[target]);
                    self.low.insert(module, low);
                } else if self.on_stack.contains(target) {
                    let low = self.low[module].min(self.index[target]);
                    self.low.insert(module, low);
                }
            }
            if self.low[module] == self.index[module] {
                let mut group = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    group.push(member.join("::"));
                    if member == module {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for module in graph.keys() {
        if !walk.index.contains_key(module) {
            walk.visit(module);
        }
    }
    walk.found
}

#[test]
fn no_file_in_src_is_over_600_lines_of_code() {
    let too_long: Vec<String> = source_files()
        .iter()
        .map(|file| {
            let lines = file
                .code
                .lines()
                .filter(|line| !line.trim().is_empty())
                .count();
            (file, lines)
        })
        .filter(|(_, lines)| *lines > MOST_LINES)
        .map(|(file, lines)| format!("{}: {lines} lines of code", file.path.display()))
        .collect();
    assert!(
        too_long.is_empty(),
        "split these into modules with one job each:\n{}",
        too_long.join("\n")
    );
}

#[test]
fn no_import_circle_between_files() {
    let found = circles(&import_graph(&source_files()));
    assert!(
        found.is_empty(),
        "files that import each other, directly or around a circle:\n{}",
        found
            .iter()
            .map(|group| group.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_circle_finder_finds_a_circle_and_ignores_a_child_naming_its_parent() {
    let module = |path: &str| -> Module { path.split("::").map(str::to_string).collect() };
    let file = |path: &str, code: &str| SourceFile {
        path: PathBuf::from(format!("src/{}.rs", path.replace("::", "/"))),
        module: module(path),
        code: code.to_string(),
    };
    let files = [
        file("metrics", "use crate::tasks::TaskKind;\nmod exposition;"),
        file("tasks", "fn f(m: &crate::metrics::Metrics) {}"),
        file(
            "metrics::exposition",
            "use super::Metrics; use super::super::probe::X;",
        ),
        file("probe", "use crate::outcome::{Cause, FailureReason};"),
        file("outcome", ""),
    ];
    let graph = import_graph(&files);
    assert_eq!(
        circles(&graph),
        [vec!["metrics".to_string(), "tasks".to_string()]]
    );
    assert_eq!(
        graph[&module("metrics::exposition")],
        BTreeSet::from([module("probe")])
    );
    assert_eq!(graph[&module("probe")], BTreeSet::from([module("outcome")]));
}
