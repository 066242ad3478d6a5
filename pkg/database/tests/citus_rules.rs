//! Rules that keep the platform runnable on a Citus cluster with schema-based sharding
//! (issue 18), checked on plain PostgreSQL so that CI catches a change that would break only
//! there:
//!
//! 1. no trigger, function, `DO` block or rule, and no schema-qualified name, in a tenant
//!    migration (Citus refuses triggers on distributed tables; a tenant schema lives on one
//!    worker, where `platform` does not exist); files written before the rule are listed in
//!    [`LEGACY`] with what later migrations undid;
//! 2. every migration file splits into statements that each parse as exactly one command (the
//!    runner sends them one by one: Citus forwards DDL text to the worker, which refuses
//!    several commands in one query);
//! 3. no `set_config` of anything but the search path in the Rust sources (a setting made
//!    with `set_config(.., true)` stays on the coordinator and never reaches the worker);
//! 4. no non-IMMUTABLE function (`now()`, `clock_timestamp()`, ...) in a `RETURNING` clause
//!    or an `ON CONFLICT ... DO UPDATE SET` of the Rust sources (Citus refuses them on
//!    distributed tables; the closed-won consumer retried forever on one);
//! 5. a freshly provisioned tenant schema holds no trigger, and no function but the two
//!    immutable search helpers its indexes and generated column use.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crm_database::migrate::split_statements;
use crm_testing::{provision_tenant, test_pool};
use pg_query::NodeRef;

/// Tenant migrations written before the rule, with what they hold and what undid it. They
/// cannot change (refinery refuses an applied migration whose text changed), and they still
/// run in every new tenant schema, before the migrations that drop what they created
/// (`crm_database::migrate` distributes a new schema only after all of them ran).
const LEGACY: &[(&str, &str)] = &[
    ("events/V1__outbox.sql", "trigger outbox_signal calling platform.outbox_signal(): dropped by events V3"),
    (
        "contact/V1__contact.sql",
        "search-word triggers and their functions: dropped by contact V3; contact_search_words() stays (IMMUTABLE, \
         used by companies.search_words and the queries)",
    ),
    (
        "contact/V2__contact_search_folding.sql",
        "IMMUTABLE helpers contact_fold()/contact_search_words() calling public.unaccent (the extension's schema), \
         used by an index and a generated column",
    ),
];

/// Functions a tenant schema may hold: IMMUTABLE SQL helpers, no side effects (Citus
/// propagates them to the worker with the schema).
const ALLOWED_TENANT_FUNCTIONS: &[&str] = &["contact_fold", "contact_search_words"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `(set/file, text)` of every migration file, global set included.
fn migration_files() -> Vec<(String, String, String)> {
    let dir = repo_root().join("db/schema");
    let mut out = Vec::new();
    for set in std::fs::read_dir(&dir).unwrap() {
        let set = set.unwrap().path();
        if !set.is_dir() {
            continue;
        }
        let set_name = set.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&set).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "sql") {
                let name = format!("{set_name}/{}", file.file_name().unwrap().to_string_lossy());
                out.push((set_name.clone(), name, std::fs::read_to_string(&file).unwrap()));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "migration files not found under {}", dir.display());
    out
}

