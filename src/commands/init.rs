//! `scimform init`: a commented starter manifest for a source kind and a target kind, the way a
//! gallery app starts with default mappings (for Genesys, the attributes Entra's Genesys Cloud
//! app maps by default). It never overwrites a file.

use std::io::Write as _;
use std::path::Path;

use anyhow::bail;

use super::Console;
use crate::cli::{InitArgs, InitSource, InitTarget};
use crate::exit::ExitStatus;

pub fn run(args: &InitArgs, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let text = starter(args.source, args.target);
    write_new(&args.file, &text)?;
    writeln!(
        console.err,
        "Wrote `{0}`. Set the variables it names, then: scimform validate -f {0} && scimform plan -f {0}",
        args.file.display()
    )?;
    Ok(ExitStatus::Success)
}

/// Creates `path` with `text`, refusing a file that exists.
#[expect(clippy::disallowed_methods, reason = "commands are an edge: init writes the file it is asked for")]
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path);
    match file {
        Ok(mut file) => Ok(file.write_all(text.as_bytes())?),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("`{}` exists; init never overwrites a file: name another with `-f`", path.display())
        }
        Err(error) => Err(anyhow::Error::new(error).context(format!("cannot write `{}`", path.display()))),
    }
}

/// The starter manifest's text.
pub fn starter(source: InitSource, target: InitTarget) -> String {
    let (source_section, names) = match source {
        InitSource::Ldap => (LDAP, AttributeNames::AD),
        InitSource::Graph => (GRAPH, AttributeNames::ENTRA),
        InitSource::File => (FILE, AttributeNames::FILE),
    };
    let target_section = match target {
        InitTarget::Genesys => GENESYS,
        InitTarget::Generic => GENERIC,
    };
    let n = names;
    format!(
        r#"# A starter manifest (`scimform init`): check each mapping against your directory, then
# `scimform validate -f <this file>` and `scimform plan -f <this file>`. Secrets come from the
# environment (`${{env:NAME}}`), never from this file.
version: 1
sources:
{source_section}
target:
{target_section}
users:
  source: dir
  match: userName
  # The ownership marker: scimform only deprovisions users whose externalId this could make.
  external_id: "{marker}"
  attributes:
    userName: "{{{{ {upn} | lower }}}}"
    displayName: {display}
    name.givenName: {given}
    name.familyName: {family}
    'emails[type eq "work"].value': "{{{{ {mail} | lower }}}}"
    'phoneNumbers[type eq "work"].value': "{work_phone}"
    'phoneNumbers[type eq "mobile"].value': {mobile}
    title: {title}
    urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department: department
    urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value: {{ reference: manager }}
    active: "{{{{ not disabled }}}}"
  # Who is provisioned: uncomment to provision only a group's members (Genesys licenses every
  # user it holds).
  # scope:
  #   member_of:
  #     - {{ source: dir, group: {{ name: "Contact Centre" }}, nested: true }}
  deprovision: {{ action: disable, max_percent: 10 }}
"#,
        marker = n.marker,
        upn = n.upn,
        display = n.display,
        given = n.given,
        family = n.family,
        mail = n.mail,
        work_phone = n.work_phone,
        mobile = n.mobile,
        title = n.title,
    )
}

/// What a directory calls the attributes the starter maps.
struct AttributeNames {
    marker: &'static str,
    upn: &'static str,
    display: &'static str,
    given: &'static str,
    family: &'static str,
    mail: &'static str,
    work_phone: &'static str,
    mobile: &'static str,
    title: &'static str,
}

impl AttributeNames {
    const AD: Self = Self {
        marker: "{{ objectGUID }}",
        upn: "userPrincipalName",
        display: "displayName",
        given: "givenName",
        family: "sn",
        mail: "mail",
        work_phone: "{{ telephoneNumber }}",
        mobile: "mobile",
        title: "title",
    };
    const ENTRA: Self = Self {
        marker: "entra-{{ id }}",
        upn: "userPrincipalName",
        display: "displayName",
        given: "givenName",
        family: "surname",
        mail: "mail",
        work_phone: "{{ businessPhones | first }}",
        mobile: "mobilePhone",
        title: "jobTitle",
    };
    const FILE: Self = Self {
        marker: "hr-{{ id }}",
        upn: "mail",
        display: "displayName",
        given: "givenName",
        family: "sn",
        mail: "mail",
        work_phone: "{{ telephoneNumber }}",
        mobile: "mobile",
        title: "title",
    };
}

const LDAP: &str = r"  dir:
    kind: ldap
    url: ldaps://dc01.corp.example:636        # your domain controller
    bind_dn: svc_scim@corp.example             # a read-only service account
    password: ${env:AD_BIND_PASSWORD}
    base_dn: OU=Staff,DC=corp,DC=example";

const GRAPH: &str = r"  dir:
    kind: graph
    tenant_id: ${env:GRAPH_TENANT_ID}
    client_id: ${env:GRAPH_CLIENT_ID}          # an app with User.Read.All and GroupMember.Read.All
    client_secret: ${env:GRAPH_CLIENT_SECRET}
    # Without a secret: the certificate uploaded to the app and its key,
    # client_certificate: { cert_file: entra.crt, key_file: entra.key }
    # or a token your scheduler writes (workload identity federation):
    # federated_token_file: /var/run/secrets/azure/tokens/azure-identity-token";

const FILE: &str = r"  dir:
    kind: file
    path: people.csv                           # a CSV export with an `id` column";

const GENESYS: &str = r"  kind: scim
  profile: genesys
  region: mypurecloud.ie                       # your Genesys Cloud region
  auth:
    oauth2_client_credentials:
      client_id: ${env:GENESYS_CLIENT_ID}
      client_secret: ${env:GENESYS_CLIENT_SECRET}";

const GENERIC: &str = r#"  kind: scim
  base_url: ${env:SCIM_BASE_URL}               # the SCIM base URL (it holds /Users and /Groups)
  auth: { bearer_token: "${env:SCIM_TOKEN}" }"#;
