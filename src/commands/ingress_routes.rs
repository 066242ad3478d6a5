//! The Kubernetes ingress (`deploy/k8s/ingress.yaml`) sends every documented API path to the
//! service that serves it: a route added to a service without its ingress line would answer
//! from the web console (`/`) in a cluster while working under `crm serve`.

/// `(path, backend)` of the ingress rules: a plain prefix or an ingress-nginx regex.
fn rules() -> Vec<(String, String)> {
    let yaml = include_str!("../../deploy/k8s/ingress.yaml");
    yaml.lines()
        .filter_map(|line| {
            let path = line.split("{path: ").nth(1)?.split(',').next()?.trim().trim_matches('"').to_owned();
            let backend = line.split("service: {name: ").nth(1)?.split(',').next()?.trim().to_owned();
            Some((path, backend))
        })
        .collect()
}

/// Whether the rule `pattern` matches `path` (`{id}` segments stand for any value), and how
/// long the match is (ingress-nginx prefers the longest).
fn matches(pattern: &str, path: &str) -> Option<usize> {
    let concrete = path.replace(|c: char| c == '{' || c == '}', "");
    if pattern.contains("[^/]+") {
        let (head, tail) = pattern.split_once("[^/]+")?;
        let rest = concrete.strip_prefix(head)?;
        let (_, after) = rest.split_once('/').map(|(a, b)| (a, format!("/{b}")))?;
        return (after == tail || after.starts_with(&format!("{tail}/"))).then_some(pattern.len() + 100);
    }
    let prefix = pattern.trim_end_matches('/');
    (concrete == prefix || concrete.starts_with(&format!("{prefix}/")) || prefix.is_empty()).then_some(prefix.len())
}

#[test]
fn every_documented_path_reaches_its_service() {
    let rules = rules();
    assert!(rules.len() > 10, "parsed the ingress rules: {rules:?}");
    let services = [
        ("tenant-service", tenant_service::openapi()),
        ("auth-service", auth_service::openapi()),
        ("contact-service", contact_service::openapi()),
        ("deal-service", deal_service::openapi()),
        ("communication-service", communication_service::openapi()),
    ];
    let mut wrong = Vec::new();
    for (service, doc) in &services {
        for path in doc["paths"].as_object().expect("paths").keys().filter(|p| p.starts_with("/api/")) {
            let best = rules.iter().filter_map(|(p, b)| matches(p, path).map(|len| (len, b))).max_by_key(|(len, _)| *len);
            match best {
                Some((_, backend)) if backend == service => {}
                other => wrong.push(format!("{path} ({service}) -> {:?}", other.map(|(_, b)| b))),
            }
        }
    }
    assert!(wrong.is_empty(), "ingress routes to the wrong backend:\n{}", wrong.join("\n"));
}