/// What makes one parsed tenant-migration statement break the rule, if anything.
fn tenant_statement_problems(sql: &str) -> Vec<String> {
    let parsed = match pg_query::parse(sql, 0) {
        Ok(parsed) => parsed,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let mut problems = Vec::new();
    for (node, _, _, _) in parsed.protobuf.nodes() {
        match node {
            NodeRef::CreateTrigStmt(_) | NodeRef::CreateEventTrigStmt(_) => problems.push("creates a trigger".to_owned()),
            NodeRef::CreateFunctionStmt(_) => problems.push("creates a function or procedure".to_owned()),
            NodeRef::DoStmt(_) => problems.push("runs a DO block".to_owned()),
            NodeRef::RuleStmt(_) => problems.push("creates a rule".to_owned()),
            NodeRef::RangeVar(v) if !v.schemaname.is_empty() => {
                problems.push(format!("names {}.{} (another schema)", v.schemaname, v.relname))
            }
            NodeRef::FuncCall(f) if f.funcname.len() > 1 => problems.push("calls a schema-qualified function".to_owned()),
            _ => {}
        }
    }
    problems
}

#[test]
fn tenant_migrations_have_no_trigger_function_or_cross_schema_name() {
    let legacy: HashMap<&str, &str> = LEGACY.iter().copied().collect();
    let mut violations = Vec::new();
    for (set, name, text) in migration_files() {
        if set == "global" || legacy.contains_key(name.as_str()) {
            continue;
        }
        for statement in split_statements(&text).unwrap_or_else(|e| panic!("{name}: {e}")) {
            for problem in tenant_statement_problems(statement) {
                violations.push(format!("{name}: {problem}: {}", statement.lines().next().unwrap_or_default()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "tenant migrations must run on a Citus worker (docs/SCALING.md): no trigger, function, DO block, rule or \
         schema-qualified name; move the work into the service's repository code.\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_rule_catches_what_it_forbids() {
    for bad in [
        "CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
        "DO $$ BEGIN PERFORM 1; END $$",
        "INSERT INTO platform.outbox_pending (schema_name) VALUES ('x')",
        "CREATE INDEX i ON contacts (public.unaccent(first_name))",
        "CREATE RULE r AS ON INSERT TO x DO INSTEAD NOTHING",
    ] {
        assert!(!tenant_statement_problems(bad).is_empty(), "not caught: {bad}");
    }
    for good in [
        "CREATE TABLE x (id SERIAL PRIMARY KEY, name TEXT NOT NULL DEFAULT now()::text)",
        "CREATE INDEX x_name ON x USING gin (lower(name) gin_trgm_ops)",
        "DROP TRIGGER IF EXISTS outbox_signal ON outbox",
        "DROP FUNCTION IF EXISTS contacts_collect_terms()",
    ] {
        assert!(tenant_statement_problems(good).is_empty(), "refused: {good}: {:?}", tenant_statement_problems(good));
    }
}

#[test]
fn every_migration_is_sent_one_command_at_a_time() {
    for (_, name, text) in migration_files() {
        let statements = split_statements(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!statements.is_empty(), "{name}: no statement");
        for statement in statements {
            let parsed = pg_query::parse(statement, 0).unwrap_or_else(|e| panic!("{name}: {e}: {statement}"));
            assert_eq!(parsed.protobuf.stmts.len(), 1, "{name}: not one command: {statement}");
        }
    }
    // Semicolons inside strings, comments and dollar-quoted bodies do not split.
    let tricky = "-- a; comment\nCREATE TABLE t (v TEXT DEFAULT ';');\n/* b; */ CREATE FUNCTION f() RETURNS int \
                  LANGUAGE sql AS $$ SELECT 1; $$;\n\n";
    assert_eq!(split_statements(tricky).unwrap().len(), 2);
}

/// Every `.rs` file of the workspace's crates (services, pkg, the CLI), but not this one nor
/// tests and examples (their SQL sets up fixtures; it does not run in production).
fn rust_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules" | "tests" | "examples") && !name.starts_with('.') {
                    walk(&path, root, out);
                }
            } else if name.ends_with(".rs") {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if relative != "pkg/database/tests/citus_rules.rs" {
                    out.push((relative, std::fs::read_to_string(&path).unwrap_or_default()));
                }
            }
        }
    }
    let root = repo_root();
    let mut out = Vec::new();
    for dir in ["services", "pkg", "src", "crm"] {
        walk(&root.join(dir), &root, &mut out);
    }
    assert!(out.len() > 50, "Rust sources not found under {}", root.display());
    out
}

/// Lines of code (comments left out) containing `needle`, with their line numbers.
fn code_lines<'a>(text: &'a str, needle: &str) -> Vec<(usize, &'a str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.trim_start();
            !code.starts_with("//") && code.contains(needle)
        })
        .map(|(i, line)| (i + 1, line))
        .collect()
}

