//! `scimform demo`: the whole loop against an embedded SCIM server seeded with drift, using
//! `examples/quickstart/` (compiled in, so it runs from anywhere).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::apply::apply_plan;
use super::{Console, read_and_plan};
use crate::exit::ExitStatus;
use crate::manifest::MapEnvironment;
use crate::plan::render::render_text;
use crate::service::memory::{MemoryServer, MemoryStore};
use crate::source::{AnySource, FileSource};

const MANIFEST: &str = include_str!("../../examples/quickstart/scimform.yaml");
const PEOPLE: &str = include_str!("../../examples/quickstart/people.yaml");
const MANIFEST_PATH: &str = "examples/quickstart/scimform.yaml";
/// The embedded server's token; it only ever listens on 127.0.0.1 for the demo's lifetime.
const DEMO_TOKEN: &str = "demo-token";

fn user(user_name: &str, given: &str, family: &str, title: &str, department: &str, external_id: Option<&str>) -> Value {
    let mut user = json!({
        "userName": user_name,
        "displayName": format!("{given} {family}"),
        "name": {"givenName": given, "familyName": family},
        "emails": [{"type": "work", "value": user_name}],
        "title": title,
        "active": true,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": department},
    });
    if let (Some(id), Value::Object(o)) = (external_id, &mut user) {
        o.insert("externalId".into(), Value::String(id.to_owned()));
    }
    user
}

/// The target as the last run (and some hands) left it.
pub fn seeded_store() -> MemoryStore {
    let mut store = MemoryStore::new(Some(DEMO_TOKEN));
    // A stale title; it also carries attributes the manifest does not manage, which must survive.
    let mut ada = user("ada.lovelace@corp.example", "Ada", "Lovelace", "Engineer", "Support", Some("hr-1001"));
    ada["nickName"] = json!("Countess");
    ada["phoneNumbers"] = json!([{"type": "mobile", "value": "tel:+15555550100"}]);
    let ada = store.insert_user(ada);
    let grace = store.insert_user(user(
        "grace.hopper@corp.example",
        "Grace",
        "Hopper",
        "Team Lead",
        "Support",
        Some("hr-1002"),
    ));
    let alan =
        store.insert_user(user("alan.turing@corp.example", "Alan", "Turing", "Analyst", "Research", Some("hr-1003")));
    // Disabled in HR, still active here.
    store.insert_user(user(
        "edsger.dijkstra@corp.example",
        "Edsger",
        "Dijkstra",
        "Architect",
        "Research",
        Some("hr-1005"),
    ));
    // Created by hand before scimform: no ownership marker, so it is adopted, not duplicated.
    store.insert_user(user("barbara.liskov@corp.example", "Barbara", "Liskov", "Principal Engineer", "Research", None));
    // Ours, but gone from HR: disabled.
    store.insert_user(user("old.user@corp.example", "Old", "User", "Agent", "Support", Some("hr-0999")));
    // Someone else's: never touched.
    store.insert_user(user(
        "contractor@partner.example",
        "Casey",
        "Contractor",
        "Consultant",
        "External",
        Some("partner-7"),
    ));
    // Alan does not belong in Support_Tier1; Grace and Katherine do.
    store.insert_group("Support_Tier1", &[&ada, &alan]);
    let _ = grace;
    store
}

/// Runs a command with its stdout and stderr both captured, then writes them to `out` in order.
async fn transcript<F>(out: &mut dyn std::io::Write, color: bool, command: F) -> anyhow::Result<ExitStatus>
where
    F: AsyncFnOnce(&mut Console<'_>) -> anyhow::Result<ExitStatus>,
{
    let (mut data, mut messages) = (Vec::new(), Vec::new());
    let status = command(&mut Console {
        out: &mut data,
        err: &mut messages,
        input: None,
        color,
        progress: crate::progress::Progress::default(),
        json_logs: false,
    })
    .await;
    out.write_all(&data)?;
    out.write_all(&messages)?;
    status
}

/// `demo --serve`: the embedded server, seeded as the demo seeds it, until a signal stops it.
pub async fn serve(console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let server = MemoryServer::start(seeded_store()).await?;
    let url = server.base_url();
    let how = format!(
        "Embedded SCIM server listening; point a manifest at it with:\n\n  export SCIM_BASE_URL={url}\n  export SCIM_TOKEN={DEMO_TOKEN}\n\n(`target: {{ kind: scim, base_url: ${{env:SCIM_BASE_URL}}, auth: {{ bearer_token: \"${{env:SCIM_TOKEN}}\" }} }}`). Ctrl-C stops it.\n"
    );
    // One write, and the server keeps serving whoever reads it stopping reading.
    let _ = console.out.write_all(how.as_bytes()).and_then(|()| console.out.flush());
    std::future::pending::<()>().await;
    Ok(ExitStatus::Success)
}

pub async fn run(console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let server = MemoryServer::start(seeded_store()).await?;
    let env = MapEnvironment(BTreeMap::from([
        ("SCIM_BASE_URL".to_owned(), server.base_url().to_owned()),
        ("SCIM_TOKEN".to_owned(), DEMO_TOKEN.to_owned()),
    ]));
    let manifest = crate::manifest::parse(MANIFEST, MANIFEST_PATH, &env, Path::new("examples/quickstart"))?;
    let mut sources = BTreeMap::from([(
        "people".to_owned(),
        AnySource::File(FileSource::from_text("people", PathBuf::from("people.yaml"), PEOPLE.to_owned())),
    )]);
    let client = super::client_for(&manifest)?;
    let concurrency = manifest.target.concurrency;

    // The demo is a transcript: everything goes to stdout, in the order it happens.
    let color = console.color;
    let paint = |text: &str| if color { crate::plan::render::colorize(text) } else { text.to_owned() };
    let out = &mut *console.out;
    writeln!(out, "Embedded SCIM server listening at {}", server.base_url())?;
    writeln!(
        out,
        "seeded with drift: a stale title, a missing user, a leaver, an unowned match, a wrong group member."
    )?;

    writeln!(out, "\n$ scimform plan -f {MANIFEST_PATH}\n")?;
    let plan = read_and_plan(&manifest, &mut sources, &client, crate::progress::Progress::default()).await?;
    out.write_all(paint(&render_text(&plan)).as_bytes())?;
    out.write_all(crate::plan::render::text::render_warnings(&plan).as_bytes())?;

    writeln!(out, "\n$ scimform apply -f {MANIFEST_PATH} --auto-approve\n")?;
    let plan = read_and_plan(&manifest, &mut sources, &client, crate::progress::Progress::default()).await?;
    let status = transcript(out, color, async |c| {
        apply_plan(&plan, &client, concurrency, true, &std::collections::BTreeMap::new(), c).await.map(|o| o.status)
    })
    .await?;
    if status != ExitStatus::Success {
        return Ok(status);
    }

    server.reset_writes();
    writeln!(out, "\n$ scimform apply -f {MANIFEST_PATH} --auto-approve   # the next scheduled run\n")?;
    let plan = read_and_plan(&manifest, &mut sources, &client, crate::progress::Progress::default()).await?;
    let status = transcript(out, color, async |c| {
        apply_plan(&plan, &client, concurrency, true, &std::collections::BTreeMap::new(), c).await.map(|o| o.status)
    })
    .await?;
    let writes = server.writes();
    writeln!(out, "\nThe SCIM server received {writes} write(s) during the scheduled run.")?;
    if writes != 0 || plan.has_changes() {
        anyhow::bail!("the demo did not converge: the second run still had changes");
    }
    Ok(status)
}
