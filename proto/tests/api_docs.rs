//! Keeps `docs/api.md` true to the proto files: the reference is generated
//! from the descriptor set (services, RPCs, messages, fields and enums with
//! their doc comments) and compared with the committed file. When it is
//! stale the test fails; `OMNIPANEL_BLESS=1 cargo test -p omnipanel-proto`
//! rewrites it. The table of error reasons comes from `error_reasons.md`
//! next to this file.

use std::{collections::HashMap, fmt::Write as _, path::PathBuf};

use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorProto, FileDescriptorSet, field_descriptor_proto::Label,
    field_descriptor_proto::Type,
};

/// Leading comments by location path, for one file.
fn comments(file: &FileDescriptorProto) -> HashMap<Vec<i32>, String> {
    let mut out = HashMap::new();
    if let Some(info) = &file.source_code_info {
        for location in &info.location {
            if let Some(text) = &location.leading_comments {
                let text = text
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
                    .trim()
                    .to_owned();
                out.insert(location.path.clone(), text);
            }
        }
    }
    out
}

fn short(type_name: &str) -> &str {
    type_name.trim_start_matches(".omnipanel.v1.")
}

fn field_type(field: &prost_types::FieldDescriptorProto) -> String {
    let base = match field.r#type() {
        Type::Message | Type::Enum => short(field.type_name()).to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    if field.label() == Label::Repeated {
        format!("repeated {base}")
    } else if field.proto3_optional() {
        format!("optional {base}")
    } else {
        base
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn message(
    out: &mut String,
    docs: &HashMap<Vec<i32>, String>,
    path: &[i32],
    name: &str,
    m: &DescriptorProto,
) {
    let _ = writeln!(out, "### {name}\n");
    if let Some(doc) = docs.get(path) {
        let _ = writeln!(out, "{doc}\n");
    }
    if !m.field.is_empty() {
        let _ = writeln!(out, "| Field | Type | Description |\n|---|---|---|");
        for (i, field) in m.field.iter().enumerate() {
            let mut field_path = path.to_vec();
            field_path.extend([2, i as i32]);
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} |",
                field.name(),
                field_type(field),
                cell(docs.get(&field_path).map_or("", String::as_str))
            );
        }
        out.push('\n');
    }
    for (i, nested) in m.nested_type.iter().enumerate() {
        if nested.options.as_ref().is_some_and(|o| o.map_entry()) {
            continue;
        }
        let mut nested_path = path.to_vec();
        nested_path.extend([3, i as i32]);
        message(
            out,
            docs,
            &nested_path,
            &format!("{name}.{}", nested.name()),
            nested,
        );
    }
    for (i, e) in m.enum_type.iter().enumerate() {
        let mut enum_path = path.to_vec();
        enum_path.extend([4, i as i32]);
        enumeration(out, docs, &enum_path, &format!("{name}.{}", e.name()), e);
    }
}

fn enumeration(
    out: &mut String,
    docs: &HashMap<Vec<i32>, String>,
    path: &[i32],
    name: &str,
    e: &prost_types::EnumDescriptorProto,
) {
    let _ = writeln!(out, "### enum {name}\n");
    if let Some(doc) = docs.get(path) {
        let _ = writeln!(out, "{doc}\n");
    }
    let _ = writeln!(out, "| Value | Number | Description |\n|---|---|---|");
    for (i, value) in e.value.iter().enumerate() {
        let mut value_path = path.to_vec();
        value_path.extend([2, i as i32]);
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            value.name(),
            value.number(),
            cell(docs.get(&value_path).map_or("", String::as_str))
        );
    }
    out.push('\n');
}

fn generate() -> String {
    let set = FileDescriptorSet::decode(omnipanel_proto::FILE_DESCRIPTOR_SET)
        .expect("the embedded descriptor set decodes");
    let mut files: Vec<&FileDescriptorProto> = set
        .file
        .iter()
        .filter(|f| f.package() == "omnipanel.v1")
        .collect();
    files.sort_by_key(|f| f.name().to_owned());
    let policies = omnipanel_proto::access::method_policies(omnipanel_proto::FILE_DESCRIPTOR_SET)
        .expect("the access policies decode");
    let access = |path: &str| -> String {
        let policy = policies
            .iter()
            .find(|method| method.path == path)
            .and_then(|method| method.policy.as_ref());
        match policy {
            None => "undeclared".to_owned(),
            Some(policy) => {
                let scope = policy
                    .scope()
                    .as_str_name()
                    .trim_start_matches("SCOPE_")
                    .to_lowercase();
                if policy.owner_only {
                    format!("{scope}, owner only")
                } else {
                    scope
                }
            }
        }
    };
    let mut out = String::from(
        "# OmniPanel API reference (`omnipanel.v1`)\n\n\
         Generated from the doc comments in `proto/omnipanel/v1/` by\n\
         `proto/tests/api_docs.rs`; do not edit by hand. After changing a\n\
         proto file run `OMNIPANEL_BLESS=1 cargo test -p omnipanel-proto`.\n\n\
         The agent serves these services on its Unix socket (see README.md\n\
         for how to connect); errors carry a `google.rpc.ErrorInfo` with\n\
         domain `omnipanel.v1` and a machine-readable reason. The Access\n\
         column is each RPC's `omnipanel.v1.access` option: the scope a\n\
         client needs (the owner has every scope), and whether only the\n\
         owner may call it.\n\n",
    );
    // How clients are admitted is prose, written by hand next to this file.
    out.push_str(include_str!("client_admission.md"));
    for file in &files {
        let docs = comments(file);
        let _ = writeln!(out, "## {}\n", file.name());
        for (si, service) in file.service.iter().enumerate() {
            let _ = writeln!(out, "### service {}\n", service.name());
            if let Some(doc) = docs.get(&vec![6, si as i32]) {
                let _ = writeln!(out, "{doc}\n");
            }
            let _ = writeln!(
                out,
                "| RPC | Request | Response | Access | Description |\n|---|---|---|---|---|"
            );
            for (mi, method) in service.method.iter().enumerate() {
                let stream = |yes: bool| if yes { "stream " } else { "" };
                let _ = writeln!(
                    out,
                    "| `{}` | `{}{}` | `{}{}` | {} | {} |",
                    method.name(),
                    stream(method.client_streaming()),
                    short(method.input_type()),
                    stream(method.server_streaming()),
                    short(method.output_type()),
                    access(&format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    )),
                    cell(
                        docs.get(&vec![6, si as i32, 2, mi as i32])
                            .map_or("", String::as_str)
                    )
                );
            }
            out.push('\n');
        }
        for (i, m) in file.message_type.iter().enumerate() {
            message(&mut out, &docs, &[4, i as i32], m.name(), m);
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            enumeration(&mut out, &docs, &[5, i as i32], e.name(), e);
        }
    }
    // The reasons are not in the proto files (they travel as strings in
    // ErrorInfo), so their table is written by hand next to this file and
    // checked against the agent's `Reason` enum by that enum's tests.
    out.push_str(include_str!("error_reasons.md"));
    out.trim_end().to_owned() + "\n"
}

#[test]
fn docs_api_md_matches_the_proto_files() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let fresh = generate();
    if std::env::var_os("OMNIPANEL_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("docs/api.md is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/api.md is stale: run `OMNIPANEL_BLESS=1 cargo test -p omnipanel-proto` and commit the result"
    );
}