#[test]
fn no_set_config_but_the_search_path() {
    let mut violations = Vec::new();
    for (file, text) in rust_sources() {
        for (line_no, line) in code_lines(&text, "set_config(") {
            for (at, _) in line.match_indices("set_config(") {
                let argument = line[at + "set_config(".len()..].trim_start();
                if !argument.starts_with("'search_path'") {
                    violations.push(format!("{file}:{line_no}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "a setting made with set_config stays on the Citus coordinator and never reaches the worker holding the \
         tenant's tables: put the value in the query, or SET LOCAL with citus.propagate_set_commands = 'local' \
         (docs/SCALING.md).\n{}",
        violations.join("\n")
    );
}

/// The text of a string constant `const NAME: &str = "...";` of `source`, if there is one.
fn string_const<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let start = source.find(&format!("const {name}: &str = \""))? + format!("const {name}: &str = \"").len();
    let rest = &source[start..];
    Some(&rest[..literal_end(rest)])
}

/// Where the string literal that `text` is inside of ends: the first unescaped `"`.
fn literal_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    text.len()
}

/// Where a clause starting at the beginning of `sql` ends: at the `)` closing a parenthesis
/// opened before it (a data-modifying CTE: `... RETURNING id), next AS (...)`), else at the end.
fn clause_end(sql: &str) -> usize {
    let mut depth = 0i32;
    for (i, c) in sql.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return i,
            ')' => depth -= 1,
            _ => {}
        }
    }
    sql.len()
}

/// Every `RETURNING` clause and `DO UPDATE` (SET) of `source` as written in its string
/// literal, with the string constants it interpolates (`{TASK_COLUMNS}`) spliced in, and its
/// line number.
fn returning_clauses(source: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut starts: Vec<usize> = source.match_indices("RETURNING").map(|(at, _)| at).collect();
    starts.extend(source.match_indices("DO UPDATE").map(|(at, _)| at));
    starts.sort_unstable();
    for at in starts {
        let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
        if source[line_start..at].trim_start().starts_with("//") {
            continue;
        }
        let rest = &source[at..];
        let literal = &rest[..literal_end(rest)];
        let mut clause = literal[..clause_end(literal)].to_owned();
        let mut spliced = String::new();
        let mut search = clause.as_str();
        while let Some(open) = search.find('{') {
            let Some(close) = search[open..].find('}') else { break };
            let name = &search[open + 1..open + close];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) {
                if let Some(value) = string_const(source, name) {
                    spliced.push(' ');
                    spliced.push_str(value);
                }
            }
            search = &search[open + close + 1..];
        }
        clause.push_str(&spliced);
        out.push((source[..at].matches('\n').count() + 1, clause));
    }
    out
}

/// Names called as functions in `sql` (`name(`), lowercased; SQL keywords that take
/// parentheses are left out.
fn called_names(sql: &str) -> BTreeSet<String> {
    const NOT_FUNCTIONS: &[&str] = &[
        "coalesce", "greatest", "least", "nullif", "in", "any", "all", "some", "array", "exists", "values", "row",
        "as", "and", "or", "not", "on", "over", "filter", "cast", "case", "then", "else", "when", "select", "returning",
        "where", "from", "using", "with", "is", "distinct",
    ];
    let mut out = BTreeSet::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_ascii_lowercase();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let qualified = start > 0 && chars[start - 1] == '.';
            if j < chars.len() && chars[j] == '(' && !qualified && !NOT_FUNCTIONS.contains(&word.as_str()) {
                out.insert(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// SQL value functions without parentheses: all of them STABLE.
const MUTABLE_KEYWORDS: &[&str] =
    &["current_timestamp", "current_date", "current_time", "localtimestamp", "localtime", "current_user", "session_user"];

#[tokio::test]
async fn no_mutable_function_in_returning_or_upsert_set() {
    let pool = test_pool().await;
    let client = pool.get().await.unwrap();
    let mut clauses = Vec::new();
    let mut names = BTreeSet::new();
    for (file, text) in rust_sources() {
        for (line, clause) in returning_clauses(&text) {
            names.extend(called_names(&clause));
            clauses.push((file.clone(), line, clause));
        }
    }
    assert!(clauses.len() > 20, "RETURNING clauses not found");
    // A name with any overload that is not IMMUTABLE (PostgreSQL's catalog decides, not a list).
    let names: Vec<String> = names.into_iter().collect();
    let mutable: BTreeSet<String> = client
        .query(
            "SELECT proname::text FROM pg_proc WHERE proname = ANY($1) GROUP BY proname HAVING bool_or(provolatile <> 'i')",
            &[&names],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut violations = Vec::new();
    for (file, line, clause) in &clauses {
        let lower = clause.to_ascii_lowercase();
        let mut found: Vec<String> = called_names(clause).intersection(&mutable).cloned().collect();
        found.extend(
            MUTABLE_KEYWORDS
                .iter()
                .filter(|k| {
                    lower.match_indices(**k).any(|(at, _)| {
                        let before = lower[..at].chars().next_back().is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
                        let after = lower[at + k.len()..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
                        before && after
                    })
                })
                .map(|k| (*k).to_owned()),
        );
        if !found.is_empty() {
            violations.push(format!("{file}:{line}: {} in: {}", found.join(", "), clause.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    assert!(
        violations.is_empty(),
        "Citus refuses non-IMMUTABLE functions in RETURNING and in ON CONFLICT DO UPDATE SET on distributed tables \
         (\"non-IMMUTABLE functions are not allowed in the RETURNING clause\"): compute the value from a parameter, \
         EXCLUDED.<column> or in code (docs/SCALING.md).\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_returning_scan_sees_interpolated_columns_and_calls() {
    let source = "const COLS: &str = \"id, due < now() AS overdue\";\nfn q() { let s = format!(\"UPDATE t SET a = now() WHERE id = $1 RETURNING {COLS}\"); }\n";
    let clauses = returning_clauses(source);
    assert_eq!(clauses.len(), 1);
    let cte = "WITH a AS (DELETE FROM x RETURNING id), b AS (UPDATE y SET at = now() WHERE id IN (SELECT id FROM a)) SELECT 1";
    assert!(returning_clauses(&format!("\"{cte}\"")).iter().all(|(_, c)| !called_names(c).contains("now")));
    assert_eq!(clauses[0].0, 2);
    assert!(called_names(&clauses[0].1).contains("now"), "{clauses:?}");
    let names = called_names("RETURNING id, coalesce(x, 1), lower(name), public.unaccent(x), clock_timestamp ()");
    assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["clock_timestamp", "lower"]);
}

#[tokio::test]
async fn a_provisioned_tenant_schema_has_no_trigger_and_only_the_search_helpers() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let schema = tenant.schema().as_str().to_owned();
    let client = pool.get().await.unwrap();
    let triggers: Vec<String> = client
        .query(
            "SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             WHERE c.relnamespace = $1::text::regnamespace AND NOT t.tgisinternal",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(triggers.is_empty(), "triggers in {schema}: {triggers:?}");
    let functions: BTreeSet<String> = client
        .query("SELECT proname::text FROM pg_proc WHERE pronamespace = $1::text::regnamespace", &[&schema])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let allowed: BTreeSet<String> = ALLOWED_TENANT_FUNCTIONS.iter().map(|s| (*s).to_owned()).collect();
    assert!(functions.is_subset(&allowed), "functions in {schema}: {functions:?} (allowed: {allowed:?})");
    let mutable: Vec<String> = client
        .query(
            "SELECT proname::text FROM pg_proc WHERE pronamespace = $1::text::regnamespace AND provolatile <> 'i'",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(mutable.is_empty(), "non-IMMUTABLE functions in {schema}: {mutable:?}");
}
